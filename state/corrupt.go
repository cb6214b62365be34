package state

import (
	"context"
	"fmt"
	"strings"
)

// CorruptError says that env's stored state cannot be read (Err says why)
// and, when the store keeps versions, which ones there are and how to put
// back the newest that can be read. It matches ErrCorrupt and Err.
type CorruptError struct {
	// Env is the environment.
	Env string
	// Err is what is wrong with the stored state.
	Err error
	// Versions are the stored versions of the state, the current first,
	// then newest first (at most a few), when the store keeps them.
	Versions []StateVersion
	// Good is the newest version that can be read, if any.
	Good *StateVersion
	// Restore is a command that makes Good the current state again.
	Restore string
}

// Error names the damage, the versions kept and how to restore the newest
// good one.
func (e *CorruptError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the state of %s (%s) cannot be read: %v: it was damaged or replaced by something that is not this environment's acco state", e.Env, StateKey(e.Env), e.Err)
	if len(e.Versions) > 0 {
		b.WriteString("; versions kept, newest first:")
		for _, v := range e.Versions {
			fmt.Fprintf(&b, " %s (", v.ID)
			if v.Damaged {
				b.WriteString("damaged")
			} else {
				fmt.Fprintf(&b, "serial %d", v.Serial)
			}
			if v.Current {
				b.WriteString(", current")
			}
			b.WriteString(")")
		}
	}
	switch {
	case e.Restore != "":
		fmt.Fprintf(&b, "; restore the newest good one (%s, serial %d) with: %s", e.Good.ID, e.Good.Serial, e.Restore)
	case e.Versions != nil:
		fmt.Fprintf(&b, "; no version kept can be read: look at it with acco state pull %s, and put a good copy (a backup) back at %s", e.Env, StateKey(e.Env))
	default:
		fmt.Fprintf(&b, "; this store keeps no versions: look at it with acco state pull %s, and put a good copy (a backup) back at %s", e.Env, StateKey(e.Env))
	}
	return b.String()
}

// Unwrap makes errors.Is(err, ErrCorrupt) and errors.Is(err, e.Err) true.
func (e *CorruptError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }

// corruptError builds the CorruptError of env for the damage err, with
// the versions the store keeps.
func (s *Store) corruptError(ctx context.Context, env string, err error) *CorruptError {
	e := &CorruptError{Env: env, Err: err}
	v, ok := s.blob.(Versioner)
	if !ok {
		return e
	}
	vs, verr := v.StateVersions(ctx, env, maxVersionsRead)
	if verr != nil {
		return e
	}
	e.Versions = []StateVersion{}
	for i, x := range vs {
		if i < maxVersionsShown {
			e.Versions = append(e.Versions, x)
		}
		if !x.Damaged && !x.Current && (e.Good == nil || x.Serial > e.Good.Serial) {
			e.Good = &vs[i]
		}
	}
	if e.Good != nil {
		e.Restore = v.RestoreCommand(env, e.Good.ID)
	}
	return e
}
