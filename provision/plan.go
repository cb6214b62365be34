package provision

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/state"
)

// PlanOptions select what a plan covers.
type PlanOptions struct {
	// Destroy plans the deletion of everything the environment has.
	Destroy bool
	// RefreshOnly plans no change in the cloud: it only records in state
	// what changed outside acco.
	RefreshOnly bool
	// Targets, when set, limit the plan to these addresses and what they
	// depend on.
	Targets []string
	// Replace forces the replacement of these addresses.
	Replace []string
	// ResetUnknownUsers adopts the database users found in the cluster
	// and not in state by resetting their passwords (acco cannot learn
	// them otherwise). Without it such a user is left alone and reported
	// as drift, unless an interrupted apply of acco was creating it.
	ResetUnknownUsers bool
	// DeleteDumps, with Destroy, also deletes the dumps that acco db stop
	// kept in the state bucket for the environment's on-demand databases,
	// and their records in state. Without it a destroy keeps both.
	DeleteDumps bool
}

// Inputs are everything a plan is a function of.
type Inputs struct {
	// Env is the loaded, validated environment.
	Env *spec.Environment
	// PublicKeys are the keypairs' public keys, by keypair name (read from
	// the YAML or the files it names; see PublicKeys).
	PublicKeys map[string]string
	// State is the environment's state; nil when it has none yet.
	State *state.State
	// Observed is what is live (see Observe).
	Observed *Observed
}

// planner builds one plan.
type planner struct {
	in   Inputs
	opts PlanOptions
	env  string
	st   *state.State
	plan *Plan
	errs []error
	// laterDrift is drift added after settle: it stays drift, never a
	// read that records what is live.
	laterDrift []Drift
	// dormant are the on-demand clusters whose cluster the plan leaves
	// alone, by name: stopped ones, and (except in a destroy plan) those
	// being stopped.
	dormant map[string]state.DatabaseArchive
}

// PlanChanges computes the plan for in. It does no I/O. Errors name every
// problem found (an unknown flavor or image, an offer OVH does not sell, a
// protected database to destroy).
func PlanChanges(in Inputs, opts PlanOptions) (*Plan, error) {
	if in.Env == nil || in.Observed == nil {
		return nil, errors.New("planning: no environment or no observation")
	}
	st := in.State
	if st == nil {
		st = &state.State{Env: in.Env.Name}
	}
	if opts.DeleteDumps && !opts.Destroy {
		return nil, errors.New("planning: deleting the dumps of stopped databases is part of a destroy only")
	}
	p := &planner{in: in, opts: opts, env: in.Env.Name, st: st, dormant: map[string]state.DatabaseArchive{},
		plan: &Plan{Env: in.Env.Name, Lineage: st.Lineage, Serial: st.Serial, Destroy: opts.Destroy, RefreshOnly: opts.RefreshOnly, Changes: []Change{}, Drift: []Drift{}}}
	for name, a := range st.OnDemand {
		if a.Status == state.ArchiveStopped || (a.Status == state.ArchiveStopping && !opts.Destroy) {
			p.dormant[name] = a
		}
	}
	for _, a := range append(slices.Clone(opts.Targets), opts.Replace...) {
		if !p.known(a) {
			p.errs = append(p.errs, fmt.Errorf("address %s is neither in the environment nor in state (addresses look like instance.app; see acco plan %s)", a, p.env))
		}
	}
	p.planKeypairs()
	p.planSecurityGroups()
	p.planInstances()
	p.planDatabases()
	p.planDatabaseDBs()
	p.planDatabaseUsers()
	if err := errors.Join(p.errs...); err != nil {
		return nil, err
	}
	p.settle()
	p.plan.Drift = append(p.plan.Drift, p.laterDrift...)
	// Listed from the whole plan, whatever the targets: they only inform.
	p.plan.Adoptable = Adoptables(in, p.plan)
	p.applyReplace()
	p.applyTargets()
	if opts.RefreshOnly {
		p.refreshOnly()
	}
	sortChanges(p.plan.Changes)
	sort.SliceStable(p.plan.Stopped, func(i, j int) bool { return p.plan.Stopped[i].Address < p.plan.Stopped[j].Address })
	sort.SliceStable(p.plan.Drift, func(i, j int) bool { return p.plan.Drift[i].Address < p.plan.Drift[j].Address })
	return p.plan, nil
}

