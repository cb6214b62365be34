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
type recorder struct {
	mu     sync.Mutex
	store  *state.Store
	env    string
	st     *state.State
	etag   string
	status map[string]string
	// attempts and retryDelay are ApplyOptions' retry policy, for writes
	// that failed for a passing reason.
	attempts   int
	retryDelay time.Duration
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
	return r.write(ctx)
}

func (r *recorder) write(ctx context.Context) error {
	etag, err := r.store.Write(context.WithoutCancel(ctx), r.env, r.st, r.etag)
	// A store that failed every attempt of a write for a passing reason
	// (state.ErrUnavailable) gets as many more tries, with the same
	// waits, as a cloud operation that failed so: state I/O is as patient
	// as cloud I/O. The write is the same document: one that landed
	// unseen is recognised by the store.
	for attempt := 1; errors.Is(err, state.ErrUnavailable) && attempt < r.attempts && ctx.Err() == nil; attempt++ {
		t := time.NewTimer(time.Duration(attempt) * r.retryDelay)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		etag, err = r.store.Write(context.WithoutCancel(ctx), r.env, r.st, r.etag)
	}
	if err != nil {
		return fmt.Errorf("writing the state of %s: %w", r.env, err)
	}
	r.etag = etag
	return nil
}

// intent records that a mutating action on addr is about to start.
func (r *recorder) intent(ctx context.Context, addr, action string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st.Pending = slices.DeleteFunc(r.st.Pending, func(p state.Pending) bool { return p.Address == addr })
	r.st.Pending = append(r.st.Pending, state.Pending{Address: addr, Action: action, Started: time.Now().UTC()})
	return r.write(ctx)
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
	data, err := r.st.Encode()
	if err != nil {
		return r.st
	}
	st, err := state.Decode(data)
	if err != nil {
		return r.st
	}
	return st
}

// finalize computes the outputs and writes the state one last time.
func (r *recorder) finalize(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	before, _ := r.st.Encode()
	r.st.Outputs = Outputs(r.st)
	after, _ := r.st.Encode()
	if string(before) == string(after) && r.etag != "" {
		return nil
	}
	return r.write(ctx)
}
