package state_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/accoreboot/acco/state"
)

func TestLockErrorMessage(t *testing.T) {
	created := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		holder state.LockInfo
		want   string
	}{
		{"Hold", state.LockInfo{ID: "3f2a", Operation: "hold", Who: "alice@host", Reason: "release freeze", Created: created},
			`state of test is locked by alice@host (hold: "release freeze", id 3f2a, since 2026-05-01T10:00:00Z, never expires)`},
		{"Apply", state.LockInfo{ID: "9b1c", Operation: "apply", Who: "bob@ci", Created: created, Expires: created.Add(time.Minute)},
			`state of test is locked by bob@ci (apply, id 9b1c, since 2026-05-01T10:00:00Z, expires 2026-05-01T10:01:00Z)`},
		{"Unknown", state.LockInfo{ID: "x", Created: created},
			`state of test is locked by someone (unknown operation, id x, since 2026-05-01T10:00:00Z, never expires)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := error(&state.LockError{Env: "test", Holder: tc.holder})
			if err.Error() != tc.want {
				t.Errorf("got  %s\nwant %s", err, tc.want)
			}
			if !errors.Is(err, state.ErrLocked) {
				t.Error("LockError is not ErrLocked")
			}
		})
	}
}

func TestLockDefaults(t *testing.T) {
	ctx := t.Context()
	l := state.NewLocker(newDirBlob(t))
	lease, err := l.Lock(ctx, "test", state.LockInfo{Operation: "apply"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	info := lease.Info()
	if len(info.ID) != 36 || info.Who == "" || info.Created.IsZero() || !info.Expires.IsZero() {
		t.Errorf("Info = %+v: want a UUID, user@host, a creation time and no expiry", info)
	}
	if stop := lease.KeepAlive(ctx); stop != nil {
		stop() // nothing to renew, must not block
	}
	if err := lease.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := lease.Release(ctx); err != nil {
		t.Errorf("second Release: %v", err)
	}
}

func TestLockBodyHasTokenInfoHasNot(t *testing.T) {
	ctx := t.Context()
	b := newDirBlob(t)
	if _, err := state.NewLocker(b).Lock(ctx, "test", state.LockInfo{Operation: "apply", Who: "a@b"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	data, _, err := b.Get(ctx, state.LockKey("test"))
	if err != nil {
		t.Fatal(err)
	}
	if !containsAll(string(data), `"token":"`, `"who":"a@b"`, `"operation":"apply"`, `"expires":"`) {
		t.Errorf("lock body = %s", data)
	}
}

func TestInvalidEnv(t *testing.T) {
	ctx := t.Context()
	b := newDirBlob(t)
	for _, env := range []string{"", ".", "..", "a/b", ".hidden", `a\b`} {
		if _, err := state.NewLocker(b).Lock(ctx, env, state.LockInfo{}, 0); err == nil {
			t.Errorf("Lock(%q) succeeded", env)
		}
		if _, _, err := state.NewStore(b).Read(ctx, env); err == nil || errors.Is(err, state.ErrNotFound) {
			t.Errorf("Read(%q): %v", env, err)
		}
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

func TestLockTakeOverFromAGoneHolder(t *testing.T) {
	ctx := t.Context()
	b := newDirBlob(t)
	dead := &state.Process{Host: "h", BootID: "b", PIDNamespace: "ns", PID: 41, Start: 1}
	alive := &state.Process{Host: "h", BootID: "b", PIDNamespace: "ns", PID: 42, Start: 2}
	l := state.NewLocker(b, state.WithProcessCheck(func(p state.Process) bool { return p.PID == dead.PID }))
	for _, tc := range []struct {
		name     string
		holder   *state.Process
		takeOver bool
	}{
		{"Gone", dead, true},
		{"Alive", alive, false},
		{"No process recorded (a hold, or an older acco)", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first, err := l.Lock(ctx, "test", state.LockInfo{Operation: "apply", Process: tc.holder}, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _, _ = l.Break(ctx, "test", first.Info().ID, true) })
			if got := l.HolderGone(first.Info()); got != tc.takeOver {
				t.Errorf("HolderGone = %v, want %v", got, tc.takeOver)
			}
			second, err := l.Lock(ctx, "test", state.LockInfo{Operation: "apply", Process: alive}, time.Hour)
			if !tc.takeOver {
				var le *state.LockError
				if !errors.As(err, &le) || le.Holder.ID != first.Info().ID {
					t.Fatalf("Lock = %v, want a LockError naming %s", err, first.Info().ID)
				}
				if _, err := l.Break(ctx, "test", first.Info().ID, false); !errors.As(err, &le) {
					t.Errorf("Break without force = %v, want a LockError", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if prev := second.TookOver(); prev == nil || prev.ID != first.Info().ID || !second.HolderGone() {
				t.Errorf("TookOver = %+v, HolderGone = %v; want the lock of the gone holder", prev, second.HolderGone())
			}
			if err := first.Renew(ctx); !errors.Is(err, state.ErrLockLost) {
				t.Errorf("the gone holder's Renew = %v, want ErrLockLost", err)
			}
			info, err := l.Status(ctx, "test")
			if err != nil || info.Process == nil || info.Process.PID != alive.PID {
				t.Errorf("Status = %+v, %v; want the new holder's process", info, err)
			}
			if err := second.Release(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestBreakAGoneHolderWithoutForce(t *testing.T) {
	ctx := t.Context()
	b := newDirBlob(t)
	l := state.NewLocker(b, state.WithProcessCheck(func(state.Process) bool { return true }))
	lease, err := l.Lock(ctx, "test", state.LockInfo{Operation: "apply", Process: &state.Process{PID: 7}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Break(ctx, "test", lease.Info().ID, false); err != nil {
		t.Errorf("Break of a lock whose holder is gone: %v", err)
	}
}

func TestOldLockWithoutProcessIsReadable(t *testing.T) {
	ctx := t.Context()
	b := newDirBlob(t)
	old := `{"id":"3f2a","operation":"apply","who":"a@b","version":"0.1","created":"2026-05-01T10:00:00Z","expires":"2099-05-01T10:02:00Z","token":"abc"}`
	if _, err := b.Put(ctx, state.LockKey("test"), []byte(old), state.IfNoneMatch); err != nil {
		t.Fatal(err)
	}
	info, err := state.NewLocker(b).Status(ctx, "test")
	if err != nil || info.ID != "3f2a" || info.Process != nil {
		t.Fatalf("Status = %+v, %v", info, err)
	}
	var le *state.LockError
	if _, err := state.NewLocker(b).Lock(ctx, "test", state.LockInfo{}, time.Minute); !errors.As(err, &le) {
		t.Errorf("Lock over an old live lock = %v, want a LockError", err)
	}
}
