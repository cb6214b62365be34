package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/accoreboot/acco/internal/envdiff"
	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/provision"
	"github.com/accoreboot/acco/state"
)

func (a *app) diffCommand() *cobra.Command {
	var live bool
	cmd := &cobra.Command{
		Use:   "diff ENV1 ENV2",
		Short: "Show how two environments differ, key by key, and with --live what each runs",
		Long: `Diff loads both environments as every command does (defaults.yaml merged
with ENV.yaml, ${VAR} expanded, defaults filled, validated) and lists every
key whose resolved value differs, grouped by resource (instances.app,
databases.main, security_groups.app, services.emqx, ...; name, project,
cloud, region and state under "environment"). A key one environment does not
have shows as (absent). Files (certificates, keys, artifacts) are compared by
their paths; none is read. Values of services.backend.env taken from the
operator's environment variables show as (hidden). Without --live it makes
no network call.

With --live it also compares what is deployed in each environment, read
from its state and a refresh of its cloud (list calls only, as plan makes;
no lock is taken and nothing is written): per instance the flavor, image
name and image ID of the server actually running, its status, whether
configure has reached it since it was created (configured) and the
restarts configure still owes; per database the engine, version, plan,
flavor, node count and status of the live cluster and the names of its
users and logical databases. These differences join their resource's group,
marked "live:" (in JSON, "live": true). An environment with no state is
"not deployed" and its cloud is not read; that is a difference when the
other is deployed. No password or sealed value is read or printed.
configure records no package versions in state: the versions of EMQX,
PowerSync and Node it installed are not compared live.

Exit codes: 0 the environments are the same, 1 error, 2 they differ.`,
		Example: "  acco diff test prod\n  acco diff preprod prod --live\n  acco diff preprod prod --json | jq '.groups[].resource'",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			seen := &lookedUp{lookup: a.lookupEnv}
			var envs [2]*spec.Environment
			for i, name := range args {
				env, err := spec.Load(a.envDir, name, seen.get)
				if err != nil {
					return err
				}
				envs[i] = env
			}
			res := envdiff.Compare(envs[0], envs[1], envdiff.Options{Hide: seen.hide})
			if live {
				var lives [2]*envdiff.Live
				var errs [2]error
				if args[0] == args[1] {
					// One environment: one read.
					lives[0], errs[0] = a.deployed(cmd.Context(), envs[0])
					lives[1] = lives[0]
				} else {
					var wg sync.WaitGroup
					for i, env := range envs {
						wg.Go(func() { lives[i], errs[i] = a.deployed(cmd.Context(), env) })
					}
					wg.Wait()
				}
				if err := errors.Join(errs[:]...); err != nil {
					return err
				}
				res.CompareLive(lives[0], lives[1])
			}
			if a.json {
				if err := a.printJSON(res); err != nil {
					return err
				}
			} else if err := res.Render(a.out); err != nil {
				return err
			}
			if !res.Equal {
				return &codedError{code: exitChanges, err: errors.New("the environments differ"), reported: true}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&live, "live", false, "also compare what is deployed in each environment (its state and a read of its cloud)")
	return cmd
}

// deployed reads what is deployed in env: its state (without the lock: a
// read) and, when it has one, its cloud (list calls only). Nothing is
// written.
func (a *app) deployed(ctx context.Context, env *spec.Environment) (*envdiff.Live, error) {
	blob, _, err := a.openState(ctx, env)
	if err != nil {
		return nil, err
	}
	st, _, err := state.NewStore(blob).Read(ctx, env.Name)
	switch {
	case errors.Is(err, state.ErrNotFound):
		return envdiff.Deployed(nil, nil), nil
	case err != nil:
		return nil, fmt.Errorf("reading the state of %s: %w", env.Name, err)
	}
	if len(st.Resources) == 0 && len(st.OnDemand) == 0 {
		return envdiff.Deployed(st, nil), nil
	}
	clients, err := a.cloudClients(ctx, env)
	if err != nil {
		return nil, err
	}
	obs, err := provision.Observe(ctx, clients, env.Name)
	if err != nil {
		return nil, fmt.Errorf("reading what is live in %s: %w", env.Name, err)
	}
	return envdiff.Deployed(st, obs), nil
}

// lookedUp remembers the values the environments took from the operator's
// variables, so that the backend's environment values that hold one (they
// may be secrets) are not printed.
type lookedUp struct {
	lookup func(string) (string, bool)
	mu     sync.Mutex
	values []string
}

func (l *lookedUp) get(name string) (string, bool) {
	v, ok := l.lookup(name)
	if ok && v != "" {
		l.mu.Lock()
		l.values = append(l.values, v)
		l.mu.Unlock()
	}
	return v, ok
}

func (l *lookedUp) hide(key, value string) bool {
	if !strings.HasPrefix(key, "services.backend.env.") {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, v := range l.values {
		if strings.Contains(value, v) {
			return true
		}
	}
	return false
}
