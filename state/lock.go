package state

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"sync"
	"time"

	"github.com/google/uuid"
)

// LockInfo describes a lock and its holder.
type LockInfo struct {
	// ID identifies the lock; shown to users and given back to
	// acco lock break ENV ID.
	ID string `json:"id"`
	// Operation is what the holder does: apply, destroy, hold, ...
	Operation string `json:"operation"`
	// Who is user@host of the holder.
	Who string `json:"who"`
	// Version is the holder's acco version.
	Version string `json:"version"`
	// Reason is the operator's reason, for holds.
	Reason string `json:"reason,omitempty"`
	// Created is when the lock was taken.
	Created time.Time `json:"created"`
	// Expires is when the lease runs out unless renewed; zero means never
	// (an operator hold without a time limit).
	Expires time.Time `json:"expires"`
	// Process is the process holding the lock while it runs, so that a run
	// on the same machine can take over the lock of one that died (see
	// Process.Gone); nil for holds, which outlive the process that took
	// them, and for locks written by older versions of acco.
	Process *Process `json:"process,omitempty"`
}

// holderGone reports whether the lock's holder is a process that is
// provably gone (see Process.Gone), as judged by gone.
func (i LockInfo) holderGone(gone func(Process) bool) bool {
	return i.Process != nil && gone(*i.Process)
}

// Expired reports whether the lease has run out at now.
func (i LockInfo) Expired(now time.Time) bool {
	return !i.Expires.IsZero() && now.After(i.Expires)
}

// lockBody is the lock object: the info plus the owner token, which only
// the holder knows and which is never shown.
type lockBody struct {
	LockInfo
	Token string `json:"token"`
}

func decodeLock(data []byte) (lockBody, error) {
	var b lockBody
	if err := json.Unmarshal(data, &b); err != nil {
		return b, fmt.Errorf("the lock object is not an acco lock: %w", err)
	}
	if b.ID == "" || b.Token == "" {
		return b, errors.New("the lock object is not an acco lock: no id or token")
	}
	return b, nil
}

// LockError says that an environment is locked by someone else. It
// matches ErrLocked.
type LockError struct {
	// Env is the environment.
	Env string
	// Holder describes the current lock.
	Holder LockInfo
}

