package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"

	"github.com/accoreboot/acco/configure"
	"github.com/accoreboot/acco/flows"
	"github.com/accoreboot/acco/internal/pgdump"
	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/provision"
	"github.com/accoreboot/acco/state"
)

func (a *app) dbCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "db",
		Short: "Stop and start an on-demand database (dump, delete; create, restore)",
		Long: `OVH managed databases cannot be stopped: a cluster bills until it is deleted.
For a database whose YAML says on_demand: true (preprod), acco db stop dumps
every logical database into the state bucket, sealed with ACCO_STATE_KEY,
checks the dumps read back, and only then deletes the cluster; acco db
start creates it again as the YAML says, restores the dumps and configures
the host for the new endpoint. A protected database (prod) is never
stopped.`,
	}
	cmd.AddCommand(a.dbStopCommand(), a.dbStartCommand(), a.dbStatusCommand())
	return cmd
}

type dbFlags struct {
	autoApprove bool
	identity    string
	lockTimeout time.Duration
	connectWait time.Duration
}

func (f *dbFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.BoolVar(&f.autoApprove, "auto-approve", false, "do not ask for confirmation")
	fl.StringVar(&f.identity, "identity", "", "the deploy keypair's private key `FILE` (env ACCO_SSH_KEY), to reach the services host")
	fl.DurationVar(&f.lockTimeout, "lock-timeout", 0, "wait this long for the state lock (default: fail at once)")
	fl.DurationVar(&f.connectWait, "connect-timeout", 2*time.Minute, "keep retrying SSH this long")
}

// dbPhaseLine is one timed phase of db stop or start, with --json.
type dbPhaseLine struct {
	Type     string  `json:"type"`
	Phase    string  `json:"phase"`
	Duration float64 `json:"duration_s"`
}

// dbStopSummary is the last JSON object of acco db stop.
type dbStopSummary struct {
	Type      string `json:"type"`
	Operation string `json:"operation"`
	Env       string `json:"env"`
	*flows.StopReport
}

// dbStartSummary is the last JSON object of acco db start.
type dbStartSummary struct {
	Type      string `json:"type"`
	Operation string `json:"operation"`
	Env       string `json:"env"`
	*flows.StartReport
	Configured bool `json:"configured"`
	Verified   bool `json:"verified"`
}

// dbArgs returns the environment and database of ENV [DATABASE].
func (a *app) dbArgs(args []string) (*spec.Environment, string, error) {
	env, err := a.loadEnv(args[0])
	if err != nil {
		return nil, "", err
	}
	if len(args) > 1 {
		return env, args[1], flows.CheckOnDemand(env, args[1])
	}
	c, err := flows.DefaultDatabase(env)
	if err != nil {
		return nil, "", err
	}
	return env, c, flows.CheckOnDemand(env, c)
}

// pgTools finds pg_dump and pg_restore: ACCO_PG_BIN, then where make
// ensure-deps installs them, then PATH.
func (a *app) pgTools(ctx context.Context) (pgdump.Tools, error) {
	var dirs []string
	if d := a.getenv("ACCO_PG_BIN"); d != "" {
		dirs = append(dirs, d)
	}
	cache, _ := os.UserCacheDir()
	dirs = append(dirs, pgdump.DefaultDirs(cache)...)
	return pgdump.FindTools(ctx, dirs, 0)
}

// optionalSigner is the deploy key when one can be found, else nil: db
// stop and start need it only when the host was configured, and say so.
func (a *app) optionalSigner(env *spec.Environment, identity string) (ssh.Signer, error) {
	s, err := a.deploySigner(env, identity)
	if err != nil && identity == "" && a.getenv("ACCO_SSH_KEY") == "" {
		return nil, nil
	}
	return s, err
}

// fileStore is the state bucket as a store of large files.
func fileStore(blob state.Blob) (flows.DumpStore, error) {
	fs, ok := blob.(flows.DumpStore)
	if !ok {
		return nil, fmt.Errorf("this state backend (%T) cannot hold database dumps", blob)
	}
	return fs, nil
}

