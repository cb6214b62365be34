package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/provision"
)

// deploySigner returns the key acco logs in to the services host with: the
// private half of the keypair the host was created with.
//
// It is, in order: the file given with --identity (or ACCO_SSH_KEY); else
// the key loaded in ssh-agent ($SSH_AUTH_SOCK) that matches the keypair;
// else the file next to keypairs.NAME.public_key_file without its .pub.
// A key that does not match the keypair is refused: the host would refuse
// it too, after a long wait.
func (a *app) deploySigner(env *spec.Environment, identity string) (ssh.Signer, error) {
	inst := env.HostInstance()
	if inst == nil {
		return nil, fmt.Errorf("services.host %q names no instance", env.Services.Host)
	}
	kpName := inst.Keypair
	keys, err := provision.PublicKeys(env)
	if err != nil {
		return nil, err
	}
	wantLine, ok := keys[kpName]
	if !ok {
		return nil, fmt.Errorf("instances.%s.keypair: no keypair %q in keypairs", env.Services.Host, kpName)
	}
	want, _, _, _, err := ssh.ParseAuthorizedKey([]byte(wantLine))
	if err != nil {
		return nil, fmt.Errorf("keypairs.%s: the public key does not parse: %w", kpName, err)
	}
	matches := func(s ssh.Signer) bool { return bytes.Equal(s.PublicKey().Marshal(), want.Marshal()) }
	fp := ssh.FingerprintSHA256(want)

	if identity == "" {
		identity = a.getenv("ACCO_SSH_KEY")
	}
	// load reads the key at path, which must be the private half of want.
	load := func(path string) (ssh.Signer, error) {
		s, err := a.signerFromFile(path, kpName, fp)
		if err != nil {
			return nil, err
		}
		if !matches(s) {
			return nil, fmt.Errorf("the key %s (%s) is not the private half of keypairs.%s (%s): give the deploy key with --identity or ACCO_SSH_KEY", path, ssh.FingerprintSHA256(s.PublicKey()), kpName, fp)
		}
		return s, nil
	}
	if identity != "" {
		return load(identity)
	}
	if s := a.agentSigner(matches); s != nil {
		return s, nil
	}
	kp := env.Keypairs[kpName]
	if kp != nil && strings.HasSuffix(kp.PublicKeyFile, ".pub") {
		pub, err := env.LocalPath(kp.PublicKeyFile)
		if err == nil {
			path := strings.TrimSuffix(pub, ".pub")
			if _, err := os.Stat(path); err == nil {
				return load(path)
			}
		}
	}
	return nil, withHint(fmt.Errorf("no private key for keypairs.%s (%s)", kpName, fp),
		"load it into ssh-agent (ssh-add FILE), or give its file with --identity FILE or ACCO_SSH_KEY")
}

// signerFromFile reads an unencrypted private key; a passphrase-protected
// one must come through ssh-agent.
func (a *app) signerFromFile(path, kpName, fp string) (ssh.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the private key of keypairs.%s: %w", kpName, err)
	}
	s, err := ssh.ParsePrivateKey(data)
	var pass *ssh.PassphraseMissingError
	switch {
	case errors.As(err, &pass):
		return nil, withHint(fmt.Errorf("the private key %s is protected by a passphrase", path),
			"load it into ssh-agent (ssh-add %s) and run again: acco uses the agent's key %s", path, fp)
	case err != nil:
		return nil, fmt.Errorf("reading the private key %s: %w", path, err)
	}
	return s, nil
}

// agentSigner returns the ssh-agent key that matches, or nil (no agent, or
// no such key).
func (a *app) agentSigner(matches func(ssh.Signer) bool) ssh.Signer {
	sock := a.getenv("SSH_AUTH_SOCK")
	if sock == "" {
		return nil
	}
	conn, err := net.Dial("unix", sock)
	if err != nil {
		return nil
	}
	// The connection stays open for the run: the agent signs each login.
	signers, err := agent.NewClient(conn).Signers()
	if err != nil {
		conn.Close()
		return nil
	}
	for _, s := range signers {
		if matches(s) {
			return s
		}
	}
	conn.Close()
	return nil
}
