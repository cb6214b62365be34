// Package statetest is the conformance suite every state.Blob backend must
// pass: the object layer's conditional writes, and the locks and state
// writes built on them.
//
// A backend's test calls Run with a function returning a Blob over a fresh,
// empty, ready store (bucket created), and a FaultInjector for the faults
// only the backend's own test can produce.
package statetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accoreboot/acco/state"
)

// FaultInjector produces faults that depend on the backend.
type FaultInjector interface {
	// Redeliver returns a Blob over the same store as b whose next
	// conditional Put of key is delivered to the store twice: the first
	// delivery is performed and its answer lost, and the caller sees only
	// the answer to the second, a failed precondition. This is how a
	// client's retry of a write that had in fact succeeded looks. For S3 it
	// should go through the real SDK retry (a transport that loses the
	// answer); RedeliverBlob serves backends without a client of their own.
	Redeliver(t *testing.T, b state.Blob, key string) state.Blob
}

// RedeliverBlob wraps b so that its next conditional Put of key is
// performed twice and only the second answer is returned: the wrapper
// plays the part of a client that retries a write whose answer it lost.
func RedeliverBlob(b state.Blob, key string) state.Blob {
	r := &redeliverBlob{Blob: b, key: key}
	r.armed.Store(true)
	return r
}

type redeliverBlob struct {
	state.Blob
	key   string
	armed atomic.Bool
}

// Put performs the armed Put twice and returns the second answer.
func (r *redeliverBlob) Put(ctx context.Context, key string, data []byte, cond state.Cond) (string, error) {
	if key == r.key && cond != "" && r.armed.CompareAndSwap(true, false) {
		if _, err := r.Blob.Put(ctx, key, data, cond); err != nil {
			return "", fmt.Errorf("first delivery: %w", err)
		}
	}
	return r.Blob.Put(ctx, key, data, cond)
}

// Clock is a settable clock for Lockers under test.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock set at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const env = "test"

// Run runs the conformance suite. newBlob returns a Blob over a fresh,
// empty store that is ready for use. faults may be nil, which skips the
// tests that need it.
func Run(t *testing.T, newBlob func(t *testing.T) state.Blob, faults FaultInjector) {
	t.Run("Blob", func(t *testing.T) { runBlob(t, newBlob) })
	t.Run("Lock", func(t *testing.T) { runLock(t, newBlob, faults) })
	t.Run("Store", func(t *testing.T) { runStore(t, newBlob, faults) })
}

