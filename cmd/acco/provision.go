package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/provision"
	"github.com/accoreboot/acco/provision/httpretry"
	"github.com/accoreboot/acco/provision/openstack"
	"github.com/accoreboot/acco/provision/ovhdb"
	"github.com/accoreboot/acco/state"
)

// leaseTTL is how long a provisioning lock lasts unless renewed; the holder
// renews it every third of that (20s), so that a run that died on another
// machine holds the others up for at most a minute.
const leaseTTL = time.Minute

// cloudClients connects to the environment's project: OpenStack with the
// clouds.yaml entry the YAML names (or OS_* variables), the OVH API with the
// account's keys. Both retry transient failures. The OVH API's clock, which
// its first call needs, is read while Keystone authenticates.
func (a *app) cloudClients(ctx context.Context, env *spec.Environment) (provision.Clients, error) {
	db, dbErr := a.dbClient(ctx, env)
	return a.connectClients(ctx, env, db, dbErr)
}

// dbClient returns the OVH API client of env and starts its clock read; it
// makes no other request.
func (a *app) dbClient(ctx context.Context, env *spec.Environment) (*ovhdb.Client, error) {
	deadlines, err := a.httpDeadlines()
	if err != nil {
		return nil, err
	}
	db, err := ovhdb.New(ovhdb.Config{Project: env.Project, Lookup: a.lookupEnv, HTTPClient: httpretry.ClientWith(deadlines)})
	if err == nil {
		db.StartClockRead(ctx)
	}
	return db, err
}

// connectClients connects to env's OpenStack and returns its clients with
// db, the OVH client dbClient made (or its error, reported after
// OpenStack's, as the clients are listed).
func (a *app) connectClients(ctx context.Context, env *spec.Environment, db *ovhdb.Client, dbErr error) (provision.Clients, error) {
	deadlines, err := a.httpDeadlines()
	if err != nil {
		return provision.Clients{}, err
	}
	hc := httpretry.ClientWith(deadlines)
	osc, err := openstack.Connect(ctx, openstack.Config{Cloud: env.Cloud, Region: env.Region, Project: env.Project, Lookup: a.lookupEnv, HTTPClient: hc})
	if err != nil {
		if timedOut(ctx, err) {
			return provision.Clients{}, withHint(err, "%s", timeoutHint(deadlines))
		}
		return provision.Clients{}, withHint(err, "check the clouds.yaml entry %q (or the OS_* variables) for environment %s", env.Cloud, env.Name)
	}
	if dbErr != nil {
		return provision.Clients{}, dbErr
	}
	return provision.Clients{Compute: osc.Compute, Network: osc.Network, Image: osc.Image, DB: db}, nil
}

// sealer returns the Sealer for ACCO_STATE_KEY, or nil when it is unset.
func (a *app) sealer() (*state.Sealer, error) {
	key := a.getenv("ACCO_STATE_KEY")
	if key == "" {
		return nil, nil
	}
	s, err := state.NewSealer(key)
	if err != nil {
		return nil, fmt.Errorf("ACCO_STATE_KEY: %w", err)
	}
	return s, nil
}