// dbOptions are the flows' options for a db run.
func (a *app) dbOptions(ctx context.Context, env *spec.Environment, cluster string, blob state.Blob, f dbFlags) (flows.OnDemandOptions, error) {
	o := flows.OnDemandOptions{Cluster: cluster, ConnectWait: f.connectWait}
	var err error
	if o.Tools, err = a.pgTools(ctx); err != nil {
		return o, err
	}
	if o.Files, err = fileStore(blob); err != nil {
		return o, err
	}
	if o.Signer, err = a.optionalSigner(env, f.identity); err != nil {
		return o, err
	}
	h := a.human()
	o.Phase = func(name string, took time.Duration) {
		h.printf("  %-28s %s\n", name, took.Round(100*time.Millisecond))
		if a.json {
			a.jsonLine(dbPhaseLine{Type: "db_phase", Phase: name, Duration: took.Seconds()})
		}
	}
	o.Notes = func(n string) { h.printf("%s\n", n) }
	return o, nil
}

// dbWorkDir is where db stop and start keep the dumps while they work on
// them: one private directory per environment, emptied when a run starts
// (under the environment's lock: what is there was left by a killed run)
// and removed when it ends.
func dbWorkDir(env string) (string, func(), error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "acco", "db-work", env)
	if err := os.RemoveAll(dir); err != nil {
		return "", nil, fmt.Errorf("removing what a killed run left in %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return "", nil, err
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

// dbRun is what db stop and start share: the environment and its
// database, the state key, the flows' options and, once locked, the run
// and the session.
type dbRun struct {
	env     *spec.Environment
	cluster string
	sealer  *state.Sealer
	o       flows.OnDemandOptions
	r       *planRun
	s       *flows.Session
	cleanup func()
}

// prepareDB checks what a db stop or start needs, before any lock: the
// database may be stopped, the state key, pg_dump, the bucket, the key.
func (a *app) prepareDB(ctx context.Context, args []string, f dbFlags) (*dbRun, error) {
	name := args[0]
	env, cluster, err := a.dbArgs(args)
	if err != nil {
		return nil, err
	}
	sealer, err := a.sealer()
	if err != nil {
		return nil, err
	}
	if sealer == nil {
		return nil, withHint(errors.New("ACCO_STATE_KEY is not set: the dumps are sealed with it"), "export ACCO_STATE_KEY (the same key every operator of %s uses)", name)
	}
	_, blob, err := a.envAndState(ctx, name)
	if err != nil {
		return nil, err
	}
	o, err := a.dbOptions(ctx, env, cluster, blob, f)
	if err != nil {
		return nil, err
	}
	return &dbRun{env: env, cluster: cluster, sealer: sealer, o: o}, nil
}

// lock takes the environment's lock for op, empties the work directory
// and opens the session; release undoes it.
func (d *dbRun) lock(ctx context.Context, a *app, op string, lockTimeout time.Duration) error {
	r, err := a.startRun(ctx, d.env.Name, op, lockTimeout, nil)
	if err != nil {
		return err
	}
	dir, cleanup, err := dbWorkDir(d.env.Name)
	if err != nil {
		r.release()
		return err
	}
	d.r, d.o.WorkDir = r, dir
	d.cleanup = func() { cleanup(); r.release() }
	if d.s, err = flows.Open(r.ctx, d.env, r.store, d.sealer, r.clients, false); err != nil {
		d.release()
		return err
	}
	return nil
}

func (d *dbRun) release() {
	if d.cleanup != nil {
		d.cleanup()
	}
}

func (a *app) dbStopCommand() *cobra.Command {
	var f dbFlags
	cmd := &cobra.Command{
		Use:   "stop ENV [DATABASE]",
		Short: "Dump an on-demand database into the state bucket, then delete its cluster",
		Long: `Stop takes the environment's lock and, for a database marked on_demand: true:

  - stops the services on the host that use it (the backend, EMQX,
    PowerSync), so that nothing is written after the dump;
  - dumps every logical database (pg_dump, custom format) through the SSH
    tunnel, or directly when the host was never configured;
  - seals each dump with ACCO_STATE_KEY into the state bucket under
    ENV/dumps/DATABASE/, with a sealed manifest (sizes, checksums, server and
    extension versions); reads each back and checks it is the same bytes and
    a readable dump;
  - records the database as stopping in state, then deletes the cluster
    through the OVH API, waits until it is gone, and records it as stopped.

If a dump cannot be made or checked, the services are started again and
the cluster is left alone. Run again after a crash, stop finishes what was
started. acco db start brings the database back.

Exit codes: 0 stopped (or already stopped), 1 error, 3 the lock is held.`,
		Example: "  acco db stop preprod\n  acco db stop preprod main --auto-approve --json",
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runDBStop(cmd.Context(), args, f)
		},
	}
	f.register(cmd)
	return cmd
}

func (a *app) runDBStop(ctx context.Context, args []string, f dbFlags) error {
	name := args[0]
	d, err := a.prepareDB(ctx, args, f)
	if err != nil {
		return err
	}
	addr := spec.Address(spec.KindDatabase, d.cluster)
	if !f.autoApprove {
		if !isTerminal(a.in) {
			return withHint(errors.New("refusing to ask for confirmation: stdin is not a terminal; nothing was changed"), "pass --auto-approve to stop it without asking")
		}
		ok, err := a.confirm(a.human().w, fmt.Sprintf("Stop %s of %s: dump it into the state bucket, then DELETE its cluster? Only 'yes' is accepted: ", addr, name))
		if err != nil {
			return err
		}
		if !ok {
			return &codedError{code: exitError, err: errors.New("db stop cancelled")}
		}
	}
	if err := d.lock(ctx, a, "db stop", f.lockTimeout); err != nil {
		return err
	}
	defer d.release()
	s, o, r := d.s, d.o, d.r
	h := a.human()
	h.printf("Stopping %s of %s:\n", addr, name)
	start := time.Now()
	rep, err := s.StopDatabase(r.ctx, o)
	if err != nil {
		return err
	}
	if rep.AlreadyStopped {
		h.printf("%s is already stopped (since %s); its dumps are in %s.\n", addr, rep.Since.UTC().Format("2006-01-02 15:04 UTC"), rep.Manifest)
	} else {
		var size int64
		for _, d := range rep.Dumps {
			size += d.Size
		}
		h.printf("Stopped %s in %s: %d databases dumped (%s), sealed in the bucket (%s); the cluster is deleted. acco db start %s brings it back.\n",
			addr, time.Since(start).Round(100*time.Millisecond), len(rep.Dumps), byteSize(size), rep.Manifest, name)
	}
	if a.json {
		a.jsonLine(dbStopSummary{Type: "summary", Operation: "db stop", Env: name, StopReport: rep})
	}
	return nil
}

type dbStartFlags struct {
	dbFlags
	from        string
	empty       bool
	noConfigure bool
	noVerify    bool
	parallelism int
}

func (a *app) dbStartCommand() *cobra.Command {
	var f dbStartFlags
	cmd := &cobra.Command{
		Use:   "start ENV [DATABASE]",
		Short: "Create a stopped on-demand database again and restore its dumps",
		Long: `Start takes the environment's lock and brings back a database acco db stop
stopped:

  - records it as starting, then creates the cluster, its users and its
    databases exactly as the YAML says (the same plan as acco apply, limited
    to them; a half-made cluster from an interrupted start is adopted);
  - reads the dumps of the manifest the stop recorded (or --from MANIFEST)
    from the bucket, checks them against the manifest and restores each in
    one transaction (a database that already holds tables was restored by an
    interrupted start and is left as it is);
  - runs acco configure, so that every service gets the new endpoint, CA and
    passwords and is restarted and healthy, then the checks of acco verify.

Each phase's time is printed. --empty starts it with no data when there is
no dump.

Exit codes: 0 started (or already running), 1 error, 3 the lock is held.`,
		Example: "  acco db start preprod\n  acco db start preprod main --from preprod/dumps/main/20261206T041500Z/manifest.json.sealed",
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runDBStart(cmd.Context(), args, f)
		},
	}
	f.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.from, "from", "", "restore this `MANIFEST` (a key acco db status lists) instead of the latest")
	fl.BoolVar(&f.empty, "empty", false, "start with no data when there is no dump")
	fl.BoolVar(&f.noConfigure, "no-configure", false, "do not configure the host after the restore (acco configure ENV does it later)")
	fl.BoolVar(&f.noVerify, "no-verify", false, "do not run the checks of acco verify at the end")
	fl.IntVar(&f.parallelism, "parallelism", 10, "send at most this many cloud API requests at once")
	return cmd
}