func runBlob(t *testing.T, newBlob func(t *testing.T) state.Blob) {
	ctx := t.Context()
	const key = "test/object.json"

	t.Run("GetMissing", func(t *testing.T) {
		b := newBlob(t)
		if _, _, err := b.Get(ctx, key); !errors.Is(err, state.ErrNotFound) {
			t.Fatalf("Get of a missing object: got %v, want ErrNotFound", err)
		}
	})

	t.Run("IfNoneMatch", func(t *testing.T) {
		b := newBlob(t)
		etag, err := b.Put(ctx, key, []byte("one"), state.IfNoneMatch)
		if err != nil {
			t.Fatalf("first Put IfNoneMatch: %v", err)
		}
		if _, err := b.Put(ctx, key, []byte("two"), state.IfNoneMatch); !errors.Is(err, state.ErrPrecondition) {
			t.Fatalf("second Put IfNoneMatch: got %v, want ErrPrecondition", err)
		}
		data, got, err := b.Get(ctx, key)
		if err != nil || string(data) != "one" || got != etag {
			t.Fatalf("Get = %q, %q, %v; want \"one\", %q", data, got, err, etag)
		}
		if strings.Contains(got, `"`) {
			t.Errorf("ETag %s has quotes", got)
		}
	})

	t.Run("IfMatch", func(t *testing.T) {
		b := newBlob(t)
		if _, err := b.Put(ctx, key, []byte("x"), state.IfMatch("0123")); !errors.Is(err, state.ErrPrecondition) {
			t.Fatalf("Put IfMatch on a missing object: got %v, want ErrPrecondition", err)
		}
		etag1, err := b.Put(ctx, key, []byte("one"), "")
		if err != nil {
			t.Fatal(err)
		}
		etag2, err := b.Put(ctx, key, []byte("two"), state.IfMatch(etag1))
		if err != nil {
			t.Fatalf("Put IfMatch current ETag: %v", err)
		}
		if etag2 == etag1 {
			t.Errorf("ETag did not change with the content: %s", etag2)
		}
		if _, err := b.Put(ctx, key, []byte("three"), state.IfMatch(etag1)); !errors.Is(err, state.ErrPrecondition) {
			t.Fatalf("Put IfMatch stale ETag: got %v, want ErrPrecondition", err)
		}
		if _, err := b.Put(ctx, key, []byte("three"), state.IfMatch(`"`+etag2+`"`)); err != nil {
			t.Fatalf("Put IfMatch quoted current ETag: %v", err)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		b := newBlob(t)
		if err := b.Delete(ctx, key, ""); err != nil {
			t.Fatalf("Delete of a missing object: %v", err)
		}
		etag, err := b.Put(ctx, key, []byte("one"), "")
		if err != nil {
			t.Fatal(err)
		}
		other, err := b.Put(ctx, "test/other.json", []byte("other"), "")
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Delete(ctx, key, state.IfMatch(other)); !errors.Is(err, state.ErrPrecondition) {
			t.Fatalf("Delete IfMatch wrong ETag: got %v, want ErrPrecondition", err)
		}
		if _, _, err := b.Get(ctx, key); err != nil {
			t.Fatalf("object gone after a refused Delete: %v", err)
		}
		if err := b.Delete(ctx, key, state.IfMatch(etag)); err != nil {
			t.Fatalf("Delete IfMatch current ETag: %v", err)
		}
		if _, _, err := b.Get(ctx, key); !errors.Is(err, state.ErrNotFound) {
			t.Fatalf("Get after Delete: got %v, want ErrNotFound", err)
		}
		if err := b.Delete(ctx, "test/other.json", ""); err != nil {
			t.Fatalf("unconditional Delete: %v", err)
		}
	})

	t.Run("List", func(t *testing.T) {
		b := newBlob(t)
		for _, k := range []string{"test/state.json", "test/lock.json", "prod/state.json", "testing/state.json"} {
			if _, err := b.Put(ctx, k, []byte("{}"), ""); err != nil {
				t.Fatal(err)
			}
		}
		got, err := b.List(ctx, "test/")
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"test/lock.json", "test/state.json"}; !slices.Equal(got, want) {
			t.Errorf("List(test/) = %q, want %q", got, want)
		}
	})
}

func info(who, op, reason string) state.LockInfo {
	return state.LockInfo{Operation: op, Who: who, Version: "v0.0.0-test", Reason: reason}
}

