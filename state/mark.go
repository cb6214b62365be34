package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// MarkKey returns the key of env's high-water mark: ENV/serial.json. It
// holds the lineage and the highest serial ever written to env's state (or
// a little less, see below), and is written after the state, so that
// putting an older state back (a restored object version, a copy) is seen:
// the state's serial is then below the mark, or its lineage is another.
//
// The mark is never above what is stored: it is raised only to a serial
// that was written (or read). It may lag behind: Store.Write raises it
// after each write, but a run that writes many times under the lock
// (Store.WriteDeferMark) raises it once at its end (Store.RaiseMark), and
// a run that dies, or a raise that fails, leaves it behind until the next
// Write, RaiseMark or Read of a state above it raises it.
func MarkKey(env string) string { return env + "/serial.json" }

// mark is the content of MarkKey.
type mark struct {
	Lineage string    `json:"lineage"`
	Serial  uint64    `json:"serial"`
	Updated time.Time `json:"updated"`
	// derived: read from the versions kept, there is no mark object.
	derived bool
}

// cachedMark is a mark as last read or written, with its ETag.
type cachedMark struct {
	mark *mark // nil: no mark
	// etag is the mark object's ETag; "" when there is no object (mark is
	// then nil, or derived from the versions the store kept).
	etag string
}

// RollbackError says that env's state is older than its history: its serial
// is below the high-water mark, its lineage is not the mark's, or it is
// missing while the mark says it existed. It matches ErrRollback.
type RollbackError struct {
	// Env is the environment.
	Env string
	// Lineage and Serial are those of the state found; Missing says there
	// is none.
	Lineage string
	Serial  uint64
	Missing bool
	// MarkLineage and MarkSerial are the newest lineage and serial written.
	MarkLineage string
	MarkSerial  uint64
	// FromHistory says that the newest lineage and serial come from the
	// versions the store kept (there was no mark object yet).
	FromHistory bool
	// Versions are the stored versions of the state, newest first, when
	// the store keeps them (at most a few).
	Versions []StateVersion
	// Restore is a command that puts the newest version back, when known.
	Restore string
}

// StateVersion is one stored version of an environment's state.
type StateVersion struct {
	// ID is the store's version ID (an S3 version ID, a file name).
	ID string `json:"id"`
	// Lineage and Serial are read from the version ("" and 0 when it is
	// not a readable state).
	Lineage string `json:"lineage"`
	Serial  uint64 `json:"serial"`
	// Current is the version stored at the state's key now.
	Current bool `json:"current"`
	// Damaged says that the version is not a state of the environment
	// this acco can read (undecodable, or another environment's).
	Damaged bool `json:"damaged,omitempty"`
}

// Error names the state found, the history it goes back on, the versions
// kept and how to restore the newest, or to accept the older state.
func (e *RollbackError) Error() string {
	var b strings.Builder
	source := MarkKey(e.Env)
	if e.FromHistory {
		source = "the versions of " + StateKey(e.Env) + " kept"
	}
	switch {
	case e.Missing:
		fmt.Fprintf(&b, "the state of %s is missing, but %s says it reached serial %d of lineage %s: it was deleted or lost",
			e.Env, source, e.MarkSerial, e.MarkLineage)
	case e.Lineage != e.MarkLineage:
		fmt.Fprintf(&b, "the state of %s is serial %d of lineage %s, but the newest state written was serial %d of lineage %s (%s): it was replaced by a state of another history",
			e.Env, e.Serial, e.Lineage, e.MarkSerial, e.MarkLineage, source)
	default:
		fmt.Fprintf(&b, "the state of %s is serial %d, but serial %d was written before (%s): an older state was put back (rollback)",
			e.Env, e.Serial, e.MarkSerial, source)
	}
	if len(e.Versions) > 0 {
		b.WriteString("; versions kept, newest first:")
		for _, v := range e.Versions {
			fmt.Fprintf(&b, " %s (serial %d", v.ID, v.Serial)
			if v.Lineage != e.MarkLineage {
				fmt.Fprintf(&b, ", lineage %s", v.Lineage)
			}
			if v.Current {
				b.WriteString(", current")
			}
			b.WriteString(")")
		}
	}
	if e.Restore != "" {
		fmt.Fprintf(&b, "; restore the newest with: %s", e.Restore)
	}
	return b.String()
}