func (a *app) runDBStart(ctx context.Context, args []string, f dbStartFlags) error {
	name := args[0]
	if f.parallelism < 1 {
		return fmt.Errorf("--parallelism %d: give at least 1", f.parallelism)
	}
	d, err := a.prepareDB(ctx, args, f.dbFlags)
	if err != nil {
		return err
	}
	if err := d.lock(ctx, a, "db start", f.lockTimeout); err != nil {
		return err
	}
	defer d.release()
	env, cluster, sealer, s, o, r := d.env, d.cluster, d.sealer, d.s, d.o, d.r
	h := a.human()
	addr := spec.Address(spec.KindDatabase, cluster)
	m, err := s.BeginStart(r.ctx, o, f.from, f.empty)
	if errors.Is(err, flows.ErrNotStopped) {
		h.printf("%s of %s is running: nothing to start.\n", addr, name)
		if a.json {
			a.jsonLine(dbStartSummary{Type: "summary", Operation: "db start", Env: name, StartReport: &flows.StartReport{Cluster: cluster}})
		}
		return nil
	}
	if err != nil {
		return err
	}
	total := time.Now()
	h.printf("Starting %s of %s:\n", addr, name)

	// The cluster, its users and databases, as apply makes them.
	start := time.Now()
	p, err := r.makePlan(provision.PlanOptions{Targets: clusterAddresses(env, cluster)})
	if err != nil {
		return err
	}
	if p.HasChanges() {
		if err := a.applyPlan(r, p, "db start", f.parallelism); err != nil {
			return err
		}
	}
	o.Phase("create cluster", time.Since(start))

	s, err = flows.Open(r.ctx, env, r.store, sealer, r.clients, false)
	if err != nil {
		return err
	}
	rep, err := s.Restore(r.ctx, o, m)
	if err != nil {
		return err
	}
	out := dbStartSummary{Type: "summary", Operation: "db start", Env: name, StartReport: rep}

	configured := false
	if !f.noConfigure {
		if o.Signer == nil {
			h.printf("No deploy key given: the host is not configured; run acco configure %s.\n", name)
		} else if _, ok := s.State.Hosts[env.Services.Host]; !ok {
			h.printf("%s was never configured: acco configure %s sets it up.\n", env.Services.Host, name)
		} else {
			start := time.Now()
			cs, err := flows.Open(r.ctx, env, r.store, sealer, r.clients, false)
			if err != nil {
				return err
			}
			view := &configureView{a: a}
			results, runErr := cs.Configure(r.ctx, o.Signer, flows.ConfigureOptions{
				Services: configure.ServicesOptions{Offline: env.Services.Offline}, ConnectWait: f.connectWait,
				Notes: func(n string) { h.printf("%s\n", n) }, Events: view.event,
			})
			view.report(results, runErr, false)
			if runErr != nil {
				return a.configureError(env, runErr, results)
			}
			o.Phase("configure", time.Since(start))
			configured = true
		}
	}
	out.Configured = configured
	if configured && !f.noVerify {
		start := time.Now()
		vs, err := flows.Open(r.ctx, env, r.store, sealer, r.clients, true)
		if err != nil {
			return err
		}
		if err := a.verifyFlow(r.ctx, vs, o.Signer, flows.VerifyOptions{Timeout: 2 * time.Minute, ConnectWait: f.connectWait}); err != nil {
			return err
		}
		o.Phase("verify", time.Since(start))
		out.Verified = true
	}
	h.printf("Started %s in %s: %d databases restored from %s.\n", addr, time.Since(total).Round(100*time.Millisecond), len(rep.Restored), orNone(rep.Manifest))
	if a.json {
		a.jsonLine(out)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "nothing (--empty)"
	}
	return s
}

