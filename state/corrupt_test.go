package state_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/accoreboot/acco/state"
)

// TestCorruptStateNamesTheVersions: a stored state that cannot be decoded
// is refused with an error naming the versions kept and the command that
// restores the newest good one; that command works.
func TestCorruptStateNamesTheVersions(t *testing.T) {
	ctx := t.Context()
	for _, tc := range []struct {
		name, content, want string
	}{
		{"Truncated", `{"format_version":1,"lineage":"`, "unexpected end of JSON input"},
		{"Not JSON", "\x00\x01garbage", "invalid character"},
		{"Not a state", `{"hello":"world"}`, "no format_version"},
		{"Another environment", "", `it is the state of environment "prod"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			b := state.NewDirBlob(dir)
			if _, err := b.EnsureBucket(ctx); err != nil {
				t.Fatal(err)
			}
			s := state.NewStore(b)
			writeSerials(t, s, 3)
			content := []byte(tc.content)
			if tc.content == "" {
				other := state.New("prod", "v")
				content, _ = other.Encode()
			}
			if _, err := b.Put(ctx, state.StateKey("test"), content, ""); err != nil {
				t.Fatal(err)
			}

			_, _, err := state.NewStore(b).Read(ctx, "test")
			var ce *state.CorruptError
			if !errors.As(err, &ce) || !errors.Is(err, state.ErrCorrupt) {
				t.Fatalf("Read = %v, want a CorruptError", err)
			}
			msg := err.Error()
			for _, w := range []string{
				tc.want,
				"the state of test (test/state.json) cannot be read",
				"versions kept, newest first: state.json (damaged, current) versions/",
				"(serial 3)",
				"restore the newest good one (versions/",
				", serial 3) with: cp ",
			} {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q\nlacks %q", msg, w)
				}
			}
			if ce.Good == nil || ce.Good.Serial != 3 || ce.Good.Damaged {
				t.Fatalf("Good = %+v, want the kept serial 3", ce.Good)
			}

			// The command named puts the good state back.
			args := strings.Fields(ce.Restore)
			if len(args) != 3 || args[0] != "cp" {
				t.Fatalf("Restore = %q", ce.Restore)
			}
			data, err := os.ReadFile(args[1])
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(args[2], data, 0o600); err != nil {
				t.Fatal(err)
			}
			got, _, err := state.NewStore(b).Read(ctx, "test")
			if err != nil || got.Serial != 3 {
				t.Fatalf("Read after the restore = %+v, %v; want serial 3", got, err)
			}
		})
	}
}

// TestCorruptStateWithoutGoodVersion: when no version kept can be read,
// the error says so and what to do instead.
func TestCorruptStateWithoutGoodVersion(t *testing.T) {
	ctx := t.Context()
	b := newDirBlob(t)
	if _, err := b.Put(ctx, state.StateKey("test"), []byte("{"), ""); err != nil {
		t.Fatal(err)
	}
	_, _, err := state.NewStore(b).Read(ctx, "test")
	if !errors.Is(err, state.ErrCorrupt) || !strings.Contains(err.Error(), "no version kept can be read: look at it with acco state pull test") {
		t.Fatalf("Read = %v", err)
	}
}
