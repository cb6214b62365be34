package state_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/accoreboot/acco/state"
)

func TestDeleteDumps(t *testing.T) {
	ctx := t.Context()
	b := newDirBlob(t)
	keep := []string{"test/state.json", "test/dumps/main2/s1/acco.dump.sealed", "prod/dumps/main/s1/acco.dump.sealed"}
	gone := []string{"test/dumps/main/s1/acco.dump.sealed", "test/dumps/main/s1/manifest.json.sealed", "test/dumps/main/s2/acco.dump.sealed"}
	for _, k := range append(slices.Clone(keep), gone...) {
		if _, err := b.Put(ctx, k, []byte("x"), ""); err != nil {
			t.Fatal(err)
		}
	}
	if got := state.DumpPrefix("test", "main"); got != "test/dumps/main/" {
		t.Errorf("DumpPrefix = %q", got)
	}
	n, err := state.DeleteDumps(ctx, b, "test", "main")
	if err != nil || n != len(gone) {
		t.Fatalf("DeleteDumps = %d, %v; want %d", n, err, len(gone))
	}
	for _, k := range keep {
		if _, _, err := b.Get(ctx, k); err != nil {
			t.Errorf("%s: %v (it is not a dump of test's main)", k, err)
		}
	}
	if left, err := b.List(ctx, "test/dumps/main/"); err != nil || len(left) != 0 {
		t.Errorf("left %v, %v", left, err)
	}
	if n, err := state.DeleteDumps(ctx, b, "test", "main"); err != nil || n != 0 {
		t.Errorf("second DeleteDumps = %d, %v", n, err)
	}
	for _, bad := range [][2]string{{"test", ""}, {"test", "a/b"}, {"test", ".."}, {"", "main"}, {"a/b", "main"}} {
		if _, err := state.DeleteDumps(ctx, b, bad[0], bad[1]); err == nil || !strings.Contains(err.Error(), "invalid") {
			t.Errorf("DeleteDumps(%q, %q) = %v, want a refusal", bad[0], bad[1], err)
		}
	}
}