// clusterAddresses are the addresses of a cluster, its users and its
// databases in the YAML.
func clusterAddresses(env *spec.Environment, cluster string) []string {
	out := []string{spec.Address(spec.KindDatabase, cluster)}
	db := env.Databases[cluster]
	for name := range db.Users {
		out = append(out, spec.Address(spec.KindDatabaseUser, cluster, name))
	}
	for _, d := range db.LogicalDatabases {
		out = append(out, spec.Address(spec.KindDatabaseDB, cluster, d))
	}
	sort.Strings(out[1:])
	return out
}

// byteSize prints a size for people.
func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// dbStatus is acco db status --json.
type dbStatus struct {
	Env       string      `json:"env"`
	Databases []dbStatusL `json:"databases"`
}

type dbStatusL struct {
	Database string `json:"database"`
	OnDemand bool   `json:"on_demand"`
	// Status is running, stopping, stopped or starting.
	Status       string          `json:"status"`
	Since        *time.Time      `json:"since"`
	StoppedHours float64         `json:"stopped_hours"`
	Manifest     string          `json:"manifest,omitempty"`
	Dumps        []dbStatusDumps `json:"dumps"`
}

type dbStatusDumps struct {
	Manifest string    `json:"manifest"`
	Created  time.Time `json:"created"`
	Size     int64     `json:"size"`
	Count    int       `json:"databases"`
	Error    string    `json:"error,omitempty"`
}

