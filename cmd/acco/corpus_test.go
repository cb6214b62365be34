package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/accoreboot/acco/internal/spec/spectest"
)

// TestValidateBrokenCorpus runs `acco validate ENV` on every broken
// environment of the spec corpus: each exits 1 and prints its
// file:line:column message first on stderr.
func TestValidateBrokenCorpus(t *testing.T) {
	cases, err := spectest.Load("../../internal/spec/testdata/broken", "../../environments/defaults.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			dir := t.TempDir()
			envDir := filepath.Join(dir, "environments")
			if err := os.MkdirAll(envDir, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, data := range c.Files {
				if err := os.WriteFile(filepath.Join(envDir, name), data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			t.Chdir(dir)
			var out, errb bytes.Buffer
			code := run(context.Background(), []string{"validate", c.Env}, streams{in: strings.NewReader(""), out: &out, err: &errb}, c.Lookup)
			if code != exitError {
				t.Fatalf("exit code %d, want %d; stderr:\n%s", code, exitError, errb.String())
			}
			if !strings.HasPrefix(errb.String(), c.Want) {
				t.Errorf("stderr does not start with the expected message\n got: %s\nwant: %s", errb.String(), c.Want)
			}
			if out.Len() != 0 {
				t.Errorf("stdout not empty: %s", out.String())
			}
		})
	}
}