// lockEnv takes the environment's lock for op, waiting up to timeout while
// someone else holds it, and keeps it renewed. The returned context is
// cancelled, with the reason as its cause, when the lease is lost or about
// to expire because it could not be renewed: the run then starts no new
// cloud operation. release frees the lock.
func (a *app) lockEnv(ctx context.Context, blob state.Blob, env, op string, timeout time.Duration) (context.Context, func(), error) {
	version, _ := buildVersion()
	locker := state.NewLocker(blob)
	deadline := time.Now().Add(timeout)
	delay := time.Second
	ttl := a.leaseTTL
	if ttl <= 0 {
		ttl = leaseTTL
	}
	// The process is recorded so that the next run on this machine can take
	// the lock over at once if this one dies (SIGKILL, crash, reboot of a
	// CI runner's container keeps the lease otherwise).
	proc, _ := state.CurrentProcess()
	for {
		lease, err := locker.Lock(ctx, env, state.LockInfo{Operation: op, Version: version, Process: proc}, ttl)
		if err == nil {
			if prev := lease.TookOver(); prev != nil {
				fmt.Fprintln(a.err, tookOverMessage(prev, lease.HolderGone()))
			}
			lctx, cancel := context.WithCancelCause(ctx)
			stop := lease.KeepAlive(context.WithoutCancel(ctx))
			go func() {
				select {
				case <-lease.Lost():
					lost := leaseLostError(env, lease.Err())
					a.setLeaseLost(lost)
					fmt.Fprintf(a.err, "Lost the lock of %s: %v\nStopping: no new operation is started; the ones under way finish and are saved in state.\n", env, lease.Err())
					cancel(lost)
				case <-lctx.Done():
				}
			}()
			release := func() {
				stop()
				cancel(nil)
				if err := lease.Release(context.WithoutCancel(ctx)); err != nil {
					fmt.Fprintf(a.err, "Warning: releasing the lock of %s: %v\n", env, err)
				}
			}
			return lctx, release, nil
		}
		if !errors.Is(err, state.ErrLocked) || time.Now().Add(delay).After(deadline) {
			var held *state.LockError
			if errors.As(err, &held) {
				return nil, nil, withHint(err, "%s", lockedHint(env, held.Holder, time.Now()))
			}
			return nil, nil, fmt.Errorf("locking %s: %w", env, err)
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 16*time.Second)
	}
}

// lockedHint says what will work when env's lock is held by holder: wait
// for the lease with a --lock-timeout long enough, or break it.
func lockedHint(env string, holder state.LockInfo, now time.Time) string {
	if holder.Expires.IsZero() {
		return fmt.Sprintf("the lock is an operator hold that never expires: ask %s, who can release it with: acco lock break %s %s --force", holder.Who, env, holder.ID)
	}
	wait := max(holder.Expires.Sub(now), 0) + 30*time.Second
	wait = wait.Round(time.Minute)
	if wait < time.Minute {
		wait = time.Minute
	}
	where := ""
	if holder.Process != nil {
		where = fmt.Sprintf(" (%s, still running or on another machine)", holder.Process)
	}
	return fmt.Sprintf("the holder%s renews its lease while it runs; if it died the lease expires at %s. Wait for it with: --lock-timeout %s. If you are sure the holder is gone: acco lock break %s %s --force",
		where, holder.Expires.UTC().Format(time.RFC3339), fmtDuration(wait), env, holder.ID)
}

// fmtDuration prints a whole number of minutes as 3m rather than 3m0s.
func fmtDuration(d time.Duration) string {
	return strings.TrimSuffix(d.String(), "0s")
}

// leaseLostError is the error of a run whose lease of env's lock was lost:
// why, and what to do.
func leaseLostError(env string, why error) error {
	return withHint(fmt.Errorf("the lease of the state lock of %s was lost: %w", env, why),
		"acco lock status %s shows who holds the lock now. If it is someone else, let them finish; if nobody does (S3 was slow or unreachable), check the link to the state bucket and run the command again: it goes on from what is saved in state", env)
}

// setLeaseLost records that the run's lease was lost, for finish.
func (a *app) setLeaseLost(err error) {
	a.lostMu.Lock()
	defer a.lostMu.Unlock()
	if a.leaseLost == nil {
		a.leaseLost = err
	}
}

// leaseLostErr returns the error recorded by setLeaseLost, or nil.
func (a *app) leaseLostErr() error {
	a.lostMu.Lock()
	defer a.lostMu.Unlock()
	return a.leaseLost
}