// Unwrap makes errors.Is(err, ErrRollback) true.
func (e *RollbackError) Unwrap() error { return ErrRollback }

// Newest returns the newest kept version of the mark's lineage with the
// highest serial, or nil.
func (e *RollbackError) Newest() *StateVersion {
	var best *StateVersion
	for i, v := range e.Versions {
		if v.Lineage == e.MarkLineage && (best == nil || v.Serial > best.Serial) {
			best = &e.Versions[i]
		}
	}
	return best
}

// Versioner is implemented by the blobs that keep old versions of the
// state: S3Blob (a versioned bucket) and DirBlob (files under versions/).
type Versioner interface {
	// StateVersions returns the versions of env's state, newest first, at
	// most limit of them.
	StateVersions(ctx context.Context, env string, limit int) ([]StateVersion, error)
	// RestoreCommand returns a shell command that makes version id env's
	// current state again.
	RestoreCommand(env, id string) string
}

// maxVersionsShown bounds the versions a RollbackError lists.
const maxVersionsShown = 4

// readMark reads env's mark (nil when there is none) and caches it.
func (s *Store) readMark(ctx context.Context, env string) (cachedMark, error) {
	data, etag, err := s.blob.Get(ctx, MarkKey(env))
	var c cachedMark
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return c, fmt.Errorf("read %s: %w", MarkKey(env), err)
	default:
		var m mark
		if err := json.Unmarshal(data, &m); err != nil || m.Lineage == "" {
			return c, fmt.Errorf("read %s: not an acco high-water mark (%v): remove it only if you know the state of %s never went further", MarkKey(env), err, env)
		}
		c = cachedMark{mark: &m, etag: etag}
	}
	if c.mark == nil {
		// No mark yet (a bucket of an acco before marks): the versions
		// the store kept stand for it.
		c.mark = s.markFromHistory(ctx, env)
	}
	s.mu.Lock()
	s.marks[env] = c
	s.mu.Unlock()
	return c, nil
}

// markFromHistory derives a mark from the versions of env's state that
// the store kept: the lineage and serial of the highest serial. It returns
// nil when the store keeps none or they cannot be read.
func (s *Store) markFromHistory(ctx context.Context, env string) *mark {
	v, ok := s.blob.(Versioner)
	if !ok {
		return nil
	}
	vs, err := v.StateVersions(ctx, env, maxVersionsRead)
	if err != nil {
		return nil
	}
	var m *mark
	for _, x := range vs {
		if x.Lineage != "" && (m == nil || x.Serial > m.Serial) {
			m = &mark{Lineage: x.Lineage, Serial: x.Serial, derived: true}
		}
	}
	return m
}

// cachedMarkOf returns env's mark as last seen, reading it the first time.
func (s *Store) cachedMarkOf(ctx context.Context, env string) (cachedMark, error) {
	s.mu.Lock()
	c, ok := s.marks[env]
	s.mu.Unlock()
	if ok {
		return c, nil
	}
	return s.readMark(ctx, env)
}

