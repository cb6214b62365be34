package state_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/accoreboot/acco/state"
)

// writeSerials writes a state n times and returns it (at serial n) with its
// ETag.
func writeSerials(t *testing.T, s *state.Store, n int) (*state.State, string) {
	t.Helper()
	ctx := t.Context()
	st := state.New("test", "v")
	etag := ""
	for range n {
		var err error
		if etag, err = s.Write(ctx, "test", st, etag); err != nil {
			t.Fatal(err)
		}
	}
	return st, etag
}

func TestRollbackRefused(t *testing.T) {
	ctx := t.Context()
	for _, tc := range []struct {
		name string
		put  func(t *testing.T, b state.Blob, newest *state.State, old []byte)
		want string
	}{
		{"Older serial", func(t *testing.T, b state.Blob, _ *state.State, old []byte) {
			if _, err := b.Put(ctx, state.StateKey("test"), old, ""); err != nil {
				t.Fatal(err)
			}
		}, "the state of test is serial 2, but serial 5 was written before (test/serial.json)"},
		{"Another lineage", func(t *testing.T, b state.Blob, _ *state.State, _ []byte) {
			other := state.New("test", "v")
			other.Serial = 9
			data, _ := other.Encode()
			if _, err := b.Put(ctx, state.StateKey("test"), data, ""); err != nil {
				t.Fatal(err)
			}
		}, "replaced by a state of another history"},
		{"Deleted", func(t *testing.T, b state.Blob, _ *state.State, _ []byte) {
			if err := b.Delete(ctx, state.StateKey("test"), ""); err != nil {
				t.Fatal(err)
			}
		}, "the state of test is missing, but test/serial.json says it reached serial 5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newDirBlob(t)
			s := state.NewStore(b)
			writeSerials(t, s, 2)
			old, _, err := b.Get(ctx, state.StateKey("test"))
			if err != nil {
				t.Fatal(err)
			}
			cur, etag, err := s.Read(ctx, "test")
			if err != nil {
				t.Fatal(err)
			}
			for range 3 {
				if etag, err = s.Write(ctx, "test", cur, etag); err != nil {
					t.Fatal(err)
				}
			}
			tc.put(t, b, cur, old)

			_, _, err = state.NewStore(b).Read(ctx, "test")
			var rb *state.RollbackError
			if !errors.As(err, &rb) || !errors.Is(err, state.ErrRollback) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Read = %v, want a RollbackError saying %q", err, tc.want)
			}
			if errors.Is(err, state.ErrNotFound) {
				t.Error("a deleted state with a history reads as no state yet")
			}
			// The directory store keeps the state a write replaces: serial
			// 5 when acco's Put replaced it, 4 when it was deleted.
			want := uint64(5)
			if tc.name == "Deleted" {
				want = 4
			}
			if n := rb.Newest(); n == nil || n.Serial != want || !strings.Contains(rb.Restore, n.ID) {
				t.Errorf("Newest = %+v, Restore = %q; want the kept serial %d and a command", n, rb.Restore, want)
			}

			// Accepted deliberately: written above the mark, then read
			// without AllowRollback.
			allow := state.NewStore(b, state.AllowRollback())
			if ok, err := allow.Rebase(ctx, "test"); err != nil || ok != (tc.name != "Deleted") {
				t.Fatalf("Rebase = %v, %v", ok, err)
			}
			if tc.name == "Deleted" {
				if _, _, err := allow.Read(ctx, "test"); !errors.Is(err, state.ErrNotFound) {
					t.Fatalf("Read with AllowRollback = %v, want ErrNotFound", err)
				}
				fresh := state.New("test", "v")
				if _, err := allow.Write(ctx, "test", fresh, ""); err != nil {
					t.Fatal(err)
				}
			}
			got, _, err := state.NewStore(b).Read(ctx, "test")
			if err != nil || got.Serial <= 5 {
				t.Fatalf("Read after the accepted rollback = %+v, %v; want a serial above 5", got, err)
			}
		})
	}
}

func TestWriteRefusesGoingBelowTheMark(t *testing.T) {
	ctx := t.Context()
	b := newDirBlob(t)
	s := state.NewStore(b)
	st, _ := writeSerials(t, s, 3)
	// Someone replaces the state with an older one of the same lineage;
	// a writer that read it without the check must still not go below.
	old := *st
	old.Serial = 0
	data, _ := old.Encode()
	etag, err := b.Put(ctx, state.StateKey("test"), data, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := state.NewStore(b).Write(ctx, "test", &old, etag); !errors.Is(err, state.ErrRollback) {
		t.Errorf("Write below the mark = %v, want ErrRollback", err)
	}
}

func TestNoMarkYetIsAccepted(t *testing.T) {
	ctx := t.Context()
	b := newDirBlob(t)
	writeSerials(t, state.NewStore(b), 2)
	if err := b.Delete(ctx, state.MarkKey("test"), ""); err != nil {
		t.Fatal(err)
	}
	s := state.NewStore(b)
	st, etag, err := s.Read(ctx, "test")
	if err != nil {
		t.Fatalf("Read of a state written before marks existed: %v", err)
	}
	if _, err := s.Write(ctx, "test", st, etag); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Get(ctx, state.MarkKey("test")); err != nil {
		t.Errorf("the mark was not written: %v", err)
	}
}

// A store written before marks existed: the versions kept stand for the
// mark.
func TestRollbackSeenInTheHistoryWithoutAMark(t *testing.T) {
	ctx := t.Context()
	b := newDirBlob(t)
	s := state.NewStore(b)
	writeSerials(t, s, 2)
	old, _, err := b.Get(ctx, state.StateKey("test"))
	if err != nil {
		t.Fatal(err)
	}
	writeSerials(t, state.NewStore(b), 0)
	cur, etag, err := s.Read(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(ctx, "test", cur, etag); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, state.MarkKey("test"), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(ctx, state.StateKey("test"), old, ""); err != nil {
		t.Fatal(err)
	}
	_, _, err = state.NewStore(b).Read(ctx, "test")
	var rb *state.RollbackError
	if !errors.As(err, &rb) || !rb.FromHistory || rb.MarkSerial != 3 || !strings.Contains(err.Error(), "the versions of test/state.json kept") {
		t.Fatalf("Read = %v, want a RollbackError from the history", err)
	}
}

func TestReadMakesAMissingMark(t *testing.T) {
	ctx := t.Context()
	b := newDirBlob(t)
	writeSerials(t, state.NewStore(b), 2)
	if err := b.Delete(ctx, state.MarkKey("test"), ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := state.NewStore(b).Read(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	data, _, err := b.Get(ctx, state.MarkKey("test"))
	if err != nil || !strings.Contains(string(data), `"serial": 2`) {
		t.Errorf("mark after Read = %s, %v; want serial 2", data, err)
	}
}