// Error says who holds the lock, what for, since when and until when.
func (e *LockError) Error() string {
	h := e.Holder
	who := h.Who
	if who == "" {
		who = "someone"
	}
	what := h.Operation
	if what == "" {
		what = "unknown operation"
	}
	if h.Reason != "" {
		what += fmt.Sprintf(": %q", h.Reason)
	}
	expires := "never expires"
	if !h.Expires.IsZero() {
		expires = "expires " + h.Expires.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("state of %s is locked by %s (%s, id %s, since %s, %s)",
		e.Env, who, what, h.ID, h.Created.UTC().Format(time.RFC3339), expires)
}

// Unwrap makes errors.Is(err, ErrLocked) true.
func (e *LockError) Unwrap() error { return ErrLocked }

// Locker takes and inspects environments' lease locks in a Blob.
type Locker struct {
	blob  Blob
	now   func() time.Time
	renew time.Duration
	gone  func(Process) bool
}

// LockerOption configures a Locker.
type LockerOption func(*Locker)

// WithClock makes the Locker read the time from now (for tests).
func WithClock(now func() time.Time) LockerOption {
	return func(l *Locker) { l.now = now }
}

// WithRenewInterval sets how often Lease.KeepAlive renews; the default is
// a third of the lease's ttl. It must be well below the ttl: KeepAlive
// declares the lease lost once less than one interval of it is left.
func WithRenewInterval(d time.Duration) LockerOption {
	return func(l *Locker) { l.renew = d }
}

// WithProcessCheck replaces Process.Gone, which decides whether the process
// holding a lock is provably gone (for tests).
func WithProcessCheck(gone func(Process) bool) LockerOption {
	return func(l *Locker) { l.gone = gone }
}

// NewLocker returns a Locker over b.
func NewLocker(b Blob, opts ...LockerOption) *Locker {
	l := &Locker{blob: b, now: time.Now, gone: Process.Gone}
	for _, o := range opts {
		o(l)
	}
	return l
}

func (l *Locker) clock() time.Time { return l.now().UTC().Round(0) }

// maxAcquireRounds bounds the loop of Lock when the lock keeps changing
// under it.
const maxAcquireRounds = 10

// Lock takes env's lock for the holder described by info, with a lease of
// ttl (0: never expires). An empty info.ID gets a fresh UUID, an empty
// info.Who is filled with user@host; Created and Expires are set by Lock.
//
// When someone else holds an unexpired lock the error is a *LockError
// naming them. An expired lock is taken over, and so is a lock whose
// holder is a process provably gone (the Process of a run on this machine
// that died, see Process.Gone); Lease.TookOver says from whom. A lock
// found to carry the caller's own token (a retried write that had in fact
// succeeded) is the caller's. The caller sets info.Process to its own
// (CurrentProcess) when it holds the lock only while it runs.
func (l *Locker) Lock(ctx context.Context, env string, info LockInfo, ttl time.Duration) (*Lease, error) {
	if err := checkEnv(env); err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	if ttl < 0 {
		return nil, fmt.Errorf("lock %s: negative ttl %s", env, ttl)
	}
	key := LockKey(env)
	if info.ID == "" {
		info.ID = uuid.NewString()
	}
	if info.Who == "" {
		info.Who = defaultWho()
	}
	token, err := newToken()
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", key, err)
	}
	lease := &Lease{locker: l, env: env, key: key, ttl: ttl, token: token, lost: make(chan struct{})}

	for range maxAcquireRounds {
		now := l.clock()
		info.Created = now
		info.Expires = expiry(now, ttl)
		data, err := json.Marshal(lockBody{LockInfo: info, Token: token})
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", key, err)
		}
		etag, err := l.blob.Put(ctx, key, data, IfNoneMatch)
		if err == nil {
			lease.info, lease.etag = info, etag
			return lease, nil
		}
		if !errors.Is(err, ErrPrecondition) {
			return nil, fmt.Errorf("lock %s: %w", key, err)
		}

		cur, curEtag, err := l.blob.Get(ctx, key)
		if errors.Is(err, ErrNotFound) {
			continue // released in between: try again
		}
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", key, err)
		}
		held, err := decodeLock(cur)
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w; inspect it and remove it with acco lock break --force", key, err)
		}
		if held.Token == token {
			// Our write landed; the answer was lost and the retry failed.
			lease.info, lease.etag = held.LockInfo, curEtag
			return lease, nil
		}
		gone := held.holderGone(l.gone)
		if !held.Expired(now) && !gone {
			return nil, &LockError{Env: env, Holder: held.LockInfo}
		}
		etag, err = l.blob.Put(ctx, key, data, IfMatch(curEtag))
		if errors.Is(err, ErrPrecondition) {
			continue // someone renewed, released or took it first: look again
		}
		if err != nil {
			return nil, fmt.Errorf("lock %s: take over expired lock %s: %w", key, held.ID, err)
		}
		prev := held.LockInfo
		lease.info, lease.etag, lease.tookOver, lease.holderGone = info, etag, &prev, gone
		return lease, nil
	}
	return nil, fmt.Errorf("lock %s: the lock kept changing while acquiring it: %w", key, ErrPrecondition)
}

func expiry(now time.Time, ttl time.Duration) time.Time {
	if ttl == 0 {
		return time.Time{}
	}
	return now.Add(ttl)
}

func newToken() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("owner token: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// defaultWho returns user@host for the current process.
func defaultWho() string {
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return name + "@" + host
}

// Status returns env's current lock, or nil, nil when env is not locked.
// The lock may have expired (see LockInfo.Expired).
func (l *Locker) Status(ctx context.Context, env string) (*LockInfo, error) {
	if err := checkEnv(env); err != nil {
		return nil, fmt.Errorf("lock status: %w", err)
	}
	key := LockKey(env)
	data, _, err := l.blob.Get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lock status %s: %w", key, err)
	}
	b, err := decodeLock(data)
	if err != nil {
		return nil, fmt.Errorf("lock status %s: %w", key, err)
	}
	return &b.LockInfo, nil
}

// Break removes env's lock whose ID is id and returns what it was. It
// refuses when the current lock has another ID (ErrLockMismatch), and an
// unexpired lock unless force is set or its holder is a process provably
// gone (the error is a LockError naming the holder). With force an unreadable lock object is removed whatever id is.
// When there is no lock the error wraps ErrNotFound.
func (l *Locker) Break(ctx context.Context, env, id string, force bool) (*LockInfo, error) {
	if err := checkEnv(env); err != nil {
		return nil, fmt.Errorf("break lock: %w", err)
	}
	key := LockKey(env)
	data, etag, err := l.blob.Get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("break lock of %s: not locked: %w", env, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("break lock %s: %w", key, err)
	}
	held, derr := decodeLock(data)
	switch {
	case derr != nil && !force:
		return nil, fmt.Errorf("break lock %s: %w; remove it with force", key, derr)
	case derr != nil:
		// Unreadable: nothing to compare, the operator insisted.
	case held.ID != id:
		return nil, fmt.Errorf("break lock of %s: the lock has id %s, not %s (it changed?): %w", env, held.ID, id, ErrLockMismatch)
	case !force && !held.Expired(l.clock()) && !held.holderGone(l.gone):
		return nil, fmt.Errorf("will not break a lock that has not expired without force: %w", &LockError{Env: env, Holder: held.LockInfo})
	}
	if err := l.blob.Delete(ctx, key, IfMatch(etag)); err != nil {
		if errors.Is(err, ErrPrecondition) {
			return nil, fmt.Errorf("break lock of %s: the lock changed meanwhile, look again: %w", env, err)
		}
		return nil, fmt.Errorf("break lock %s: %w", key, err)
	}
	return &held.LockInfo, nil
}