// checkMark refuses st (nil: no state) when it goes back on env's mark,
// unless rollbacks are allowed.
func (s *Store) checkMark(ctx context.Context, env string, st *State, c cachedMark) error {
	m := c.mark
	ok := st != nil && (m == nil || (st.Lineage == m.Lineage && st.Serial >= m.Serial))
	if ok && (c.etag == "" || st.Serial > m.Serial) {
		// No mark object yet (a store written by an acco before marks):
		// make it now, so that later reads need not search the history.
		// Or a mark left behind by a run that died before it raised it
		// (see Store.WriteDeferMark): raise it to what is stored. Best
		// effort: the next Write does it too.
		_ = s.raiseMark(ctx, env, st.Lineage, st.Serial)
	}
	if ok || m == nil || s.allowRollback {
		return nil
	}
	e := &RollbackError{Env: env, Missing: st == nil, MarkLineage: m.Lineage, MarkSerial: m.Serial, FromHistory: m.derived}
	if st != nil {
		e.Lineage, e.Serial = st.Lineage, st.Serial
	}
	if v, ok := s.blob.(Versioner); ok {
		if vs, err := v.StateVersions(ctx, env, maxVersionsShown); err == nil {
			e.Versions = vs
			if n := e.Newest(); n != nil && !n.Current {
				e.Restore = v.RestoreCommand(env, n.ID)
			}
		}
	}
	return e
}

// Rebase writes env's state again when it goes back on the high-water mark
// (an older state accepted with AllowRollback), at a serial above the
// mark, so that the rollback is settled: later reads accept it without
// AllowRollback. It reports whether it wrote. Without AllowRollback it
// does nothing.
func (s *Store) Rebase(ctx context.Context, env string) (bool, error) {
	if !s.allowRollback {
		return false, nil
	}
	st, etag, err := s.Read(ctx, env)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	c, err := s.cachedMarkOf(ctx, env)
	if err != nil {
		return false, err
	}
	if c.mark == nil || (c.mark.Lineage == st.Lineage && st.Serial >= c.mark.Serial) {
		return false, nil
	}
	if _, err := s.Write(ctx, env, st, etag); err != nil {
		return false, err
	}
	return true, nil
}

// nextSerial returns the serial to write st at: st.Serial+1, or above the
// mark when an older state or another lineage was accepted (AllowRollback),
// so that serials never go back in the environment's history. Without
// AllowRollback such a st is refused.
func (s *Store) nextSerial(ctx context.Context, env string, st *State) (uint64, error) {
	c, err := s.cachedMarkOf(ctx, env)
	if err != nil {
		return 0, err
	}
	next := st.Serial + 1
	m := c.mark
	if m == nil || (m.Lineage == st.Lineage && next > m.Serial) {
		return next, nil
	}
	if !s.allowRollback {
		return 0, &RollbackError{Env: env, Lineage: st.Lineage, Serial: st.Serial, MarkLineage: m.Lineage, MarkSerial: m.Serial, FromHistory: m.derived}
	}
	return max(next, m.Serial+1), nil
}

// raiseMark records that env's state reached serial of lineage. It is
// called after the state is written: should it fail, the mark lags behind
// and the next write raises it. A mark that is already as high is left.
func (s *Store) raiseMark(ctx context.Context, env, lineage string, serial uint64) error {
	for range 3 {
		c, err := s.cachedMarkOf(ctx, env)
		if err != nil {
			return err
		}
		if c.etag != "" && c.mark != nil && c.mark.Lineage == lineage && c.mark.Serial >= serial {
			return nil
		}
		m := &mark{Lineage: lineage, Serial: serial, Updated: time.Now().UTC().Round(time.Second)}
		data, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			return err
		}
		cond := IfNoneMatch
		if c.etag != "" {
			cond = IfMatch(c.etag)
		}
		etag, err := s.blob.Put(ctx, MarkKey(env), append(data, '\n'), cond)
		if err == nil {
			s.mu.Lock()
			s.marks[env] = cachedMark{mark: m, etag: etag}
			s.mu.Unlock()
			return nil
		}
		if !errors.Is(err, ErrPrecondition) {
			return err
		}
		if _, err := s.readMark(ctx, env); err != nil {
			return err
		}
	}
	return fmt.Errorf("write %s: it kept changing: %w", MarkKey(env), ErrPrecondition)
}