// planRun is what plan, apply and destroy share: the environment, its
// state store and cloud, and the lock.
type planRun struct {
	env     *spec.Environment
	blob    state.Blob
	store   *state.Store
	clients provision.Clients
	ctx     context.Context
	release func()
	// read is the state makePlan read (a copy), for applyPlan: under the
	// lock still held, apply need not read it again.
	read *provision.ReadState
	// early is the read of the database clusters started with the lock,
	// for the first makePlan.
	early *provision.DBObservation
}

// startRun loads env, opens its state, runs the checks of the command's
// input (before any lock is taken), then takes its lock and connects to its
// cloud at the same time. A lock error is reported first, as the connection
// is cancelled; a connection error releases the lock taken.
func (a *app) startRun(ctx context.Context, name, op string, lockTimeout time.Duration, storeOpts []state.StoreOption, checks ...func(context.Context, *spec.Environment, state.Blob) error) (*planRun, error) {
	env, blob, err := a.envAndState(ctx, name)
	if err != nil {
		return nil, err
	}
	for _, check := range checks {
		if err := check(ctx, env, blob); err != nil {
			return nil, err
		}
	}
	cctx, cancelConnect := context.WithCancel(ctx)
	defer cancelConnect()
	db, dbErr := a.dbClient(ctx, env)
	var clients provision.Clients
	var connectErr error
	connected := make(chan struct{})
	go func() {
		defer close(connected)
		clients, connectErr = a.connectClients(cctx, env, db, dbErr)
	}()
	lctx, release, err := a.lockEnv(ctx, blob, name, op, lockTimeout)
	if err != nil {
		cancelConnect()
		<-connected
		return nil, err
	}
	// A command that plans first reads the database clusters as soon as
	// it holds the lock, while OpenStack is still being connected to.
	var early *provision.DBObservation
	if dbErr == nil && plansFirst(op) {
		ectx, cancelEarly := context.WithCancel(lctx)
		early = provision.StartObserveDB(ectx, db, env.Name)
		unlock := release
		release = func() { cancelEarly(); unlock() }
	}
	<-connected
	if connectErr != nil {
		release()
		return nil, connectErr
	}
	store := state.NewStore(blob, storeOpts...)
	if op != "plan" {
		// An older state accepted with --allow-rollback is written back
		// above the newest serial, so that the next run accepts it.
		rebased, err := store.Rebase(lctx, name)
		if err != nil {
			release()
			return nil, fmt.Errorf("accepting the older state of %s: %w", name, err)
		}
		if rebased {
			fmt.Fprintf(a.err, "Accepted the older state of %s (--allow-rollback): it is now the newest.\n", name)
		}
	}
	return &planRun{env: env, blob: blob, store: store, clients: clients, ctx: lctx, release: release, early: early}, nil
}

// plansFirst reports whether a run of op starts with a plan.
func plansFirst(op string) bool {
	switch op {
	case "plan", "apply", "destroy", "deploy":
		return true
	}
	return false
}

// makePlan reads the state and observes the cloud at the same time, and
// plans. A state error is reported first, as the observation is cancelled.
func (r *planRun) makePlan(opts provision.PlanOptions) (*provision.Plan, error) {
	octx, cancelObserve := context.WithCancel(r.ctx)
	defer cancelObserve()
	var obs *provision.Observed
	var obsErr error
	observed := make(chan struct{})
	early := r.early
	r.early = nil // what it read is current only for the first plan
	go func() {
		defer close(observed)
		obs, obsErr = provision.ObserveWith(octx, r.clients, r.env.Name, early)
	}()
	st, etag, err := r.store.Read(r.ctx, r.env.Name)
	r.read = nil
	switch {
	case errors.Is(err, state.ErrNotFound):
		st = nil
		r.read = &provision.ReadState{}
	case err == nil:
		if data, err := st.Encode(); err == nil {
			if cp, err := state.Decode(data); err == nil {
				r.read = &provision.ReadState{State: cp, ETag: etag}
			}
		}
	case err != nil:
		cancelObserve()
		<-observed
		return nil, rollbackHint(fmt.Errorf("reading the state of %s: %w", r.env.Name, err))
	}
	var keys map[string]string
	if !opts.Destroy {
		if keys, err = provision.PublicKeys(r.env); err != nil {
			cancelObserve()
			<-observed
			return nil, err
		}
	}
	<-observed
	if obsErr != nil {
		return nil, fmt.Errorf("reading what is live in %s: %w", r.env.Name, obsErr)
	}
	// A cluster imported under a name of its own (acco import) is not
	// among those Observe reads the users and databases of.
	if err := provision.ObserveClusters(r.ctx, r.clients, obs, stateIDs(st, spec.KindDatabase)...); err != nil {
		return nil, fmt.Errorf("reading what is live in %s: %w", r.env.Name, err)
	}
	return provision.PlanChanges(provision.Inputs{Env: r.env, PublicKeys: keys, State: st, Observed: obs}, opts)
}

