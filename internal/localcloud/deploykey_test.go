package localcloud

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestEnsureDeployKey(t *testing.T) {
	dir := t.TempDir()
	k, err := EnsureDeployKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if k.Private != filepath.Join(dir, "deploy-key") || k.Public != filepath.Join(dir, "deploy-key.pub") {
		t.Fatalf("key files %+v", k)
	}
	priv, err := os.ReadFile(k.Private)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(k.Private); fi.Mode().Perm() != 0o600 {
		t.Errorf("private key mode %v, want 0600", fi.Mode().Perm())
	}
	signer, err := ssh.ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := os.ReadFile(k.Public)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(signer.PublicKey())), "\n") + " acco-local-deploy\n"
	if string(pub) != want {
		t.Errorf("public key %q, want %q", pub, want)
	}

	// Made once: the next call keeps the pair.
	if _, err := EnsureDeployKey(dir); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(k.Private); string(again) != string(priv) {
		t.Error("the deploy key was made again")
	}

	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string
	}{
		{"half there", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "deploy-key.pub"), pub, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "half there"},
		{"not one pair", func(t *testing.T, dir string) {
			other, err := EnsureDeployKey(dir)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(other.Public, pub, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "are not one pair"},
		{"garbage", func(t *testing.T, dir string) {
			for _, f := range []string{"deploy-key", "deploy-key.pub"} {
				if err := os.WriteFile(filepath.Join(dir, f), []byte("garbage\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}, "remove "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.setup(t, dir)
			_, err := EnsureDeployKey(dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one with %q", err, tt.want)
			}
		})
	}
}
