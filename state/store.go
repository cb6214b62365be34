package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// StateKey returns the key of env's state: ENV/state.json.
func StateKey(env string) string { return env + "/state.json" }

// LockKey returns the key of env's lock: ENV/lock.json.
func LockKey(env string) string { return env + "/lock.json" }

// checkEnv refuses environment names that would not make one clean key
// segment.
func checkEnv(env string) error {
	if env == "" || env == "." || env == ".." || strings.ContainsAny(env, `/\`) || strings.HasPrefix(env, ".") {
		return fmt.Errorf("invalid environment name %q", env)
	}
	return nil
}

// Store reads and writes environments' states in a Blob, and keeps each
// environment's high-water mark (see MarkKey). A Store is safe for
// concurrent use.
type Store struct {
	blob          Blob
	allowRollback bool

	mu    sync.Mutex
	marks map[string]cachedMark
	known map[string]knownState
}

// knownState is what a Store last read or wrote of an environment's state:
// the lineage and serial stored, and the ETag of the object that holds
// them ("" once a write with it failed: the object may have changed).
type knownState struct {
	etag    string
	lineage string
	serial  uint64
}

// StoreOption configures a Store.
type StoreOption func(*Store)

// AllowRollback makes the Store accept a state older than the
// environment's history (a deliberate rollback): Read returns it, and
// Write writes it at a serial above the high-water mark, so that serials
// still never go back.
func AllowRollback() StoreOption {
	return func(s *Store) { s.allowRollback = true }
}

// NewStore returns a Store over b.
func NewStore(b Blob, opts ...StoreOption) *Store {
	s := &Store{blob: b, marks: map[string]cachedMark{}, known: map[string]knownState{}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Read returns env's state and its ETag, to pass to Write. When env has no
// state yet the error wraps ErrNotFound. A state older than env's history
// (below its high-water mark, of another lineage, or missing when the mark
// says it existed) is refused with a *RollbackError, unless the Store
// allows rollbacks.
func (s *Store) Read(ctx context.Context, env string) (*State, string, error) {
	if err := checkEnv(env); err != nil {
		return nil, "", fmt.Errorf("read state: %w", err)
	}
	key := StateKey(env)
	// The mark is read at the same time as the state: one round trip.
	type markRead struct {
		c   cachedMark
		err error
	}
	marked := make(chan markRead, 1)
	go func() {
		c, err := s.readMark(ctx, env)
		marked <- markRead{c, err}
	}()
	data, etag, err := s.blob.Get(ctx, key)
	m := <-marked
	if m.err != nil && (err == nil || errors.Is(err, ErrNotFound)) {
		return nil, "", fmt.Errorf("read state %s: %w", key, m.err)
	}
	if errors.Is(err, ErrNotFound) {
		if merr := s.checkMark(ctx, env, nil, m.c); merr != nil {
			return nil, "", fmt.Errorf("read state %s: %w", key, merr)
		}
	}
	if err != nil {
		return nil, "", fmt.Errorf("read state %s: %w", key, err)
	}
	st, err := Decode(data)
	switch {
	case errors.Is(err, ErrFormat):
		return nil, "", fmt.Errorf("read state %s: %w", key, err)
	case err != nil:
		return nil, "", fmt.Errorf("read state %s: %w", key, s.corruptError(ctx, env, err))
	case st.Env != env:
		return nil, "", fmt.Errorf("read state %s: %w", key, s.corruptError(ctx, env, fmt.Errorf("it is the state of environment %q", st.Env)))
	}
	if err := s.checkMark(ctx, env, st, m.c); err != nil {
		return nil, "", fmt.Errorf("read state %s: %w", key, err)
	}
	s.remember(env, knownState{etag: trimETag(etag), lineage: st.Lineage, serial: st.Serial})
	return st, etag, nil
}

// LastETag returns the ETag of env's state as this Store last read or
// wrote it ("" when it has not, or a write with it failed): a caller
// holding a state it read can tell whether this Store wrote it since.
func (s *Store) LastETag(env string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.known[env].etag
}

// remember records what env's state is now, as read or written.
func (s *Store) remember(env string, k knownState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.known[env] = k
}

// forget notes that a write with etag failed: the object may no longer be
// the one known by that ETag. The lineage and serial known stay, for
// RaiseMark: they were stored.
func (s *Store) forget(env, etag string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.known[env]; ok && k.etag == etag {
		k.etag = ""
		s.known[env] = k
	}
}

// knows reports whether the object with etag is known to hold a state of
// lineage at a serial no higher than serial: a write of such a state
// conditional on etag then needs no reading first, since If-Match proves
// the object is still the one known.
func (s *Store) knows(env, etag, lineage string, serial uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.known[env]
	return ok && etag != "" && k.etag == etag && k.lineage == lineage && serial >= k.serial
}

// Raw returns env's state as stored, for acco state pull. When env has no
// state yet the error wraps ErrNotFound.
func (s *Store) Raw(ctx context.Context, env string) ([]byte, error) {
	if err := checkEnv(env); err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	data, _, err := s.blob.Get(ctx, StateKey(env))
	if err != nil {
		return nil, fmt.Errorf("read state %s: %w", StateKey(env), err)
	}
	return data, nil
}

// Write stores st as env's state, written at serial st.Serial+1, and
// returns the new ETag. On success st.Serial is set to the serial written,
// so that st and the returned ETag can be passed to the next Write; on
// failure st is unchanged.
//
// The write is conditional: etag "" means there must be no state yet
// (If-None-Match), any other etag means the stored state must still have
// that ETag (If-Match); otherwise the error wraps ErrConflict (and so
// ErrPrecondition). Before writing, Write refuses a st for another
// environment, a st whose lineage differs from the stored one
// (ErrLineage), whose serial is lower than the stored one (ErrSerial), or
// whose format version is newer than FormatVersion (ErrFormat); a stored
// state of a newer format is also refused (ErrFormat). A st that goes back
// on env's high-water mark is refused (ErrRollback) unless the Store
// allows rollbacks; it is then written above the mark. After the state,
// Write raises the mark; should that fail, the state is written all the
// same and the next Write (or Read) raises it.
//
// When the answer to a write that succeeded is lost and the client's retry
// then fails its condition, Write finds its own bytes stored and succeeds.
//
// The checks need the stored state, which Write reads first, unless this
// Store last read or wrote env's state with that very ETag, and st is of
// the same lineage at a serial no lower: the conditional write then proves
// that the stored state is still the one known, and a Write after a Write
// (or a Read) is a single request (plus the mark's).
func (s *Store) Write(ctx context.Context, env string, st *State, etag string) (string, error) {
	newEtag, err := s.WriteDeferMark(ctx, env, st, etag)
	if err != nil {
		return "", err
	}
	_ = s.raiseMark(context.WithoutCancel(ctx), env, st.Lineage, st.Serial)
	return newEtag, nil
}

// WriteDeferMark is Write without raising env's high-water mark: for a run
// that writes the state many times while it holds env's lock (an apply),
// and calls RaiseMark once at its end, instead of writing the mark after
// every state write. The mark then lags behind the state during the run
// and, should the run die, until the next Write, RaiseMark or Read of env
// raises it. That is safe: the mark is never above what is stored, so
// nothing correct is refused. And it hardly weakens rollback detection:
// the run holds env's lock, so no other acco writes meanwhile; a state put
// back below the serial the run started from is caught by the mark as
// before; one put back among the run's own serials makes the run's next
// write fail its condition, and the run's RaiseMark then lifts the mark
// above it, so the next Read refuses it. Only a run that dies (no
// RaiseMark) leaves such a state unseen, as a mark whose write failed did
// already.
func (s *Store) WriteDeferMark(ctx context.Context, env string, st *State, etag string) (string, error) {
	if err := checkEnv(env); err != nil {
		return "", fmt.Errorf("write state: %w", err)
	}
	key := StateKey(env)
	etag = trimETag(etag)
	newEtag, serial, err := s.write(ctx, env, key, st, etag)
	if err != nil {
		s.forget(env, etag)
		return "", fmt.Errorf("write state %s: %w", key, err)
	}
	st.Serial = serial
	s.remember(env, knownState{etag: trimETag(newEtag), lineage: st.Lineage, serial: serial})
	return newEtag, nil
}

// RaiseMark raises env's high-water mark to the newest state this Store
// wrote or read of env, after writes made with WriteDeferMark. It makes no
// request when the mark is known to be as high already, nor when this
// Store has not read or written env's state.
func (s *Store) RaiseMark(ctx context.Context, env string) error {
	if err := checkEnv(env); err != nil {
		return fmt.Errorf("raise the mark: %w", err)
	}
	s.mu.Lock()
	k, ok := s.known[env]
	s.mu.Unlock()
	if !ok {
		return nil
	}
	if err := s.raiseMark(ctx, env, k.lineage, k.serial); err != nil {
		return fmt.Errorf("raise the high-water mark %s to serial %d: %w", MarkKey(env), k.serial, err)
	}
	return nil
}

func (s *Store) write(ctx context.Context, env, key string, st *State, etag string) (string, uint64, error) {
	switch {
	case st.FormatVersion > FormatVersion:
		return "", 0, fmt.Errorf("format_version %d is newer than this acco understands (%d): %w", st.FormatVersion, FormatVersion, ErrFormat)
	case st.Env != env:
		return "", 0, fmt.Errorf("the state is for environment %q, not %q", st.Env, env)
	case st.Lineage == "":
		return "", 0, errors.New("the state has no lineage")
	}

	if err := s.check(ctx, env, key, st, etag); err != nil {
		return "", 0, err
	}

	serial, err := s.nextSerial(ctx, env, st)
	if errors.Is(err, ErrRollback) && etag != "" {
		// The mark may have risen because another writer wrote the state
		// since it was read: that is a conflict, not a rollback.
		if _, nowEtag, gerr := s.blob.Get(ctx, key); gerr == nil && nowEtag != etag {
			return "", 0, fmt.Errorf("someone wrote it in between: %w", ErrConflict)
		}
	}
	if err != nil {
		return "", 0, err
	}
	next := *st
	next.Serial = serial
	data, err := next.Encode()
	if err != nil {
		return "", 0, err
	}
	cond := IfNoneMatch
	if etag != "" {
		cond = IfMatch(etag)
	}
	newEtag, err := s.blob.Put(ctx, key, data, cond)
	if errors.Is(err, ErrPrecondition) {
		// Either someone wrote in between, or our own write landed and
		// its answer was lost: compare what is stored with what we wrote.
		got, gotEtag, gerr := s.blob.Get(ctx, key)
		if gerr == nil && bytes.Equal(got, data) {
			return gotEtag, next.Serial, nil
		}
		return "", 0, fmt.Errorf("someone wrote it in between: %w", ErrConflict)
	}
	if err != nil {
		return "", 0, err
	}
	return newEtag, next.Serial, nil
}

// check refuses st when the stored state is not the one read (etag), or
// is of another lineage, a higher serial or a newer format. It reads the
// stored state, unless the Store knows it already (see knows).
func (s *Store) check(ctx context.Context, env, key string, st *State, etag string) error {
	if s.knows(env, etag, st.Lineage, st.Serial) {
		return nil
	}
	curData, curEtag, err := s.blob.Get(ctx, key)
	switch {
	case errors.Is(err, ErrNotFound):
		if etag != "" {
			return fmt.Errorf("the state was deleted since it was read: %w", ErrConflict)
		}
	case err != nil:
		return err
	default:
		cur, err := Decode(curData)
		if err != nil {
			return fmt.Errorf("stored state: %w", err)
		}
		if cur.Lineage != st.Lineage {
			return fmt.Errorf("stored state has lineage %s, this one %s: it belongs to another history of %s: %w",
				cur.Lineage, st.Lineage, env, ErrLineage)
		}
		if etag == "" {
			return fmt.Errorf("a state already exists (serial %d): %w", cur.Serial, ErrConflict)
		}
		if curEtag != etag {
			return fmt.Errorf("stored state (serial %d) is not the one read: %w", cur.Serial, ErrConflict)
		}
		if st.Serial < cur.Serial {
			return fmt.Errorf("stored state has serial %d, this one %d (older): %w", cur.Serial, st.Serial, ErrSerial)
		}
	}
	return nil
}
