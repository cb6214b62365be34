package state_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/accoreboot/acco/state"
	"github.com/accoreboot/acco/state/statetest"
)

// countingBlob records the requests made to the Blob it wraps, as
// "METHOD key".
type countingBlob struct {
	state.Blob
	mu   sync.Mutex
	reqs []string
}

func (c *countingBlob) add(method, key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reqs = append(c.reqs, method+" "+key)
}

// take returns the requests recorded since the last take.
func (c *countingBlob) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.reqs
	c.reqs = nil
	return out
}

func (c *countingBlob) Get(ctx context.Context, key string) ([]byte, string, error) {
	c.add("GET", key)
	return c.Blob.Get(ctx, key)
}

func (c *countingBlob) Put(ctx context.Context, key string, data []byte, cond state.Cond) (string, error) {
	c.add("PUT", key)
	return c.Blob.Put(ctx, key, data, cond)
}

// markSerial returns the serial of test's high-water mark.
func markSerial(t *testing.T, b state.Blob) string {
	t.Helper()
	data, _, err := b.Get(t.Context(), state.MarkKey("test"))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), `"serial": `); ok {
			return strings.TrimSuffix(v, ",")
		}
	}
	t.Fatalf("no serial in the mark %s", data)
	return ""
}

func TestWriteWithAKnownETagIsOnePut(t *testing.T) {
	ctx := t.Context()
	putState, putMark := "PUT "+state.StateKey("test"), "PUT "+state.MarkKey("test")
	for _, tc := range []struct {
		name string
		// prepare returns the state and ETag to write with s.
		prepare func(t *testing.T, s *state.Store, b state.Blob) (*state.State, string)
	}{
		{"AfterWrite", func(t *testing.T, s *state.Store, _ state.Blob) (*state.State, string) {
			return writeSerials(t, s, 1)
		}},
		{"AfterRead", func(t *testing.T, s *state.Store, b state.Blob) (*state.State, string) {
			writeSerials(t, state.NewStore(b), 2)
			st, etag, err := s.Read(ctx, "test")
			if err != nil {
				t.Fatal(err)
			}
			return st, etag
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &countingBlob{Blob: newDirBlob(t)}
			s := state.NewStore(b)
			st, etag := tc.prepare(t, s, b)
			b.take()

			var err error
			if etag, err = s.Write(ctx, "test", st, etag); err != nil {
				t.Fatal(err)
			}
			if got := b.take(); !slices.Equal(got, []string{putState, putMark}) {
				t.Errorf("Write: requests %q, want the state's PUT and the mark's", got)
			}
			for range 3 {
				if etag, err = s.WriteDeferMark(ctx, "test", st, etag); err != nil {
					t.Fatal(err)
				}
			}
			if got := b.take(); !slices.Equal(got, []string{putState, putState, putState}) {
				t.Errorf("3 WriteDeferMark: requests %q, want 3 PUTs of the state", got)
			}
			if m := markSerial(t, b.Blob); m != fmt.Sprint(st.Serial-3) {
				t.Errorf("mark after deferred writes = %s, want %d (the last Write)", m, st.Serial-3)
			}
			if err := s.RaiseMark(ctx, "test"); err != nil {
				t.Fatal(err)
			}
			if err := s.RaiseMark(ctx, "test"); err != nil {
				t.Fatal(err)
			}
			if got := b.take(); !slices.Equal(got, []string{putMark}) {
				t.Errorf("2 RaiseMark: requests %q, want one PUT of the mark", got)
			}
			if m := markSerial(t, b.Blob); m != fmt.Sprint(st.Serial) {
				t.Errorf("mark after RaiseMark = %s, want %d", m, st.Serial)
			}
			got, gotEtag, err := state.NewStore(b.Blob).Read(ctx, "test")
			if err != nil || gotEtag != etag || got.Serial != st.Serial {
				t.Fatalf("Read = serial %v, %q, %v; want serial %d, ETag %q", got.Serial, gotEtag, err, st.Serial, etag)
			}
		})
	}
}

