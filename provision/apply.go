package provision

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/provision/httpretry"
	"github.com/accoreboot/acco/state"
)

// ErrStalePlan means a saved plan was made from another state than the one
// stored now. Not retryable: make a new plan.
var ErrStalePlan = errors.New("saved plan is stale")

// Event types of the apply stream (one JSON object per line with --json).
const (
	EventStart    = "apply_start"
	EventProgress = "apply_progress"
	EventComplete = "apply_complete"
	EventErrored  = "apply_errored"
)

// Event is one step of an apply, for the terminal and the JSON stream.
type Event struct {
	Type    string  `json:"type"`
	Address string  `json:"address"`
	Action  Action  `json:"action"`
	ID      string  `json:"id,omitempty"`
	Elapsed float64 `json:"elapsed_seconds"`
	// Status is the resource's last known status while waiting (BUILD,
	// CREATING, ...).
	Status string `json:"status,omitempty"`
	Error  string `json:"error,omitempty"`
}

// ReadState is a state as read, with its ETag; State nil means there was
// none.
type ReadState struct {
	State *state.State
	ETag  string
}

// ApplyOptions tune an apply.
type ApplyOptions struct {
	// Parallelism bounds the operations run at once (default 10).
	Parallelism int
	// Sealer seals database passwords into state; needed to create or
	// adopt database users.
	Sealer *state.Sealer
	// OnEvent receives the events; nil drops them. It is called from
	// several goroutines, one call at a time.
	OnEvent func(Event)
	// ProgressEvery is how often an apply_progress event is sent for an
	// operation still running (default 10s).
	ProgressEvery time.Duration
	// PollServer and PollDatabase, when set, are how often waits for
	// servers, and for clusters and their users, poll (jittered, never
	// longer); by default servers and users are polled every 250 ms at
	// first, up to 1 s, and clusters every 1 s at first, up to 2 s.
	PollServer, PollDatabase time.Duration
	// ServerTimeout bounds the wait for an instance to be ACTIVE with an
	// address, or gone (default 20m).
	ServerTimeout time.Duration
	// Stop, when closed, stops starting new operations; the ones running
	// finish or are recorded (waits return early) and state is saved.
	Stop <-chan struct{}
	// Attempts bounds the runs of an operation that failed for a passing
	// reason (default 5); RetryDelay is the wait before the second run,
	// growing linearly (default 2s).
	Attempts   int
	RetryDelay time.Duration
	// AccoVersion is written into state.
	AccoVersion string
	// From, when set, is the state the plan was made from, as the caller
	// read it under the lock it still holds: Apply then does not read the
	// state again (it still refuses one that is not the plan's). Apply
	// takes it over: the caller must not use it afterwards.
	From *ReadState
	// Dumps is the state bucket, where a destroy plan made with
	// PlanOptions.DeleteDumps deletes the dumps of stopped databases;
	// needed only by such a plan.
	Dumps state.Blob
}

func (o ApplyOptions) attempts() int {
	if o.Attempts > 0 {
		return o.Attempts
	}
	return 5
}

func (o ApplyOptions) retryDelay() time.Duration {
	if o.RetryDelay > 0 {
		return o.RetryDelay
	}
	return 2 * time.Second
}

func (o ApplyOptions) serverTimeout() time.Duration {
	if o.ServerTimeout > 0 {
		return o.ServerTimeout
	}
	return 20 * time.Minute
}

// Result is what happened to one change.
type Result struct {
	Address string  `json:"address"`
	Action  Action  `json:"action"`
	Status  string  `json:"status"` // done, failed, skipped
	ID      string  `json:"id,omitempty"`
	Error   string  `json:"error,omitempty"`
	Elapsed float64 `json:"elapsed_seconds"`
}

// Result statuses.
const (
	ResultDone    = "done"
	ResultFailed  = "failed"
	ResultSkipped = "skipped"
)

// Report is the outcome of an apply: every change's result, including what
// finished before a failure, and the state as last written.
type Report struct {
	Results []Result     `json:"results"`
	State   *state.State `json:"-"`
}

