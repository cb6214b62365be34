package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"

	"github.com/accoreboot/acco/flows"
	"github.com/accoreboot/acco/state"
)

// hostFlags are the flags of the commands that reach the services host.
type hostFlags struct {
	identity    string
	lockTimeout time.Duration
	connectWait time.Duration
}

func (f *hostFlags) register(cmd *cobra.Command, connectDefault time.Duration) {
	fl := cmd.Flags()
	fl.StringVar(&f.identity, "identity", "", "the deploy keypair's private key `FILE` (env ACCO_SSH_KEY)")
	fl.DurationVar(&f.lockTimeout, "lock-timeout", 0, "wait this long for the state lock (default: fail at once)")
	fl.DurationVar(&f.connectWait, "connect-timeout", connectDefault, "keep retrying SSH this long")
}

// openSession loads the environment, its login key and clients, takes its
// lock for op (unless op is ""), and opens its state for a flow. The
// returned context is the lock's; release frees the lock.
func (a *app) openSession(ctx context.Context, name, op string, f hostFlags, readOnly bool) (context.Context, *flows.Session, ssh.Signer, func(), error) {
	env, blob, err := a.envAndState(ctx, name)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	sealer, err := a.sealer()
	if err != nil {
		return nil, nil, nil, nil, err
	}
	signer, err := a.deploySigner(env, f.identity)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	release := func() {}
	if op != "" {
		lctx, rel, err := a.lockEnv(ctx, blob, name, op, f.lockTimeout)
		if err != nil {
			return nil, nil, nil, nil, err
		}
		ctx, release = lctx, rel
	}
	clients, err := a.cloudClients(ctx, env)
	if err != nil {
		release()
		return nil, nil, nil, nil, err
	}
	s, err := flows.Open(ctx, env, state.NewStore(blob), sealer, clients, readOnly)
	if err != nil {
		release()
		return nil, nil, nil, nil, err
	}
	return ctx, s, signer, release, nil
}