func runLock(t *testing.T, newBlob func(t *testing.T) state.Blob, faults FaultInjector) {
	ctx := t.Context()
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)

	t.Run("HeldRefusesSecond", func(t *testing.T) {
		b := newBlob(t)
		first, err := state.NewLocker(b).Lock(ctx, env, info("alice@laptop", "hold", "release freeze"), 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = state.NewLocker(b).Lock(ctx, env, info("bob@desk", "apply", ""), time.Minute)
		var le *state.LockError
		if !errors.As(err, &le) || !errors.Is(err, state.ErrLocked) {
			t.Fatalf("second Lock: got %v, want a *LockError", err)
		}
		if le.Holder.ID != first.Info().ID || le.Env != env {
			t.Errorf("LockError names %s/%s, want %s/%s", le.Env, le.Holder.ID, env, first.Info().ID)
		}
		for _, want := range []string{"alice@laptop", `"release freeze"`, first.Info().ID, "state of test is locked"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not contain %q", err, want)
			}
		}
		st, err := state.NewLocker(b).Status(ctx, env)
		if err != nil || st == nil || st.Who != "alice@laptop" || !st.Expires.IsZero() {
			t.Errorf("Status = %+v, %v; want alice's hold without expiry", st, err)
		}
	})

	t.Run("Contenders", func(t *testing.T) {
		b := newBlob(t)
		const n = 20
		var (
			wg      sync.WaitGroup
			won     atomic.Int32
			refused atomic.Int32
		)
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				_, err := state.NewLocker(b).Lock(ctx, env, info(fmt.Sprintf("user%d@host", i), "apply", ""), time.Minute)
				var le *state.LockError
				switch {
				case err == nil:
					won.Add(1)
				case errors.As(err, &le):
					refused.Add(1)
				default:
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("Lock: %v", err)
		}
		if won.Load() != 1 || refused.Load() != n-1 {
			t.Errorf("%d won and %d were refused; want 1 and %d", won.Load(), refused.Load(), n-1)
		}
	})

	t.Run("RetriedWriteIsOurs", func(t *testing.T) {
		if faults == nil {
			t.Skip("no fault injector")
		}
		b := newBlob(t)
		rb := faults.Redeliver(t, b, state.LockKey(env))
		lease, err := state.NewLocker(rb).Lock(ctx, env, info("alice@laptop", "apply", ""), time.Minute)
		if err != nil {
			t.Fatalf("Lock whose write was delivered twice: %v", err)
		}
		if lease.TookOver() != nil {
			t.Errorf("TookOver = %+v, want nil", lease.TookOver())
		}
		st, err := state.NewLocker(b).Status(ctx, env)
		if err != nil || st == nil || st.ID != lease.Info().ID {
			t.Fatalf("Status = %+v, %v; want our lock %s", st, err, lease.Info().ID)
		}
		if err := lease.Release(ctx); err != nil {
			t.Fatalf("Release: %v", err)
		}
		if st, err := state.NewLocker(b).Status(ctx, env); st != nil || err != nil {
			t.Fatalf("Status after Release = %+v, %v; want free", st, err)
		}
	})

	t.Run("UnrenewedLeaseExpires", func(t *testing.T) {
		b := newBlob(t)
		clock := NewClock(t0)
		first, err := state.NewLocker(b, state.WithClock(clock.Now)).Lock(ctx, env, info("alice@laptop", "apply", ""), 300*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		second := state.NewLocker(b, state.WithClock(clock.Now))
		clock.Advance(200 * time.Millisecond)
		if _, err := second.Lock(ctx, env, info("bob@desk", "apply", ""), time.Minute); !errors.Is(err, state.ErrLocked) {
			t.Fatalf("Lock before expiry: got %v, want ErrLocked", err)
		}
		clock.Advance(200 * time.Millisecond)
		lease, err := second.Lock(ctx, env, info("bob@desk", "apply", ""), time.Minute)
		if err != nil {
			t.Fatalf("Lock after expiry: %v", err)
		}
		prev := lease.TookOver()
		if prev == nil || prev.Who != "alice@laptop" || prev.ID != first.Info().ID {
			t.Fatalf("TookOver = %+v, want alice's lock %s", prev, first.Info().ID)
		}
	})

	t.Run("RenewedLeaseHolds", func(t *testing.T) {
		b := newBlob(t)
		clock := NewClock(t0)
		first, err := state.NewLocker(b, state.WithClock(clock.Now)).Lock(ctx, env, info("alice@laptop", "apply", ""), 300*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		second := state.NewLocker(b, state.WithClock(clock.Now))
		clock.Advance(200 * time.Millisecond)
		if err := first.Renew(ctx); err != nil {
			t.Fatalf("Renew: %v", err)
		}
		if want := t0.Add(500 * time.Millisecond); !first.Info().Expires.Equal(want) {
			t.Errorf("Expires after Renew = %v, want %v", first.Info().Expires, want)
		}
		clock.Advance(200 * time.Millisecond)
		if _, err := second.Lock(ctx, env, info("bob@desk", "apply", ""), time.Minute); !errors.Is(err, state.ErrLocked) {
			t.Fatalf("Lock of a renewed lease: got %v, want ErrLocked", err)
		}
	})

	t.Run("KeptAliveLeaseHolds", func(t *testing.T) {
		// Real time: the lease lasts 3s and is renewed every 100ms; after
		// 3.5s it still holds. Renewals would have to stall for about 3s
		// (a machine far busier than any CI) for this to fail.
		b := newBlob(t)
		first, err := state.NewLocker(b, state.WithRenewInterval(100*time.Millisecond)).Lock(ctx, env, info("alice@laptop", "apply", ""), 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		stop := first.KeepAlive(ctx)
		time.Sleep(3500 * time.Millisecond)
		_, err = state.NewLocker(b).Lock(ctx, env, info("bob@desk", "apply", ""), time.Minute)
		stop()
		if !errors.Is(err, state.ErrLocked) {
			t.Fatalf("Lock of a lease kept alive: got %v, want ErrLocked", err)
		}
		select {
		case <-first.Lost():
			t.Fatal("lease reported lost")
		default:
		}
		if err := first.Release(ctx); err != nil {
			t.Fatalf("Release: %v", err)
		}
		if _, err := state.NewLocker(b).Lock(ctx, env, info("bob@desk", "apply", ""), time.Minute); err != nil {
			t.Fatalf("Lock after Release: %v", err)
		}
	})

	t.Run("KeepAliveNoticesLoss", func(t *testing.T) {
		b := newBlob(t)
		first, err := state.NewLocker(b, state.WithRenewInterval(20*time.Millisecond)).Lock(ctx, env, info("alice@laptop", "apply", ""), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		stop := first.KeepAlive(ctx)
		defer stop()
		other := state.NewLocker(b)
		if _, err := other.Break(ctx, env, first.Info().ID, true); err != nil {
			t.Fatal(err)
		}
		if _, err := other.Lock(ctx, env, info("bob@desk", "apply", ""), time.Minute); err != nil {
			t.Fatal(err)
		}
		select {
		case <-first.Lost():
		case <-time.After(10 * time.Second):
			t.Fatal("Lost not closed after the lock was broken and taken")
		}
		st, err := other.Status(ctx, env)
		if err != nil || st == nil || st.Who != "bob@desk" {
			t.Fatalf("Status = %+v, %v; want bob's lock", st, err)
		}
	})

	t.Run("ReleaseAfterTakeover", func(t *testing.T) {
		b := newBlob(t)
		clock := NewClock(t0)
		first, err := state.NewLocker(b, state.WithClock(clock.Now)).Lock(ctx, env, info("alice@laptop", "apply", ""), 300*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
		second, err := state.NewLocker(b, state.WithClock(clock.Now)).Lock(ctx, env, info("bob@desk", "apply", ""), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if err := first.Release(ctx); !errors.Is(err, state.ErrLockLost) {
			t.Fatalf("Release of a lock taken over: got %v, want ErrLockLost", err)
		}
		st, err := state.NewLocker(b).Status(ctx, env)
		if err != nil || st == nil || st.ID != second.Info().ID {
			t.Fatalf("Status = %+v, %v; want bob's lock %s kept", st, err, second.Info().ID)
		}
		if err := first.Renew(ctx); err == nil {
			t.Fatal("Renew of a released lease succeeded")
		}
	})

	t.Run("Break", func(t *testing.T) {
		b := newBlob(t)
		clock := NewClock(t0)
		l := state.NewLocker(b, state.WithClock(clock.Now))
		if _, err := l.Break(ctx, env, "none", true); !errors.Is(err, state.ErrNotFound) {
			t.Fatalf("Break with no lock: got %v, want ErrNotFound", err)
		}
		lease, err := l.Lock(ctx, env, info("alice@laptop", "apply", ""), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		id := lease.Info().ID
		_, err = l.Break(ctx, env, id, false)
		if !errors.Is(err, state.ErrLocked) || !strings.Contains(err.Error(), "alice@laptop") {
			t.Fatalf("Break of an unexpired lock without force: got %v, want a refusal naming alice", err)
		}
		if _, err := l.Break(ctx, env, "wrong-id", true); !errors.Is(err, state.ErrLockMismatch) {
			t.Fatalf("Break with a wrong ID: got %v, want ErrLockMismatch", err)
		}
		if st, _ := l.Status(ctx, env); st == nil || st.ID != id {
			t.Fatalf("lock gone after refused Breaks: %+v", st)
		}
		broken, err := l.Break(ctx, env, id, true)
		if err != nil || broken.ID != id || broken.Who != "alice@laptop" {
			t.Fatalf("Break with force = %+v, %v; want alice's lock", broken, err)
		}
		if st, err := l.Status(ctx, env); st != nil || err != nil {
			t.Fatalf("Status after Break = %+v, %v; want free", st, err)
		}

		lease, err = l.Lock(ctx, env, info("alice@laptop", "apply", ""), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		clock.Advance(2 * time.Minute)
		if _, err := l.Break(ctx, env, lease.Info().ID, false); err != nil {
			t.Fatalf("Break of an expired lock without force: %v", err)
		}
	})
}

func runStore(t *testing.T, newBlob func(t *testing.T) state.Blob, faults FaultInjector) {
	ctx := t.Context()

	// seed writes a first state and returns it with its ETag.
	seed := func(t *testing.T, s *state.Store) (*state.State, string) {
		t.Helper()
		st := state.New(env, "v0.0.0-test")
		st.SetResource(state.Resource{Address: "instance.app", Kind: "instance", ID: "i-1"})
		etag, err := s.Write(ctx, env, st, "")
		if err != nil {
			t.Fatalf("first Write: %v", err)
		}
		return st, etag
	}

	t.Run("ReadWrite", func(t *testing.T) {
		s := state.NewStore(newBlob(t))
		if _, _, err := s.Read(ctx, env); !errors.Is(err, state.ErrNotFound) {
			t.Fatalf("Read with no state: got %v, want ErrNotFound", err)
		}
		st, etag := seed(t, s)
		if st.Serial != 1 {
			t.Errorf("serial after first Write = %d, want 1", st.Serial)
		}
		if _, err := s.Write(ctx, env, state.New(env, "v"), ""); !errors.Is(err, state.ErrConflict) && !errors.Is(err, state.ErrLineage) {
			t.Errorf("first Write over an existing state: got %v, want a refusal", err)
		}
		got, gotEtag, err := s.Read(ctx, env)
		if err != nil || gotEtag != etag {
			t.Fatalf("Read = %v, %q; want ETag %q", err, gotEtag, etag)
		}
		if got.Lineage != st.Lineage || got.Serial != 1 || len(got.Resources) != 1 {
			t.Errorf("Read = %+v, want what was written", got)
		}
		got.SetResource(state.Resource{Address: "network.main", Kind: "network", ID: "n-1"})
		etag2, err := s.Write(ctx, env, got, gotEtag)
		if err != nil || got.Serial != 2 {
			t.Fatalf("second Write: %v (serial %d)", err, got.Serial)
		}
		raw, err := s.Raw(ctx, env)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := got.Encode()
		if !bytes.Equal(raw, want) {
			t.Errorf("Raw = %s, want %s", raw, want)
		}
		if _, err := s.Write(ctx, env, got, etag2); err != nil || got.Serial != 3 {
			t.Fatalf("third Write: %v (serial %d)", err, got.Serial)
		}
	})

	t.Run("TwoWritersSameETag", func(t *testing.T) {
		b := newBlob(t)
		s := state.NewStore(b)
		seed(t, s)
		var (
			wg        sync.WaitGroup
			won, lost atomic.Int32
		)
		errs := make(chan error, 2)
		type read struct {
			st   *state.State
			etag string
		}
		var reads []read
		for i := range 2 {
			st, etag, err := s.Read(ctx, env)
			if err != nil {
				t.Fatal(err)
			}
			st.SetResource(state.Resource{Address: fmt.Sprintf("volume.v%d", i), Kind: "volume", ID: fmt.Sprint(i)})
			reads = append(reads, read{st, etag})
		}
		for _, r := range reads {
			st, etag := r.st, r.etag
			wg.Go(func() {
				_, err := state.NewStore(b).Write(ctx, env, st, etag)
				switch {
				case err == nil:
					won.Add(1)
				case errors.Is(err, state.ErrConflict) && errors.Is(err, state.ErrPrecondition):
					lost.Add(1)
				default:
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("Write: %v", err)
		}
		if won.Load() != 1 || lost.Load() != 1 {
			t.Fatalf("%d won, %d got ErrConflict; want 1 and 1", won.Load(), lost.Load())
		}
		got, _, err := s.Read(ctx, env)
		if err != nil || got.Serial != 2 || len(got.Resources) != 2 {
			t.Fatalf("Read = %+v, %v; want serial 2 with one of the two volumes", got, err)
		}
	})

	t.Run("Refusals", func(t *testing.T) {
		b := newBlob(t)
		s := state.NewStore(b)
		st, _ := seed(t, s)
		old := *st
		cur, etag, err := s.Read(ctx, env)
		if err != nil {
			t.Fatal(err)
		}
		cur.Outputs["url"] = state.Output{Value: "https://example.test"}
		if etag, err = s.Write(ctx, env, cur, etag); err != nil {
			t.Fatal(err)
		}
		before, _, err := b.Get(ctx, state.StateKey(env))
		if err != nil {
			t.Fatal(err)
		}

		foreign := state.New(env, "v0.0.0-test")
		foreign.Serial = 10
		newer := *cur
		newer.FormatVersion = state.FormatVersion + 1
		otherEnv := *cur
		otherEnv.Env = "prod"
		for _, tc := range []struct {
			name string
			st   *state.State
			want error
		}{
			{"LowerSerial", &old, state.ErrSerial},
			{"ForeignLineage", foreign, state.ErrLineage},
			{"NewerFormat", &newer, state.ErrFormat},
		} {
			t.Run(tc.name, func(t *testing.T) {
				serial := tc.st.Serial
				if _, err := s.Write(ctx, env, tc.st, etag); !errors.Is(err, tc.want) {
					t.Fatalf("Write: got %v, want %v", err, tc.want)
				}
				if tc.st.Serial != serial {
					t.Errorf("refused Write changed the serial %d to %d", serial, tc.st.Serial)
				}
			})
		}
		if _, err := s.Write(ctx, env, &otherEnv, etag); err == nil {
			t.Error("Write of prod's state as test's succeeded")
		}
		after, _, err := b.Get(ctx, state.StateKey(env))
		if err != nil || !bytes.Equal(before, after) {
			t.Fatalf("stored state changed by refused writes: %v", err)
		}

		// A state written by a newer acco is refused on read and on write.
		future := bytes.Replace(after, []byte(`"format_version": 1`), []byte(`"format_version": 2`), 1)
		if etag, err = b.Put(ctx, state.StateKey(env), future, state.IfMatch(etag)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Read(ctx, env); !errors.Is(err, state.ErrFormat) || !strings.Contains(err.Error(), "upgrade acco") {
			t.Errorf("Read of a newer format: got %v, want ErrFormat telling to upgrade", err)
		}
		if _, err := s.Write(ctx, env, cur, etag); !errors.Is(err, state.ErrFormat) {
			t.Errorf("Write over a newer format: got %v, want ErrFormat", err)
		}
	})

	t.Run("Rollback", func(t *testing.T) {
		b := newBlob(t)
		s := state.NewStore(b)
		st, etag := seed(t, s)
		old, _, err := b.Get(ctx, state.StateKey(env))
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if etag, err = s.Write(ctx, env, st, etag); err != nil {
				t.Fatal(err)
			}
		}
		// An older state put back by hand (a restored version).
		if _, err := b.Put(ctx, state.StateKey(env), old, ""); err != nil {
			t.Fatal(err)
		}
		var rb *state.RollbackError
		if _, _, err := state.NewStore(b).Read(ctx, env); !errors.As(err, &rb) || rb.Serial != 1 || rb.MarkSerial != 3 {
			t.Fatalf("Read of serial 1 after serial 3: got %v, want a RollbackError", err)
		}
		if rb.Restore != "" && rb.Newest() == nil {
			t.Errorf("a restore command %q without a newest version", rb.Restore)
		}
		allow := state.NewStore(b, state.AllowRollback())
		if ok, err := allow.Rebase(ctx, env); !ok || err != nil {
			t.Fatalf("Rebase = %v, %v", ok, err)
		}
		got, _, err := state.NewStore(b).Read(ctx, env)
		if err != nil || got.Serial != 4 {
			t.Fatalf("Read after the accepted rollback = %+v, %v; want serial 4, above the newest", got, err)
		}
	})

	t.Run("RetriedWriteIsOurs", func(t *testing.T) {
		if faults == nil {
			t.Skip("no fault injector")
		}
		b := newBlob(t)
		s := state.NewStore(b)
		seed(t, s)
		st, etag, err := s.Read(ctx, env)
		if err != nil {
			t.Fatal(err)
		}
		st.SetResource(state.Resource{Address: "network.main", Kind: "network", ID: "n-1"})
		rs := state.NewStore(faults.Redeliver(t, b, state.StateKey(env)))
		newEtag, err := rs.Write(ctx, env, st, etag)
		if err != nil {
			t.Fatalf("Write whose PUT was delivered twice: %v", err)
		}
		got, gotEtag, err := s.Read(ctx, env)
		if err != nil || gotEtag != newEtag || got.Serial != 2 || len(got.Resources) != 2 {
			t.Fatalf("Read = %+v, %q, %v; want serial 2 and ETag %q", got, gotEtag, err, newEtag)
		}
	})
}