// Failed reports whether any change failed.
func (r *Report) Failed() bool {
	return slices.ContainsFunc(r.Results, func(x Result) bool { return x.Status == ResultFailed })
}

// applier runs one plan.
type applier struct {
	cl      Clients
	servers *serverWatch
	rec     *recorder
	env     string
	opts    ApplyOptions
	plan    *Plan

	evMu    sync.Mutex
	resMu   sync.Mutex
	results map[string]*Result
	seeds   *pollSeeds

	// created holds, for each create-phase step of the apply, a channel
	// closed when it succeeded; aborted is closed when a step failed and
	// no more steps start (see awaitCreated).
	created map[string]chan struct{}
	aborted chan struct{}
}

// Apply carries out plan: deletions in reverse dependency order, then
// creations and updates in dependency order, each stage with at most
// Parallelism operations at once. It reads the state first and refuses a
// plan made from another state (ErrStalePlan). An intent is written to
// state before each mutating call and the result right after. A failure
// stops the stages after the current one; the report says what finished.
func Apply(ctx context.Context, cl Clients, store *state.Store, plan *Plan, opts ApplyOptions) (*Report, error) {
	var st *state.State
	var etag string
	var err error
	switch {
	case opts.From == nil:
		st, etag, err = store.Read(ctx, plan.Env)
	case opts.From.State == nil:
		err = state.ErrNotFound
	default:
		st, etag = opts.From.State, opts.From.ETag
	}
	switch {
	case errors.Is(err, state.ErrNotFound):
		if plan.Lineage != "" {
			return nil, fmt.Errorf("%w: it was made from state %s serial %d, and there is no state now", ErrStalePlan, plan.Lineage, plan.Serial)
		}
		st, etag = state.New(plan.Env, opts.AccoVersion), ""
	case err != nil:
		return nil, fmt.Errorf("reading the state of %s: %w", plan.Env, err)
	case st.Lineage != plan.Lineage || st.Serial != plan.Serial:
		return nil, fmt.Errorf("%w: it was made from serial %d of lineage %s, the state is now serial %d of lineage %s", ErrStalePlan, plan.Serial, plan.Lineage, st.Serial, st.Lineage)
	}
	if opts.Parallelism <= 0 {
		opts.Parallelism = 10
	}
	if opts.Stop == nil {
		opts.Stop = make(chan struct{})
	}
	if opts.AccoVersion != "" {
		st.AccoVersion = opts.AccoVersion
	}
	// Sealed values are bound to the environment and the state's lineage.
	opts.Sealer = opts.Sealer.For(plan.Env, st.Lineage)
	cl = limitClients(cl, opts.Parallelism)
	a := &applier{cl: cl, servers: newServerWatch(cl.Compute), env: plan.Env, opts: opts, plan: plan, results: map[string]*Result{}, seeds: newPollSeeds(),
		rec: &recorder{store: store, env: plan.Env, st: st, etag: etag, status: map[string]string{}, attempts: opts.attempts(), retryDelay: opts.retryDelay()}}
	if opts.Sealer == nil {
		for _, c := range plan.Changes {
			if c.Kind == spec.KindDatabaseUser && (c.Action == Create || c.Action == Update || c.Action == Replace) {
				return nil, ErrNoSealer
			}
		}
	}
	for _, s := range plan.Stopped {
		if s.DeleteDumps && opts.Dumps == nil {
			return nil, fmt.Errorf("the plan deletes the dumps of %s and apply was given no state bucket", s.Address)
		}
	}
	failed := a.runGraph(ctx, a.steps())
	if plan.Destroy && !failed && !a.stopped() && a.settleOnDemand(ctx) {
		failed = true
	}
	if err := a.rec.finalize(ctx); err != nil {
		failed = true
		a.resMu.Lock()
		a.results["(state)"] = &Result{Address: "(state)", Status: ResultFailed, Error: err.Error()}
		a.resMu.Unlock()
	}
	rep := &Report{State: a.rec.snapshot()}
	for _, c := range plan.Changes {
		if r, ok := a.results[c.Address+"#"+string(c.Action)]; ok {
			rep.Results = append(rep.Results, *r)
		}
	}
	for _, s := range plan.Stopped {
		if r, ok := a.results[s.Address+dumpsSuffix+"#"+string(Delete)]; ok {
			rep.Results = append(rep.Results, *r)
		}
	}
	if r, ok := a.results["(state)"]; ok {
		rep.Results = append(rep.Results, *r)
	}
	if a.stopped() {
		return rep, errors.New("apply stopped by the operator: what finished is saved in state; run apply again to continue")
	}
	if failed {
		return rep, errors.New("apply failed: see the report; what finished is saved in state, and the next apply continues from there")
	}
	return rep, ctx.Err()
}