// A known ETag that is no longer the stored one: the conditional PUT
// fails, Write reads and says conflict, and the next Write with it reads
// first again.
func TestWriteWithAStaleKnownETag(t *testing.T) {
	ctx := t.Context()
	b := &countingBlob{Blob: newDirBlob(t)}
	s := state.NewStore(b)
	st, etag := writeSerials(t, s, 1)
	other, otherEtag, err := state.NewStore(b.Blob).Read(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := state.NewStore(b.Blob).Write(ctx, "test", other, otherEtag); err != nil {
		t.Fatal(err)
	}
	b.take()
	st.SetResource(state.Resource{Address: "instance.app", Kind: "instance", ID: "i-1"})
	if _, err := s.WriteDeferMark(ctx, "test", st, etag); !errors.Is(err, state.ErrConflict) {
		t.Fatalf("Write with a stale ETag = %v, want ErrConflict", err)
	}
	if got := b.take(); !slices.Equal(got, []string{"PUT test/state.json", "GET test/state.json"}) {
		t.Errorf("requests %q, want the PUT that fails its condition, then the GET that sees it is not ours", got)
	}
	if _, err := s.WriteDeferMark(ctx, "test", st, etag); !errors.Is(err, state.ErrConflict) {
		t.Fatalf("second Write with a stale ETag = %v, want ErrConflict", err)
	}
	if got := b.take(); !slices.Equal(got, []string{"GET test/state.json"}) {
		t.Errorf("requests %q, want the GET that refuses before any PUT", got)
	}
	// RaiseMark still knows what this Store wrote (serial 1), which is
	// below what is stored: nothing to do.
	if err := s.RaiseMark(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	if got := b.take(); len(got) != 0 {
		t.Errorf("RaiseMark: requests %q, want none", got)
	}
}

// A run that died before raising the mark leaves it behind the state; a
// Read raises it, and a rollback above the old mark is then caught.
func TestReadRaisesALaggingMark(t *testing.T) {
	ctx := t.Context()
	b := newDirBlob(t)
	s := state.NewStore(b)
	st, etag := writeSerials(t, s, 1)
	var old []byte
	for i := range 3 {
		var err error
		if etag, err = s.WriteDeferMark(ctx, "test", st, etag); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if old, _, err = b.Get(ctx, state.StateKey("test")); err != nil {
				t.Fatal(err)
			}
		}
	}
	if m := markSerial(t, b); m != "1" {
		t.Fatalf("mark = %s, want 1 (deferred)", m)
	}
	if _, _, err := state.NewStore(b).Read(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	if m := markSerial(t, b); m != "4" {
		t.Fatalf("mark after Read = %s, want 4", m)
	}
	if _, err := b.Put(ctx, state.StateKey("test"), old, ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := state.NewStore(b).Read(ctx, "test"); !errors.Is(err, state.ErrRollback) {
		t.Fatalf("Read of serial 2 after serial 4 = %v, want ErrRollback", err)
	}
}

// A Write that skips the read, whose PUT lands but whose answer is lost:
// the client's retry fails its condition, and Write finds its own bytes.
func TestWriteWithAKnownETagWhoseAnswerIsLost(t *testing.T) {
	ctx := t.Context()
	d := newDirBlob(t)
	writeSerials(t, state.NewStore(d), 1)
	b := &countingBlob{Blob: statetest.RedeliverBlob(d, state.StateKey("test"))}
	s := state.NewStore(b)
	st, etag, err := s.Read(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	b.take()
	st.SetResource(state.Resource{Address: "instance.app", Kind: "instance", ID: "i-1"})
	newEtag, err := s.WriteDeferMark(ctx, "test", st, etag)
	if err != nil {
		t.Fatalf("Write whose PUT was delivered twice: %v", err)
	}
	if got := b.take(); !slices.Equal(got, []string{"PUT test/state.json", "GET test/state.json"}) {
		t.Errorf("requests %q, want the PUT (no read first), then the GET that finds our bytes", got)
	}
	got, gotEtag, err := state.NewStore(d).Read(ctx, "test")
	if err != nil || gotEtag != newEtag || got.Serial != 2 || len(got.Resources) != 1 {
		t.Fatalf("Read = %+v, %q, %v; want serial 2 and ETag %q", got, gotEtag, err, newEtag)
	}
	// And the next Write knows the ETag found.
	if _, err := s.WriteDeferMark(ctx, "test", st, newEtag); err != nil {
		t.Fatal(err)
	}
	if got := b.take(); !slices.Equal(got, []string{"PUT test/state.json"}) {
		t.Errorf("requests %q, want one PUT", got)
	}
}