// Lease is a held lock. Its methods are safe for concurrent use.
type Lease struct {
	locker   *Locker
	env, key string
	ttl      time.Duration
	token    string
	tookOver *LockInfo
	// holderGone: the lock taken over was live, its holder gone.
	holderGone bool

	mu       sync.Mutex
	info     LockInfo
	etag     string
	released bool

	lost     chan struct{}
	lostOnce sync.Once
	lostErr  error // why the lease is lost; written before lost is closed
}

// Info returns the lock as last written.
func (l *Lease) Info() LockInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.info
}

// TookOver returns the lock this lease replaced, expired or of a holder
// provably gone, or nil.
func (l *Lease) TookOver() *LockInfo { return l.tookOver }

// HolderGone reports whether the lock TookOver returns had not expired but
// its holder was a process provably gone.
func (l *Lease) HolderGone() bool { return l.holderGone }

// Lost returns a channel closed when the lease is found lost: taken over
// or broken by someone else, or about to expire because renewals failed
// (see KeepAlive). Once it is closed the holder must not start new work
// under the lock; Err says why.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// isLost reports whether the lease is known to be lost.
func (l *Lease) isLost() bool {
	select {
	case <-l.lost:
		return true
	default:
		return false
	}
}

// Err returns nil while the lease is held, and once Lost is closed an
// error wrapping ErrLockLost that says why.
func (l *Lease) Err() error {
	select {
	case <-l.lost:
		return l.lostErr
	default:
		return nil
	}
}

// markLost records why the lease is lost and closes Lost (once).
func (l *Lease) markLost(err error) {
	l.lostOnce.Do(func() {
		l.lostErr = err
		close(l.lost)
	})
}

// Renew pushes the lease's expiry to now plus its ttl, if the lock is still
// this lease's (If-Match on its ETag). When it is not, the error wraps
// ErrLockLost and Lost is closed.
func (l *Lease) Renew(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return fmt.Errorf("renew lock %s: already released", l.key)
	}
	info := l.info
	info.Expires = expiry(l.locker.clock(), l.ttl)
	data, err := json.Marshal(lockBody{LockInfo: info, Token: l.token})
	if err != nil {
		return fmt.Errorf("renew lock %s: %w", l.key, err)
	}
	etag, err := l.locker.blob.Put(ctx, l.key, data, IfMatch(l.etag))
	if err == nil {
		l.info, l.etag = info, etag
		return nil
	}
	if !errors.Is(err, ErrPrecondition) {
		return fmt.Errorf("renew lock %s: %w", l.key, err)
	}
	if err := l.checkOwnLocked(ctx); err != nil {
		return fmt.Errorf("renew lock %s: %w", l.key, err)
	}
	return nil
}

// checkOwnLocked, after a refused conditional write, reads the lock: if it
// still carries our token (our write landed, its answer was lost), it
// adopts its ETag; otherwise the lease is lost. l.mu is held.
func (l *Lease) checkOwnLocked(ctx context.Context) error {
	data, etag, err := l.locker.blob.Get(ctx, l.key)
	if errors.Is(err, ErrNotFound) {
		return l.lostLocked(fmt.Errorf("the lock %s of %s was broken: %w", l.info.ID, l.env, ErrLockLost))
	}
	if err != nil {
		return err
	}
	held, err := decodeLock(data)
	if err == nil && held.Token == l.token {
		l.info, l.etag = held.LockInfo, etag
		return nil
	}
	if err != nil {
		return l.lostLocked(fmt.Errorf("the lock %s of %s was replaced by something unreadable: %w", l.info.ID, l.env, ErrLockLost))
	}
	return l.lostLocked(fmt.Errorf("the lock %s of %s was taken: it is now held by %s (%s, id %s): %w", l.info.ID, l.env, held.Who, held.Operation, held.ID, ErrLockLost))
}

// lostLocked marks the lease lost because of err and returns err.
func (l *Lease) lostLocked(err error) error {
	l.markLost(err)
	return err
}