func (a *applier) stopped() bool {
	select {
	case <-a.opts.Stop:
		return true
	default:
		return false
	}
}

// step is one operation of the apply, with the steps it waits for.
type step struct {
	change *Change
	label  Action // the action shown (replace halves show replace)
	run    func(ctx context.Context, c *Change) error
	group  string // steps of one group run one after the other
	phase  int    // phaseDelete, phaseCreate or phaseLateDelete
	after  []int  // indexes of the steps that must be done first
}

// The phases of an apply's steps.
const (
	phaseDelete = iota
	phaseCreate
	phaseLateDelete
)

// lateDeletes are the kinds whose deletions wait until the instances have
// been updated: an instance may still use a security group the plan drops.
var lateDeletes = []string{"security_group", "keypair"}

// steps lists the plan's operations and what each waits for. An operation
// starts as soon as the ones it depends on are done, whatever their kind:
//   - a deletion (or the first half of a replacement) waits for the
//     deletions of the resources that depend on it;
//   - a creation, update or read waits for the creations of what it
//     depends on, and for the deletions related to it (its own first half,
//     a resource it depends on, or one that depends on it);
//   - the deletions of security groups and keypairs the plan drops wait
//     for every other operation;
//   - the operations of one group (a cluster's users and databases) run
//     one after the other, in kind order.
//
// A deletion whose dependencies are unknown (a resource found by its tags
// and not in state) is treated as depending on every resource of an
// earlier kind.
func (a *applier) steps() []step {
	var out []step
	deletes := func(late bool) {
		for i := len(kindOrder) - 1; i >= 0; i-- {
			for j := range a.plan.Changes {
				c := &a.plan.Changes[j]
				if c.Kind != kindOrder[i] {
					continue
				}
				isLate := slices.Contains(lateDeletes, c.Kind) && c.Action == Delete
				if (c.Action == Delete || c.Action == Replace && c.ID != "") && isLate == late {
					phase := phaseDelete
					if late {
						phase = phaseLateDelete
					}
					out = append(out, step{change: c, label: c.Action, run: a.deleter(c), group: c.Address, phase: phase})
				}
			}
		}
	}
	deletes(false)
	for _, kind := range kindOrder {
		for j := range a.plan.Changes {
			c := &a.plan.Changes[j]
			if c.Kind != kind {
				continue
			}
			group := c.Address
			if kind == spec.KindDatabaseDB || kind == spec.KindDatabaseUser {
				group = attrString(c.After, "cluster") // one cluster's children one at a time
				if group == "" {
					group = c.Address
				}
			}
			switch c.Action {
			case Create, Update, Replace:
				out = append(out, step{change: c, label: c.Action, run: a.creator(c), group: group, phase: phaseCreate})
			case Read:
				out = append(out, step{change: c, label: c.Action, run: a.reader, group: group, phase: phaseCreate})
			case Delete, NoOp:
			}
		}
	}
	deletes(true)
	a.link(out)
	return out
}