// settle turns the up-to-date resources whose state lags behind the cloud
// into reads, so that apply records them, and reports the lag of those an
// interrupted apply left (an intent still pending) as such rather than as
// changes made outside acco.
func (p *planner) settle() {
	pending := map[string]bool{}
	for _, x := range p.st.Pending {
		pending[x.Address] = true
		p.plan.Interrupted = append(p.plan.Interrupted, x.Action+" "+x.Address)
	}
	slices.Sort(p.plan.Interrupted)
	drifted := map[string]bool{}
	drift := p.plan.Drift[:0]
	for _, d := range p.plan.Drift {
		drifted[d.Address] = true
		if !pending[d.Address] {
			drift = append(drift, d)
		}
	}
	p.plan.Drift = drift
	for i := range p.plan.Changes {
		c := &p.plan.Changes[i]
		if c.Action != NoOp || (!drifted[c.Address] && !pending[c.Address]) {
			continue
		}
		c.Action, c.Reason = Read, "state lags behind the cloud: record what is live"
		if pending[c.Address] {
			c.Reason = "an interrupted apply left this: record what is live"
		}
	}
}

// pending reports whether the state holds an intent on addr: an apply of
// acco was working on it when it stopped.
func (p *planner) pending(addr string) bool {
	return slices.ContainsFunc(p.st.Pending, func(x state.Pending) bool { return x.Address == addr })
}

// known reports whether an address is declared or in state.
func (p *planner) known(addr string) bool {
	if slices.Contains(p.in.Env.Addresses(), addr) {
		return true
	}
	_, ok := p.st.Resource(addr)
	return ok
}

// wanted reports whether the plan keeps the environment's resources (it
// is not a destroy plan).
func (p *planner) wanted() bool { return !p.opts.Destroy }

func (p *planner) add(c Change) {
	if c.Kind == "" {
		c.Kind = kindOf(c.Address)
	}
	p.plan.Changes = append(p.plan.Changes, c)
}

func (p *planner) drift(addr, format string, args ...any) {
	p.plan.Drift = append(p.plan.Drift, Drift{Address: addr, Message: fmt.Sprintf(format, args...)})
}

func (p *planner) fail(format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf(format, args...))
}

// stateOf returns the state's resource at addr, or nil.
func (p *planner) stateOf(addr string) *state.Resource {
	if r, ok := p.st.Resource(addr); ok {
		return r
	}
	return nil
}

// stateKind returns the state's resources of a kind, by address.
func (p *planner) stateKind(kind string) []*state.Resource {
	var out []*state.Resource
	for i := range p.st.Resources {
		if p.st.Resources[i].Kind == kind {
			out = append(out, &p.st.Resources[i])
		}
	}
	return out
}

// orphan plans a resource that is in state but no longer wanted: delete it
// when it exists, forget it when it is already gone.
func (p *planner) orphan(r *state.Resource, before map[string]any, exists bool, reason string) {
	if !exists {
		p.drift(r.Address, "deleted outside acco")
		p.add(Change{Address: r.Address, Kind: r.Kind, Action: Read, ID: r.ID, Reason: "already deleted outside acco: forget it"})
		return
	}
	p.add(Change{Address: r.Address, Kind: r.Kind, Action: Delete, ID: r.ID, Before: before, Reason: reason})
}

// compare lists the attributes that differ between want and have, on keys.
func compare(want, have map[string]any, keys ...string) []string {
	var diff []string
	for _, k := range keys {
		if !equalValue(want[k], have[k]) {
			diff = append(diff, k)
		}
	}
	return diff
}

