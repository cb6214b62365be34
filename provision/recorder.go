package provision

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/accoreboot/acco/state"
)

// recorder holds the state during an apply and writes it after every
// resource operation. Writes outlive the apply's context: a run that is
// interrupted still records what it did.
//
// Writes are grouped: a change (an intent, a resource recorded or
// finished) is made to the state in memory, then its caller waits until a
// write that includes it has succeeded, or returns that write's error.
// One write is in flight at a time, of a copy of the state; the changes
// made meanwhile wait for the next, which covers them all with one
// conditional PUT. So concurrent operations share their writes, and an
// intent is still durable before the call it announces. A change whose
// write failed stays in memory and goes with the next write.
//
// The writes do not raise the state's high-water mark (see
// state.Store.WriteDeferMark): finalize, which Apply calls at the end of
// every run, failed or stopped ones too, raises it once.
type recorder struct {
	mu     sync.Mutex
	store  *state.Store
	env    string
	st     *state.State // every change made, written or not
	etag   string       // the ETag of the last write
	status map[string]string
	// attempts and retryDelay are ApplyOptions' retry policy, for writes
	// that failed for a passing reason.
	attempts   int
	retryDelay time.Duration

	// changes counts the changes made to st, written the changes the last
	// successful write covered.
	changes, written uint64
	// inflight is the batch being written (nil: none), next the batch of
	// the changes made since it started (nil: none yet).
	inflight, next *batch
}

// batch is the changes one write covers; done is closed when the write
// has ended, with err its error.
type batch struct {
	done chan struct{}
	err  error
}

// update changes the state with fn, clears addr's pending intent, and
// writes it.
func (r *recorder) update(ctx context.Context, addr string, fn func(st *state.State)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	fn(r.st)
	if addr != "" {
		r.st.Pending = slices.DeleteFunc(r.st.Pending, func(p state.Pending) bool { return p.Address == addr })
	}
	r.changes++
	return r.commit(ctx)
}

// commit waits until the changes made so far are written, and returns the
// error of the write that covered them. It is called with r.mu held, which
// it releases while it waits or writes.
func (r *recorder) commit(ctx context.Context) error {
	b := r.next
	if b == nil {
		b = &batch{done: make(chan struct{})}
		r.next = b
	}
	for {
		select {
		case <-b.done:
			return b.err
		default:
		}
		if r.inflight == nil {
			// b is not written yet, and no write is in flight: b is
			// r.next, and this caller writes it.
			r.flush(ctx)
			continue
		}
		w := r.inflight
		r.mu.Unlock()
		<-w.done
		r.mu.Lock()
	}
}

// flush writes a copy of the state for the batch r.next, releasing r.mu
// during the write, and ends the batch.
func (r *recorder) flush(ctx context.Context) {
	b := r.next
	r.next, r.inflight = nil, b
	covered, etag := r.changes, r.etag
	st, err := r.copyState()
	if err == nil {
		r.mu.Unlock()
		etag, err = r.write(ctx, st, etag)
		r.mu.Lock()
	}
	r.inflight = nil
	if err == nil {
		r.etag, r.st.Serial, r.written = etag, st.Serial, covered
	}
	b.err = err
	close(b.done)
}

// copyState returns a copy of the state to write, so that changes may go
// on while it is written.
func (r *recorder) copyState() (*state.State, error) {
	data, err := r.st.Encode()
	if err != nil {
		return nil, fmt.Errorf("writing the state of %s: %w", r.env, err)
	}
	st, err := state.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("writing the state of %s: %w", r.env, err)
	}
	return st, nil
}

// write writes st over the state of ETag etag, without raising the mark,
// and returns the new ETag; st.Serial is then the serial written.
func (r *recorder) write(ctx context.Context, st *state.State, etag string) (string, error) {
	var newEtag string
	err := r.retry(ctx, func(ctx context.Context) error {
		var err error
		newEtag, err = r.store.WriteDeferMark(ctx, r.env, st, etag)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("writing the state of %s: %w", r.env, err)
	}
	return newEtag, nil
}

// retry runs a state operation with a context that outlives ctx. A store
// that failed every attempt of an operation for a passing reason
// (state.ErrUnavailable) gets as many more tries, with the same waits, as
// a cloud operation that failed so: state I/O is as patient as cloud I/O.
// A write is tried again with the same document: one that landed unseen
// is recognised by the store.
func (r *recorder) retry(ctx context.Context, op func(context.Context) error) error {
	err := op(context.WithoutCancel(ctx))
	for attempt := 1; errors.Is(err, state.ErrUnavailable) && attempt < r.attempts && ctx.Err() == nil; attempt++ {
		t := time.NewTimer(time.Duration(attempt) * r.retryDelay)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		err = op(context.WithoutCancel(ctx))
	}
	return err
}

// intent records that a mutating action on addr is about to start; it
// returns once that is written.
func (r *recorder) intent(ctx context.Context, addr, action string) error {
	return r.update(ctx, "", func(st *state.State) {
		st.Pending = slices.DeleteFunc(st.Pending, func(p state.Pending) bool { return p.Address == addr })
		st.Pending = append(st.Pending, state.Pending{Address: addr, Action: action, Started: time.Now().UTC()})
	})
}

// record records a resource in the middle of an operation: its intent
// stays, so that a run killed before the operation ends is known to have
// been interrupted.
func (r *recorder) record(ctx context.Context, res state.Resource) error {
	return r.update(ctx, "", func(st *state.State) { st.SetResource(res) })
}

// finish records a resource (nil: removes it) and clears its intent.
func (r *recorder) finish(ctx context.Context, addr string, res *state.Resource) error {
	return r.update(ctx, addr, func(st *state.State) {
		if res == nil {
			st.RemoveResource(addr)
			return
		}
		st.SetResource(*res)
	})
}

// resource returns a copy of the resource at addr.
func (r *recorder) resource(addr string) (state.Resource, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	res, ok := r.st.Resource(addr)
	if !ok {
		return state.Resource{}, false
	}
	out := *res
	out.Attributes = copyAttrs(res.Attributes)
	return out, true
}

func (r *recorder) setStatus(addr, status string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status[addr] = status
}

func (r *recorder) getStatus(addr string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status[addr]
}

// snapshot returns the state as last written.
func (r *recorder) snapshot() *state.State {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, err := r.copyState()
	if err != nil {
		return r.st
	}
	return st
}

// finalize computes the outputs and writes the state one last time, if
// anything is left to write (the outputs changed, or a write failed),
// then raises the state's high-water mark to the last state written. It
// is called at the end of every run: the mark is not raised by the writes
// before (see state.Store.WriteDeferMark). Should raising it fail, the
// state is written all the same, and the next acco that reads or writes
// the state raises it.
func (r *recorder) finalize(ctx context.Context) error {
	err := r.finalWrite(ctx)
	_ = r.retry(ctx, func(ctx context.Context) error { return r.store.RaiseMark(ctx, r.env) })
	return err
}

func (r *recorder) finalWrite(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	before, _ := r.st.Encode()
	r.st.Outputs = Outputs(r.st)
	after, _ := r.st.Encode()
	if string(before) != string(after) {
		r.changes++
	}
	if r.changes == r.written && r.inflight == nil && r.etag != "" {
		return nil
	}
	return r.commit(ctx)
}