// link fills each step's after list (see steps).
func (a *applier) link(steps []step) {
	deps := func(c *Change) []string {
		if len(c.DependsOn) > 0 {
			return c.DependsOn
		}
		if r, ok := a.rec.resource(c.Address); ok {
			return r.DependsOn
		}
		return nil
	}
	dependsOn := func(x, y *Change) bool { return slices.Contains(deps(x), y.Address) }
	related := func(x, y *Change) bool { return x.Address == y.Address || dependsOn(x, y) || dependsOn(y, x) }
	lastOfGroup := map[string]int{}
	for i := range steps {
		s := &steps[i]
		for j := range steps[:i] {
			t := &steps[j]
			var wait bool
			switch {
			case s.phase == phaseLateDelete:
				wait = t.phase != phaseLateDelete
			case s.phase == phaseCreate && t.phase == phaseDelete:
				wait = related(s.change, t.change)
			case s.phase == phaseCreate && t.phase == phaseCreate:
				// A new cluster waits for its allow-list's instances
				// itself, after ordering (see createDatabase).
				wait = dependsOn(s.change, t.change) && !(createsCluster(s.change) && t.change.Kind == spec.KindInstance)
			case s.phase == phaseDelete && t.phase == phaseDelete:
				// t is of a later kind (deletions are listed last kind
				// first): it goes first when it depends on s.
				wait = dependsOn(t.change, s.change) ||
					len(deps(t.change)) == 0 && kindRank(t.change.Kind) > kindRank(s.change.Kind)
			}
			if wait {
				s.after = append(s.after, j)
			}
		}
		key := strconv.Itoa(s.phase) + "/" + s.group
		if j, ok := lastOfGroup[key]; ok && !slices.Contains(s.after, j) {
			s.after = append(s.after, j)
		}
		lastOfGroup[key] = i
	}
}

// deleter returns the delete operation of a change's kind.
func (a *applier) deleter(c *Change) func(context.Context, *Change) error {
	switch c.Kind {
	case spec.KindKeypair:
		return a.deleteKeypair
	case spec.KindSecurityGroup:
		return a.deleteGroup
	case spec.KindInstance:
		return a.deleteInstance
	case spec.KindDatabase:
		return a.deleteDatabase
	case spec.KindDatabaseUser, spec.KindDatabaseDB:
		return func(ctx context.Context, c *Change) error {
			if cc := a.plan.Change(a.childCluster(c)); cc != nil && (cc.Action == Delete || cc.Action == Replace) {
				return a.rec.finish(ctx, c.Address, nil) // goes with its cluster
			}
			if c.Kind == spec.KindDatabaseUser {
				return a.deleteUser(ctx, c)
			}
			return a.deleteDB(ctx, c)
		}
	}
	return func(context.Context, *Change) error { return fmt.Errorf("no delete for kind %s", c.Kind) }
}

// creator returns the create or update operation of a change's kind.
func (a *applier) creator(c *Change) func(context.Context, *Change) error {
	create := c.Action == Create || c.Action == Replace
	switch c.Kind {
	case spec.KindKeypair:
		return a.createKeypair
	case spec.KindSecurityGroup:
		if create {
			return a.createGroup
		}
		return a.updateGroup
	case spec.KindInstance:
		if create {
			return a.createInstance
		}
		return a.updateInstance
	case spec.KindDatabase:
		if create {
			return a.createDatabase
		}
		return func(ctx context.Context, c *Change) error { return a.updateDatabase(ctx, c, 0) }
	case spec.KindDatabaseUser:
		return a.ensureUser
	case spec.KindDatabaseDB:
		return a.ensureDB
	}
	return func(context.Context, *Change) error { return fmt.Errorf("no create for kind %s", c.Kind) }
}

// reader records in state what the plan observed: an adopted resource, or
// the removal of one deleted outside acco.
func (a *applier) reader(ctx context.Context, c *Change) error {
	if c.Before == nil {
		return a.rec.finish(ctx, c.Address, nil)
	}
	attrs := c.After
	if attrs == nil {
		attrs = c.Before
	} else {
		attrs = knownFrom(attrs, c.Before)
	}
	r := state.Resource{Address: c.Address, Kind: c.Kind, ID: c.ID, Attributes: withoutSensitive(attrs), DependsOn: c.DependsOn}
	if old, ok := a.rec.resource(c.Address); ok {
		r.Secrets = old.Secrets
	}
	return a.rec.finish(ctx, c.Address, &r)
}