// equalValue compares attribute values across their Go and JSON forms.
func equalValue(a, b any) bool {
	return canonical(a) == canonical(b)
}

// canonical renders a value in one form for comparison.
func canonical(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case json.Number:
		return x.String()
	case int:
		return strconv.Itoa(x)
	case bool:
		return strconv.FormatBool(x)
	case []string:
		return strings.Join(x, "\x00")
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = canonical(e)
		}
		return strings.Join(parts, "\x00")
	}
	data, _ := json.Marshal(v)
	return string(data)
}

// attrString reads a string attribute.
func attrString(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

// attrInt reads an integer attribute from its Go or JSON form.
func attrInt(m map[string]any, k string) int {
	switch x := m[k].(type) {
	case int:
		return x
	case json.Number:
		n, _ := x.Int64()
		return int(n)
	case float64:
		return int(x)
	}
	return 0
}

// attrStrings reads a list of strings attribute.
func attrStrings(m map[string]any, k string) []string {
	switch x := m[k].(type) {
	case []string:
		return x
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			out = append(out, canonical(e))
		}
		return out
	}
	return nil
}

// describeDiff says which attributes change, from → to.
func describeDiff(keys []string, before, after map[string]any) string {
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %s -> %s", k, show(before[k]), show(after[k])))
	}
	return strings.Join(parts, ", ")
}

// show renders a value for people.
func show(v any) string {
	switch x := v.(type) {
	case nil:
		return "(none)"
	case string:
		return strconv.Quote(x)
	case []string:
		return "[" + strings.Join(x, ", ") + "]"
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = canonical(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return canonical(v)
}

// applyReplace turns the requested addresses into replacements.
func (p *planner) applyReplace() {
	for _, addr := range p.opts.Replace {
		c := p.plan.Change(addr)
		if c == nil {
			continue
		}
		switch c.Action {
		case NoOp, Update:
			c.Action = Replace
			c.Reason = "replacement requested with --replace"
		case Create, Replace, Delete, Read:
		}
	}
}

// applyTargets keeps only the targeted changes and their dependencies.
func (p *planner) applyTargets() {
	if len(p.opts.Targets) == 0 {
		return
	}
	keep := map[string]bool{}
	var visit func(string)
	visit = func(addr string) {
		if keep[addr] {
			return
		}
		keep[addr] = true
		if c := p.plan.Change(addr); c != nil {
			for _, d := range c.DependsOn {
				visit(d)
			}
		}
	}
	for _, t := range p.opts.Targets {
		visit(t)
	}
	out := p.plan.Changes[:0]
	for _, c := range p.plan.Changes {
		if keep[c.Address] {
			out = append(out, c)
		}
	}
	p.plan.Changes = out
	drift := p.plan.Drift[:0]
	for _, d := range p.plan.Drift {
		if keep[d.Address] {
			drift = append(drift, d)
		}
	}
	p.plan.Drift = drift
	stopped := p.plan.Stopped[:0]
	for _, x := range p.plan.Stopped {
		if keep[x.Address] {
			stopped = append(stopped, x)
		}
	}
	p.plan.Stopped = stopped
}

// refreshOnly keeps only what records drift in state.
func (p *planner) refreshOnly() {
	drifted := map[string]bool{}
	for _, d := range p.plan.Drift {
		drifted[d.Address] = true
	}
	out := p.plan.Changes[:0]
	for _, c := range p.plan.Changes {
		switch {
		case c.Action == Read:
		case drifted[c.Address] && c.ID != "":
			c.Action, c.After, c.Reason = Read, nil, "record what changed outside acco"
		case drifted[c.Address] && p.stateOf(c.Address) != nil:
			// Deleted outside acco: forget it (Before nil).
			c.Action, c.Before, c.After, c.Reason = Read, nil, nil, "deleted outside acco: forget it"
		default:
			continue
		}
		out = append(out, c)
	}
	p.plan.Changes = out
}
