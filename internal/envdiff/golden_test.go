package envdiff_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/accoreboot/acco/internal/envdiff"
	"github.com/accoreboot/acco/internal/spec"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestShippedGolden diffs the shipped environments test and prod, as
// `acco diff test prod` prints them without operator variables set.
func TestShippedGolden(t *testing.T) {
	load := func(name string) *spec.Environment {
		t.Helper()
		e, err := spec.Load("../../environments", name, nil)
		if err != nil {
			t.Fatalf("load %s: %v", name, err)
		}
		return e
	}
	res := envdiff.Compare(load("test"), load("prod"), envdiff.Options{})
	var buf bytes.Buffer
	if err := res.Render(&buf); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "test-prod.golden")
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("acco diff test prod differs from %s (review, then go test -update):\n%s", golden, buf.String())
	}
}
