package provision

import (
	"context"
	"fmt"
	"time"

	"github.com/accoreboot/acco/state"
)

// dumpsSuffix makes the address under which the deletion of a stopped
// database's dumps is reported: database.NAME:dumps.
const dumpsSuffix = ":dumps"

// settleOnDemand runs after a destroy that destroyed everything it
// planned. For each on-demand record the plan lists: with DeleteDumps,
// it deletes the objects under the record's dump prefix, then drops the
// record; without, it keeps the dumps and the record, so that they stay
// findable (acco db status, acco db start after a new apply), and marks
// as stopped a record that was stopping or starting, since its cluster
// is gone now (a starting record with no dumps is dropped: there is
// nothing left of it). It reports whether anything failed.
func (a *applier) settleOnDemand(ctx context.Context) bool {
	failed := false
	for _, s := range a.plan.Stopped {
		name := s.Cluster()
		if !s.DeleteDumps {
			if s.Status == state.ArchiveStopped {
				continue
			}
			err := a.rec.update(ctx, "", func(st *state.State) {
				arch, ok := st.OnDemand[name]
				switch {
				case !ok || arch.Status == state.ArchiveStopped:
				case arch.Manifest == "":
					delete(st.OnDemand, name)
				default:
					arch.Status = state.ArchiveStopped
					st.OnDemand[name] = arch
				}
			})
			if err != nil {
				a.dumpsResult(s.Address, ResultFailed, 0, err)
				failed = true
			}
			continue
		}
		addr := s.Address + dumpsSuffix
		start := time.Now()
		a.emit(Event{Type: EventStart, Address: addr, Action: Delete})
		n, err := state.DeleteDumps(ctx, a.opts.Dumps, a.env, name)
		if err == nil {
			err = a.rec.update(ctx, "", func(st *state.State) { delete(st.OnDemand, name) })
		}
		elapsed := time.Since(start)
		if err != nil {
			err = fmt.Errorf("deleting the dumps of %s (%d deleted): %w", s.Address, n, err)
			a.emit(Event{Type: EventErrored, Address: addr, Action: Delete, Elapsed: elapsed.Seconds(), Error: err.Error()})
			a.dumpsResult(s.Address, ResultFailed, elapsed, err)
			failed = true
			continue
		}
		a.emit(Event{Type: EventComplete, Address: addr, Action: Delete, Elapsed: elapsed.Seconds()})
		a.dumpsResult(s.Address, ResultDone, elapsed, nil)
	}
	return failed
}

// dumpsResult records the result of deleting (or keeping) a stopped
// database's dumps, reported as database.NAME:dumps.
func (a *applier) dumpsResult(addr, status string, elapsed time.Duration, err error) {
	a.resMu.Lock()
	defer a.resMu.Unlock()
	r := &Result{Address: addr + dumpsSuffix, Action: Delete, Status: status, Elapsed: elapsed.Round(time.Millisecond).Seconds()}
	if err != nil {
		r.Error = err.Error()
	}
	a.results[r.Address+"#"+string(Delete)] = r
}