func (a *app) dbStatusCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "status ENV",
		Short: "Show whether each database is running or stopped, and the dumps kept",
		Long: `Status reads the state and the bucket (no lock, nothing changed): each
database of ENV, running or stopped (on demand) and since when, the hours
it has been stopped, and the dumps kept in the bucket (time, size). The
sizes need ACCO_STATE_KEY (the manifests are sealed); without it only their
names are listed.`,
		Example: "  acco db status preprod\n  acco db status preprod --json | jq '.databases[] | {database, status, stopped_hours}'",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runDBStatus(cmd.Context(), args[0])
		},
	}
}

func (a *app) runDBStatus(ctx context.Context, name string) error {
	env, blob, err := a.envAndState(ctx, name)
	if err != nil {
		return err
	}
	st, _, err := state.NewStore(blob).Read(ctx, name)
	if errors.Is(err, state.ErrNotFound) {
		return noStateYet(name)
	}
	if err != nil {
		return rollbackHint(fmt.Errorf("reading the state of %s: %w", name, err))
	}
	sealer, err := a.sealer()
	if err != nil {
		return err
	}
	if sealer != nil {
		sealer = sealer.For(st.Env, st.Lineage)
	}
	fs, err := fileStore(blob)
	if err != nil {
		return err
	}
	out := dbStatus{Env: name, Databases: []dbStatusL{}}
	names := make([]string, 0, len(env.Databases))
	for n := range env.Databases {
		names = append(names, n)
	}
	sort.Strings(names)
	now := time.Now()
	for _, n := range names {
		l := dbStatusL{Database: n, OnDemand: env.Databases[n].OnDemand, Status: "running", Dumps: []dbStatusDumps{}}
		if rec, ok := st.OnDemand[n]; ok {
			since := rec.Since
			l.Status, l.Since, l.Manifest = rec.Status, &since, rec.Manifest
			l.StoppedHours = float64(int(now.Sub(since).Hours()*10)) / 10
		} else if _, ok := st.Resource(spec.Address(spec.KindDatabase, n)); !ok {
			l.Status = "absent"
		}
		keys, err := state.ListArchives(ctx, fs, name, n)
		if err != nil {
			return fmt.Errorf("listing the dumps of %s: %w", n, err)
		}
		for _, k := range keys {
			d := dbStatusDumps{Manifest: k}
			if sealer != nil {
				m, err := state.ReadManifest(ctx, fs, sealer, k)
				if err != nil {
					d.Error = err.Error()
				} else {
					d.Created, d.Count = m.Created, len(m.Dumps)
					for _, x := range m.Dumps {
						d.Size += x.Size
					}
				}
			}
			l.Dumps = append(l.Dumps, d)
		}
		out.Databases = append(out.Databases, l)
	}
	if a.json {
		return a.printJSON(out)
	}
	for _, l := range out.Databases {
		line := fmt.Sprintf("%s: %s", spec.Address(spec.KindDatabase, l.Database), l.Status)
		if l.Since != nil {
			line += fmt.Sprintf(" since %s (%.1f hours)", l.Since.UTC().Format("2006-01-02 15:04 UTC"), l.StoppedHours)
		}
		if !l.OnDemand {
			line += " (not on_demand)"
		}
		fmt.Fprintln(a.out, line)
		for _, d := range l.Dumps {
			desc := filepath.Base(filepath.Dir(d.Manifest))
			switch {
			case d.Error != "":
				desc += "  unreadable: " + d.Error
			case !d.Created.IsZero():
				desc += fmt.Sprintf("  %s, %d databases, %s", d.Created.UTC().Format("2006-01-02 15:04 UTC"), d.Count, byteSize(d.Size))
			}
			fmt.Fprintf(a.out, "  dump %s  (%s)\n", desc, d.Manifest)
		}
	}
	if sealer == nil && slices.ContainsFunc(out.Databases, func(l dbStatusL) bool { return len(l.Dumps) > 0 }) {
		fmt.Fprintln(a.err, "ACCO_STATE_KEY is not set: the dumps' sizes are not shown.")
	}
	return nil
}
