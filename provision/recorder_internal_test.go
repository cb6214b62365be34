package provision

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accoreboot/acco/state"
)

// gateBlob counts the PUTs of the state and the mark, and lets a test hold
// or fail a PUT of the state: before its Nth PUT of the state (from 1) it
// calls hook(N), whose error fails the PUT.
type gateBlob struct {
	state.Blob
	hook func(n int) error

	mu               sync.Mutex
	statePuts, marks int
}

func (g *gateBlob) Put(ctx context.Context, key string, data []byte, cond state.Cond) (string, error) {
	g.mu.Lock()
	switch key {
	case state.StateKey("test"):
		g.statePuts++
	case state.MarkKey("test"):
		g.marks++
	}
	n := g.statePuts
	g.mu.Unlock()
	if key == state.StateKey("test") && g.hook != nil {
		if err := g.hook(n); err != nil {
			return "", err
		}
	}
	return g.Blob.Put(ctx, key, data, cond)
}

func (g *gateBlob) puts() (statePuts, marks int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.statePuts, g.marks
}

// newTestRecorder returns a recorder of a new state of environment test
// over g, as Apply makes it.
func newTestRecorder(t *testing.T, g *gateBlob) *recorder {
	t.Helper()
	d := state.NewDirBlob(filepath.Join(t.TempDir(), "state"))
	if _, err := d.EnsureBucket(t.Context()); err != nil {
		t.Fatal(err)
	}
	g.Blob = d
	return &recorder{store: state.NewStore(g), env: "test", st: state.New("test", "v"), status: map[string]string{}, attempts: 3, retryDelay: time.Millisecond}
}

// waitChanges waits until n changes have been made to r's state.
func waitChanges(r *recorder, n uint64) {
	for {
		r.mu.Lock()
		c := r.changes
		r.mu.Unlock()
		if c >= n {
			return
		}
		runtime.Gosched()
	}
}

func instanceRes(i int) *state.Resource {
	return &state.Resource{Address: fmt.Sprintf("instance.app%d", i), Kind: "instance", ID: fmt.Sprintf("i-%d", i)}
}

// N operations finish while the first write is in flight: their changes
// are written together by the next write.
func TestRecorderGroupsConcurrentWrites(t *testing.T) {
	const n = 50
	release := make(chan struct{})
	g := &gateBlob{hook: func(put int) error {
		if put == 1 {
			<-release
		}
		return nil
	}}
	r := newTestRecorder(t, g)
	ctx := t.Context()
	errs := make(chan error, n)
	var wg sync.WaitGroup
	wg.Go(func() { errs <- r.finish(ctx, "instance.app0", instanceRes(0)) })
	waitChanges(r, 1)
	for i := 1; i < n; i++ {
		wg.Go(func() { errs <- r.finish(ctx, fmt.Sprintf("instance.app%d", i), instanceRes(i)) })
	}
	waitChanges(r, n)
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("finish: %v", err)
		}
	}
	if puts, marks := g.puts(); puts != 2 || marks != 0 {
		t.Errorf("%d finish calls made %d PUTs of the state and %d of the mark; want 2 (the first, then all the others together) and 0", n, puts, marks)
	}
	if err := r.finalize(ctx); err != nil {
		t.Fatal(err)
	}
	if puts, marks := g.puts(); puts != 2 || marks != 1 {
		t.Errorf("after finalize: %d PUTs of the state, %d of the mark; want 2 and 1 (nothing left to write, the mark raised once)", puts, marks)
	}
	st, _, err := state.NewStore(g.Blob).Read(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Resources) != n || st.Serial != 2 {
		t.Errorf("stored state: %d resources at serial %d, want %d at serial 2", len(st.Resources), st.Serial, n)
	}
	for i := range n {
		if _, ok := st.Resource(fmt.Sprintf("instance.app%d", i)); !ok {
			t.Errorf("instance.app%d is not in the stored state", i)
		}
	}
	if snap := r.snapshot(); snap.Serial != 2 || len(snap.Resources) != n {
		t.Errorf("snapshot: serial %d with %d resources", snap.Serial, len(snap.Resources))
	}
}

// The write of a batch fails: every caller whose change it covered gets
// the error; their changes stay and go with the next write.
func TestRecorderFailedWriteReachesItsBatch(t *testing.T) {
	const n = 10
	diskFull := errors.New("disk full")
	release := make(chan struct{})
	g := &gateBlob{hook: func(put int) error {
		switch put {
		case 1:
			<-release
		case 2:
			return diskFull
		}
		return nil
	}}
	r := newTestRecorder(t, g)
	ctx := t.Context()
	first := make(chan error, 1)
	go func() { first <- r.intent(ctx, "instance.app0", "create") }()
	waitChanges(r, 1)
	errs := make(chan error, n)
	for i := 1; i <= n; i++ {
		go func() { errs <- r.finish(ctx, fmt.Sprintf("instance.app%d", i), instanceRes(i)) }()
	}
	waitChanges(r, n+1)
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("intent, written before the failure: %v", err)
	}
	for range n {
		if err := <-errs; !errors.Is(err, diskFull) {
			t.Errorf("finish in the failed batch = %v, want the write's error", err)
		}
	}
	stored, _, err := state.NewStore(g.Blob).Read(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(stored.Pending) != 1 || len(stored.Resources) != 0 {
		t.Errorf("stored state: pending %+v, resources %+v; want the intent only", stored.Pending, stored.Resources)
	}

	// The next change's write carries the failed ones.
	if err := r.finish(ctx, "instance.app0", instanceRes(0)); err != nil {
		t.Fatal(err)
	}
	stored, _, err = state.NewStore(g.Blob).Read(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(stored.Pending) != 0 || len(stored.Resources) != n+1 {
		t.Errorf("stored state after the next write: pending %+v, %d resources; want none and %d", stored.Pending, len(stored.Resources), n+1)
	}
}

// A failed write with nothing after it: finalize writes what it left.
func TestRecorderFinalizeWritesWhatFailed(t *testing.T) {
	g := &gateBlob{hook: func(put int) error {
		if put == 2 {
			return errors.New("disk full")
		}
		return nil
	}}
	r := newTestRecorder(t, g)
	ctx := t.Context()
	if err := r.finish(ctx, "instance.app1", instanceRes(1)); err != nil {
		t.Fatal(err)
	}
	if err := r.finish(ctx, "instance.app2", instanceRes(2)); err == nil {
		t.Fatal("finish whose write failed returned no error")
	}
	if err := r.finalize(ctx); err != nil {
		t.Fatal(err)
	}
	stored, _, err := state.NewStore(g.Blob).Read(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := stored.Resource("instance.app2"); !ok || stored.Serial != 2 {
		t.Errorf("stored state at serial %d without instance.app2 after finalize", stored.Serial)
	}
	data, _, err := g.Blob.Get(ctx, state.MarkKey("test"))
	if err != nil {
		t.Fatalf("no mark after finalize: %v", err)
	}
	if want := `"serial": 2`; !strings.Contains(string(data), want) {
		t.Errorf("mark %s, want %s", data, want)
	}
}