// stateIDs returns the IDs of st's resources of a kind (none for no state).
func stateIDs(st *state.State, kind string) []string {
	if st == nil {
		return nil
	}
	var ids []string
	for _, r := range st.Resources {
		if r.Kind == kind && r.ID != "" {
			ids = append(ids, r.ID)
		}
	}
	return ids
}

// rollbackFlags are the flags of plan, apply and destroy that accept what
// acco refuses by default: an older state, and resetting the passwords of
// database users it does not know.
type rollbackFlags struct {
	allowRollback     bool
	resetUnknownUsers bool
}

func (f *rollbackFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.BoolVar(&f.allowRollback, "allow-rollback", false, "accept a state older than the environment's history (a deliberate rollback); it is written at a serial above the newest")
	fl.BoolVar(&f.resetUnknownUsers, "reset-unknown-users", false, "adopt the database users found in the cluster and not in state by resetting their passwords (services using them break until acco configure)")
}

// storeOptions are the state store's options for these flags.
func (f *rollbackFlags) storeOptions() []state.StoreOption {
	if f.allowRollback {
		return []state.StoreOption{state.AllowRollback()}
	}
	return nil
}

// rollbackHint adds to a refused rollback (whose message names the command
// that restores the newest state) how to accept the older one instead.
func rollbackHint(err error) error {
	var rb *state.RollbackError
	if !errors.As(err, &rb) {
		return err
	}
	restore := "restore the newest version of " + state.StateKey(rb.Env) + " from the bucket's history"
	if rb.Restore != "" {
		restore = "restore the newest (the command above)"
	}
	return withHint(err, "nothing was changed: %s, then run the command again; or, if the older state is deliberate, rerun with --allow-rollback", restore)
}

// savedPlan is the file `acco plan --out` writes.
type savedPlan struct {
	FormatVersion string          `json:"format_version"`
	AccoVersion   string          `json:"acco_version"`
	Plan          *provision.Plan `json:"plan"`
}

func writePlanFile(path string, p *provision.Plan) error {
	version, _ := buildVersion()
	data, err := json.MarshalIndent(savedPlan{FormatVersion: provision.FormatVersion, AccoVersion: version, Plan: p}, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the plan: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("saving the plan: %w", err)
	}
	return nil
}

func readPlanFile(path, env string) (*provision.Plan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the saved plan: %w", err)
	}
	var sp savedPlan
	if err := json.Unmarshal(data, &sp); err != nil || sp.Plan == nil {
		return nil, fmt.Errorf("%s is not a plan saved by acco plan --out", path)
	}
	if sp.FormatVersion != provision.FormatVersion {
		return nil, fmt.Errorf("%s has plan format %s; this acco reads %s", path, sp.FormatVersion, provision.FormatVersion)
	}
	if sp.Plan.Env != env {
		return nil, fmt.Errorf("%s is a plan for environment %s, not %s", path, sp.Plan.Env, env)
	}
	return sp.Plan, nil
}
