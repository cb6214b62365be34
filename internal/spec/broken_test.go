package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/accoreboot/acco/internal/spec/spectest"
)

// TestBroken loads every testdata/broken/*.txtar case (see package
// spectest for their format) and compares the first lines of the error with
// the case's want section. Set ACCO_UPDATE_BROKEN=1 to rewrite the want
// sections with the current output (one line); review the diff before
// committing.
func TestBroken(t *testing.T) {
	cases, err := spectest.Load("testdata/broken", filepath.Join(shippedDir, DefaultsFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) < 30 {
		t.Fatalf("found %d broken cases, want at least 30", len(cases))
	}
	update := os.Getenv("ACCO_UPDATE_BROKEN") == "1"
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for name, data := range c.Files {
				fsys[name] = &fstest.MapFile{Data: data}
			}
			e, err := load(fsys, "environments", c.Env, c.Lookup)
			if err == nil {
				t.Fatalf("load succeeded (environment %q), want an error", e.Name)
			}
			got := err.Error()
			if update {
				first, _, _ := strings.Cut(got, "\n")
				if err := c.RewriteWant(first); err != nil {
					t.Fatal(err)
				}
				return
			}
			if c.Want == "" {
				t.Fatalf("case has no want section; got:\n%s", got)
			}
			wantLines := strings.Split(c.Want, "\n")
			gotLines := strings.Split(got, "\n")
			if len(gotLines) < len(wantLines) || strings.Join(gotLines[:len(wantLines)], "\n") != c.Want {
				t.Errorf("error mismatch\n got: %s\nwant: %s", got, c.Want)
			}
		})
	}
}

// TestBrokenCasesAreDistinct guards the corpus against copy-paste: no two
// cases may expect the same first error line.
func TestBrokenCasesAreDistinct(t *testing.T) {
	cases, err := spectest.Load("testdata/broken", filepath.Join(shippedDir, DefaultsFile))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, c := range cases {
		first, _, _ := strings.Cut(c.Want, "\n")
		if prev, dup := seen[first]; dup {
			t.Errorf("%s and %s expect the same error: %s", prev, c.Name, first)
		}
		seen[first] = c.Name
	}
}