// knownFrom returns a copy of after in which the values known only after
// apply are taken from before (what is live), so that recording a resource
// never records "(known after apply)" for what the cloud already says.
func knownFrom(after, before map[string]any) map[string]any {
	out := make(map[string]any, len(after))
	for k, v := range after {
		if v == Unknown {
			if b, ok := before[k]; ok && b != "" {
				v = b
			}
		}
		out[k] = v
	}
	return out
}

// createsCluster reports whether c orders a new database cluster.
func createsCluster(c *Change) bool {
	return c.Kind == spec.KindDatabase && c.Action == Create
}

// instanceDeps returns the instances c depends on.
func instanceDeps(c *Change) []string {
	var out []string
	for _, d := range c.DependsOn {
		if strings.HasPrefix(d, spec.KindInstance+".") {
			out = append(out, d)
		}
	}
	return out
}

// awaitCreated waits until the create-phase steps of addrs that this apply
// runs have succeeded. It fails when one of them cannot succeed any more:
// the apply stopped starting steps after a failure, or was stopped.
func (a *applier) awaitCreated(ctx context.Context, addrs []string) error {
	for _, addr := range addrs {
		ch, ok := a.created[addr]
		if !ok {
			continue // not in this apply: as state says
		}
		select {
		case <-ch:
		case <-a.aborted:
			return fmt.Errorf("%s did not finish: the apply stopped after a failure; run apply again to continue", addr)
		case <-a.opts.Stop:
			return errStopped
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// outcome is the end of one step.
type outcome struct {
	index int
	err   error
}

// runGraph runs the steps, each as soon as the steps it waits for are
// done, and reports whether one failed. After a failure, or when the run
// is stopped, no step starts; the ones running finish. The steps that did
// not start are reported skipped.
func (a *applier) runGraph(ctx context.Context, steps []step) bool {
	waiting := make([]int, len(steps))
	next := make([][]int, len(steps))
	for i, s := range steps {
		waiting[i] = len(s.after)
		for _, j := range s.after {
			next[j] = append(next[j], i)
		}
	}
	a.created, a.aborted = map[string]chan struct{}{}, make(chan struct{})
	for _, s := range steps {
		if s.phase == phaseCreate {
			a.created[s.change.Address] = make(chan struct{})
		}
	}
	started := make([]bool, len(steps))
	done := make(chan outcome, len(steps))
	running := 0
	failed := false
	start := func(i int) {
		if failed || a.stopped() || ctx.Err() != nil {
			return
		}
		started[i] = true
		running++
		go func() { done <- outcome{i, a.runStep(ctx, steps[i])} }()
	}
	for i := range steps {
		if waiting[i] == 0 {
			start(i)
		}
	}
	for running > 0 {
		o := <-done
		running--
		if o.err != nil {
			if !failed {
				close(a.aborted)
			}
			failed = true
			continue
		}
		if steps[o.index].phase == phaseCreate {
			close(a.created[steps[o.index].change.Address])
		}
		for _, i := range next[o.index] {
			if waiting[i]--; waiting[i] == 0 {
				start(i)
			}
		}
	}
	for i, s := range steps {
		if !started[i] {
			a.result(s.change, ResultSkipped, 0, nil)
		}
	}
	return failed
}

// runStep runs one operation with its intent, events and result.
func (a *applier) runStep(ctx context.Context, s step) error {
	c := s.change
	start := time.Now()
	if s.label.Mutates() {
		if err := a.rec.intent(ctx, c.Address, string(s.label)); err != nil {
			a.result(c, ResultFailed, time.Since(start), err)
			return err
		}
	}
	a.emit(Event{Type: EventStart, Address: c.Address, Action: s.label, ID: c.ID})
	done := make(chan struct{})
	go a.progress(c, s.label, start, done)
	err := s.run(ctx, c)
	// Every operation looks its resource up before acting (adopt by
	// name, converge by set difference, NotFound is done), so one that
	// failed for a passing reason is simply run again.
	for attempt := 1; attempt < a.opts.attempts() && errors.Is(err, httpretry.ErrTransient) && ctx.Err() == nil; attempt++ {
		if werr := a.wait(ctx, time.Duration(attempt)*a.opts.retryDelay()); werr != nil {
			break
		}
		err = s.run(ctx, c)
	}
	close(done)
	id := c.ID
	if r, ok := a.rec.resource(c.Address); ok {
		id = r.ID
	}
	elapsed := time.Since(start)
	if err != nil {
		a.emit(Event{Type: EventErrored, Address: c.Address, Action: s.label, ID: id, Elapsed: elapsed.Seconds(), Error: err.Error()})
		a.result(c, ResultFailed, elapsed, err)
		return err
	}
	a.emit(Event{Type: EventComplete, Address: c.Address, Action: s.label, ID: id, Elapsed: elapsed.Seconds()})
	a.result(c, ResultDone, elapsed, nil)
	return nil
}

// progress sends apply_progress events until done.
func (a *applier) progress(c *Change, action Action, start time.Time, done <-chan struct{}) {
	every := a.opts.ProgressEvery
	if every <= 0 {
		every = 10 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			a.emit(Event{Type: EventProgress, Address: c.Address, Action: action, ID: c.ID, Elapsed: time.Since(start).Seconds(), Status: a.rec.getStatus(c.Address)})
		}
	}
}

func (a *applier) emit(e Event) {
	if a.opts.OnEvent == nil {
		return
	}
	e.Elapsed = float64(time.Duration(e.Elapsed*float64(time.Second)).Round(time.Millisecond)) / float64(time.Second)
	a.evMu.Lock()
	defer a.evMu.Unlock()
	a.opts.OnEvent(e)
}

// result records the result of a change; a replace keeps the worst of its
// two halves.
func (a *applier) result(c *Change, status string, elapsed time.Duration, err error) {
	a.resMu.Lock()
	defer a.resMu.Unlock()
	key := c.Address + "#" + string(c.Action)
	r, ok := a.results[key]
	if !ok {
		r = &Result{Address: c.Address, Action: c.Action}
		a.results[key] = r
	}
	if r.Status == ResultFailed {
		return
	}
	r.Status = status
	r.Elapsed = (time.Duration(r.Elapsed*float64(time.Second)) + elapsed).Round(time.Millisecond).Seconds()
	if err != nil {
		r.Error = err.Error()
	}
	if res, ok := a.rec.resource(c.Address); ok {
		r.ID = res.ID
	}
}

// Outputs computes an environment's outputs from its state: each instance's
// addresses and each database's host, port and URI (never a password). The
// URI verifies the server (sslmode=verify-full); the CA to verify it with is
// the database's ca_certificate attribute, which acco output saves to a file
// of the operator's and names with sslrootcert (a path on one operator's
// machine has no place in shared state).
func Outputs(st *state.State) map[string]state.Output {
	out := map[string]state.Output{}
	for _, r := range st.Resources {
		switch r.Kind {
		case spec.KindInstance:
			for _, k := range []string{"ipv4", "ipv6"} {
				if v := attrString(r.Attributes, k); v != "" && v != Unknown {
					out[r.Address+"."+k] = state.Output{Value: v}
				}
			}
		case spec.KindDatabase:
			host := attrString(r.Attributes, "host")
			port := attrInt(r.Attributes, "port")
			if host == "" || host == Unknown {
				continue
			}
			out[r.Address+".host"] = state.Output{Value: host}
			out[r.Address+".port"] = state.Output{Value: port}
			out[r.Address+".uri"] = state.Output{Value: fmt.Sprintf("postgresql://%s:%d/defaultdb?sslmode=verify-full", host, port)}
		}
	}
	return out
}