// KeepAlive renews the lease in a goroutine, every third of its ttl (or the
// Locker's renew interval), until stop is called or ctx is done. Each
// renewal has a deadline of a quarter of the ttl, so that a store that
// stops answering cannot hold it up.
//
// When a renewal finds the lock lost (taken over or broken), or when less
// than one renew interval of the lease is left because renewals failed or
// hung, KeepAlive closes Lost, with Err saying why, and stops renewing: the
// holder then stops starting new work while the lease is still valid,
// before anyone else may take the lock. stop waits for the goroutine to
// end. A lease that never expires is not renewed.
func (l *Lease) KeepAlive(ctx context.Context) (stop func()) {
	every := l.locker.renew
	if every <= 0 {
		every = l.ttl / 3
	}
	if every <= 0 || l.ttl <= 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	info := l.Info()
	go func() {
		defer close(done)
		l.keepAlive(ctx, every, l.ttl/4, info)
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
}

// renewal is the outcome of one renewal: its error, and the lease's expiry
// after it.
type renewal struct {
	err     error
	expires time.Time
}

// keepAlive is the loop of KeepAlive. Renewals run in a goroutine of their
// own (one at a time), so that the loop sees the lease run short while a
// renewal hangs.
func (l *Lease) keepAlive(ctx context.Context, every, timeout time.Duration, info LockInfo) {
	expires := info.Expires
	tick := time.NewTicker(every)
	defer tick.Stop()
	// short fires when less than one renew interval of the lease is left.
	short := time.NewTimer(l.untilShort(expires, every))
	defer short.Stop()
	results := make(chan renewal, 1)
	renewing := false
	defer func() {
		if renewing {
			<-results // ctx is cancelled or the renewal's deadline near
		}
	}()
	var lastErr error
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if renewing {
				continue
			}
			renewing = true
			go func() {
				rctx, cancel := context.WithTimeout(ctx, timeout)
				defer cancel()
				err := l.Renew(rctx)
				results <- renewal{err: err, expires: l.Info().Expires}
			}()
		case r := <-results:
			renewing = false
			l.mu.Lock()
			released := l.released
			l.mu.Unlock()
			switch {
			case released, ctx.Err() != nil, errors.Is(r.err, ErrLockLost):
				return
			case r.err == nil:
				lastErr = nil
				if r.expires.After(expires) {
					expires = r.expires
					short.Reset(l.untilShort(expires, every))
				}
			default:
				lastErr = r.err
			}
		case <-short.C:
			why := "the renewals did not finish"
			if lastErr != nil {
				why = fmt.Sprintf("the last one failed: %v", lastErr)
			}
			l.markLost(fmt.Errorf("could not renew the lease of lock %s of %s in time (%s): it expires at %s, less than %s from now, and then anyone may take the lock: %w",
				info.ID, l.env, why, expires.UTC().Format(time.RFC3339), every, ErrLockLost))
			return
		}
	}
}

// untilShort returns how long until less than every is left of a lease
// that expires at expires.
func (l *Lease) untilShort(expires time.Time, every time.Duration) time.Duration {
	return max(expires.Sub(l.locker.clock())-every, 0)
}

// Release deletes the lock if it is still this lease's (If-Match on its
// ETag). A lock someone else took over is left alone, and the error wraps
// ErrLockLost. Releasing twice, or a lock already gone, is not an error.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return nil
	}
	for range 2 {
		// While more than half of the lease is left nobody else may
		// have taken the lock (a run elsewhere waits for it to expire):
		// the delete needs no read first.
		cond := IfMatch(l.etag)
		if !l.info.Expires.IsZero() && l.info.Expires.Sub(l.locker.clock()) > l.ttl/2 && !l.isLost() {
			cond = IfMatchHeld(l.etag)
		}
		err := l.locker.blob.Delete(ctx, l.key, cond)
		if err == nil {
			l.released = true
			return nil
		}
		if !errors.Is(err, ErrPrecondition) {
			return fmt.Errorf("release lock %s: %w", l.key, err)
		}
		// Not our ETag: if the lock still carries our token (a renewal
		// whose answer was lost) checkOwnLocked adopts its ETag and we try
		// again; otherwise it is someone else's.
		if err := l.checkOwnLocked(ctx); err != nil {
			if errors.Is(err, ErrLockLost) {
				l.released = true
			}
			return fmt.Errorf("release lock %s: %w", l.key, err)
		}
	}
	return fmt.Errorf("release lock %s: the lock kept changing: %w", l.key, ErrPrecondition)
}

// HolderGone reports whether info's holder is a process provably gone, so
// that Lock would take its lock over and Break remove it without force.
func (l *Locker) HolderGone(info LockInfo) bool { return info.holderGone(l.gone) }
