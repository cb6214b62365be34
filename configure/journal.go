package configure

import (
	"context"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/accoreboot/acco/state"
)

// Journal keeps the restarts that are owed, durably, so that a run that
// fails or is killed after changing a file still restarts its service next
// time. The engine calls Owe before it changes anything on the host and Paid
// after a restart passed its health gate. Implementations must be safe for
// concurrent use (hosts run in parallel).
type Journal interface {
	// Owed returns the units of the host whose restart is owed.
	Owed(host string) []string
	// Owe records restarts as owed and persists them before returning.
	Owe(ctx context.Context, host string, units []string, reason string) error
	// Paid records that a unit was restarted and is healthy.
	Paid(ctx context.Context, host, unit string) error
}

// ActionRestart is the state.Pending action of an owed restart.
const ActionRestart = "restart"

// StateJournal keeps owed restarts in state.Pending, as
// {address: host.NAME:unit:UNIT, action: restart}, and calls Save after each
// change (the caller writes state to its store there).
type StateJournal struct {
	mu    sync.Mutex
	State *state.State
	Save  func(ctx context.Context) error
	Now   func() time.Time
}

func unitAddress(host, unit string) string { return Address(host, KindUnit, unit) }

// Owed implements Journal.
func (j *StateJournal) Owed(host string) []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	prefix := Address(host, KindUnit, "")
	var out []string
	for _, p := range j.State.Pending {
		if p.Action == ActionRestart && strings.HasPrefix(p.Address, prefix) {
			out = append(out, strings.TrimPrefix(p.Address, prefix))
		}
	}
	sort.Strings(out)
	return out
}

// Owe implements Journal.
func (j *StateJournal) Owe(ctx context.Context, host string, units []string, reason string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	now := time.Now
	if j.Now != nil {
		now = j.Now
	}
	have := map[string]bool{}
	for _, p := range j.State.Pending {
		if p.Action == ActionRestart {
			have[p.Address] = true
		}
	}
	added := false
	for _, u := range units {
		a := unitAddress(host, u)
		if have[a] {
			continue
		}
		have[a] = true
		added = true
		j.State.Pending = append(j.State.Pending, state.Pending{Address: a, Action: ActionRestart, Started: now().UTC(), Detail: reason})
	}
	if !added || j.Save == nil {
		return nil
	}
	return j.Save(ctx)
}

// Paid implements Journal.
func (j *StateJournal) Paid(ctx context.Context, host, unit string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	a := unitAddress(host, unit)
	kept := j.State.Pending[:0]
	removed := false
	for _, p := range j.State.Pending {
		if p.Action == ActionRestart && p.Address == a {
			removed = true
			continue
		}
		kept = append(kept, p)
	}
	j.State.Pending = kept
	if !removed || j.Save == nil {
		return nil
	}
	return j.Save(ctx)
}

// StateKeys keeps pinned host keys in state.Hosts and calls Save after
// pinning.
type StateKeys struct {
	mu    sync.Mutex
	State *state.State
	Save  func(ctx context.Context) error
}

// HostKeys implements KeyStore.
func (k *StateKeys) HostKeys(host string) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if h, ok := k.State.Hosts[host]; ok {
		return append([]string(nil), h.HostKeys...)
	}
	return nil
}

// PinHostKeys implements KeyStore.
func (k *StateKeys) PinHostKeys(ctx context.Context, host, address string, keys []string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.State.Hosts == nil {
		k.State.Hosts = map[string]state.Host{}
	}
	k.State.Hosts[host] = state.Host{Address: address, HostKeys: append([]string(nil), keys...)}
	if k.Save == nil {
		return nil
	}
	return k.Save(ctx)
}
