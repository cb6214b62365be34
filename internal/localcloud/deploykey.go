package localcloud

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"
)

// deployKeyFile is the local cloud's deploy key (private half; the public
// half is the same name with .pub), kept in its directory.
const deployKeyFile = "deploy-key"

// DeployKey is the SSH key pair the local cloud's environments are deployed
// with: the public half goes into keypairs.deploy (ACCO_DEPLOY_PUBLIC_KEY_FILE),
// the private half logs acco in to the instances (ACCO_SSH_KEY).
type DeployKey struct {
	Private string // path of the private key (OpenSSH format, mode 0600)
	Public  string // path of the public key (authorized_keys line)
}

// EnsureDeployKey returns the deploy key kept in dir, making an ed25519
// pair the first time. A pair whose halves do not match is an error that
// names the files, never replaced silently: instances may hold it.
func EnsureDeployKey(dir string) (DeployKey, error) {
	k := DeployKey{Private: filepath.Join(dir, deployKeyFile), Public: filepath.Join(dir, deployKeyFile+".pub")}
	priv, errPriv := os.ReadFile(k.Private)
	pub, errPub := os.ReadFile(k.Public)
	switch {
	case errPriv == nil && errPub == nil:
		signer, err := ssh.ParsePrivateKey(priv)
		if err != nil {
			return k, fmt.Errorf("the local cloud's deploy key %s: %w (remove %s and %s to make a new one)", k.Private, err, k.Private, k.Public)
		}
		want, _, _, _, err := ssh.ParseAuthorizedKey(pub)
		if err != nil {
			return k, fmt.Errorf("the local cloud's deploy key %s: %w (remove %s and %s to make a new one)", k.Public, err, k.Private, k.Public)
		}
		if !bytes.Equal(want.Marshal(), signer.PublicKey().Marshal()) {
			return k, fmt.Errorf("the local cloud's deploy keys %s and %s are not one pair (remove both to make a new one)", k.Private, k.Public)
		}
		return k, nil
	case errors.Is(errPriv, os.ErrNotExist) && errors.Is(errPub, os.ErrNotExist):
	case errPriv != nil && !errors.Is(errPriv, os.ErrNotExist):
		return k, fmt.Errorf("read the local cloud's deploy key: %w", errPriv)
	case errPub != nil && !errors.Is(errPub, os.ErrNotExist):
		return k, fmt.Errorf("read the local cloud's deploy key: %w", errPub)
	default:
		return k, fmt.Errorf("the local cloud's deploy key is half there (%s, %s): remove the one that exists to make a new pair", k.Private, k.Public)
	}
	pk, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return k, fmt.Errorf("make the local cloud's deploy key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(sk, "acco-local-deploy")
	if err != nil {
		return k, fmt.Errorf("encode the local cloud's deploy key: %w", err)
	}
	sshPub, err := ssh.NewPublicKey(pk)
	if err != nil {
		return k, fmt.Errorf("encode the local cloud's deploy key: %w", err)
	}
	line := append(bytes.TrimSuffix(ssh.MarshalAuthorizedKey(sshPub), []byte("\n")), " acco-local-deploy\n"...)
	// The public half last: a pair is complete once both exist.
	if err := writeFileAtomic(k.Private, pem.EncodeToMemory(block), 0o600); err != nil {
		return k, err
	}
	if err := writeFileAtomic(k.Public, line, 0o644); err != nil {
		return k, err
	}
	return k, nil
}
