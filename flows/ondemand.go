package flows

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/accoreboot/acco/configure"
	"github.com/accoreboot/acco/internal/pgdump"
	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/provision"
	"github.com/accoreboot/acco/provision/ovhdb"
	"github.com/accoreboot/acco/state"
	"github.com/accoreboot/acco/templates"
)

// DumpStore is the state bucket as acco db uses it: small objects (the
// manifests) and large files (the dumps).
type DumpStore interface {
	state.Blob
	state.FileStore
}

// OnDemandOptions are what acco db stop and start need beyond the session.
type OnDemandOptions struct {
	// Cluster is the database's name in the YAML (e.g. main).
	Cluster string
	// Tools are pg_dump and pg_restore, of the server's major or newer.
	Tools pgdump.Tools
	// Files is the state bucket, where the sealed dumps go.
	Files DumpStore
	// Signer logs in to the services host, to stop its services and to
	// reach the database through it. Without one, or when the host was
	// never configured (no host key pinned in state), acco reaches the
	// database directly and there are no services to stop.
	Signer ssh.Signer
	// ConnectWait is how long a refused SSH connection is retried.
	ConnectWait time.Duration
	// WorkDir is a private directory for the dumps while they are made,
	// sealed and checked; they are removed before returning.
	WorkDir string
	// DeleteTimeout bounds the wait for the cluster to be gone.
	DeleteTimeout time.Duration
	// Poll is the interval of that wait (default 5s).
	Poll time.Duration
	// Phase is told each phase's name and how long it took.
	Phase func(name string, took time.Duration)
	// Notes is told what the operator should know.
	Notes func(string)
}

func (o *OnDemandOptions) phase(name string, start time.Time) {
	if o.Phase != nil {
		o.Phase(name, time.Since(start))
	}
}

func (o *OnDemandOptions) note(format string, args ...any) {
	if o.Notes != nil {
		o.Notes(fmt.Sprintf(format, args...))
	}
}

// StopReport is what acco db stop did.
type StopReport struct {
	Cluster string `json:"database"`
	// AlreadyStopped: nothing was done, the database was stopped before.
	AlreadyStopped bool `json:"already_stopped"`
	// Resumed: an interrupted stop was finished (its dumps were already
	// verified in the bucket).
	Resumed  bool                  `json:"resumed"`
	Since    time.Time             `json:"since"`
	Manifest string                `json:"manifest"`
	Dumps    []state.ArchivedDump  `json:"dumps"`
	Services []string              `json:"services_stopped"`
	Record   state.DatabaseArchive `json:"-"`
}

// CheckOnDemand refuses a database acco must not stop or start: unknown,
// protected, or not on_demand.
func CheckOnDemand(env *spec.Environment, cluster string) error {
	db, ok := env.Databases[cluster]
	if !ok {
		names := make([]string, 0, len(env.Databases))
		for n := range env.Databases {
			names = append(names, n)
		}
		sort.Strings(names)
		return fmt.Errorf("%s has no database %q (its databases: %s)", env.Name, cluster, strings.Join(names, ", "))
	}
	addr := spec.Address(spec.KindDatabase, cluster)
	if db.Protect {
		return withHint(fmt.Errorf("%s of %s is protect: true: acco never deletes a protected cluster, and stopping one means deleting it", addr, env.Name),
			"a protected database runs around the clock; to stop it on demand set databases.%s.protect: false and on_demand: true in its YAML (not for prod)", cluster)
	}
	if !db.OnDemand {
		return withHint(fmt.Errorf("%s of %s is not on_demand: stopping it deletes the cluster after a dump, which its YAML does not allow", addr, env.Name),
			"set databases.%s.on_demand: true in the YAML of %s if it may be stopped between uses", cluster, env.Name)
	}
	return nil
}

// DefaultDatabase returns the environment's only database, or an error
// asking which one when there are several.
func DefaultDatabase(env *spec.Environment) (string, error) {
	names := make([]string, 0, len(env.Databases))
	for n := range env.Databases {
		names = append(names, n)
	}
	sort.Strings(names)
	switch len(names) {
	case 0:
		return "", fmt.Errorf("%s has no database", env.Name)
	case 1:
		return names[0], nil
	}
	return "", fmt.Errorf("%s has several databases (%s): name the one to use", env.Name, strings.Join(names, ", "))
}

// dbUnits are the host's units that use the database, in the order they
// are stopped: the writers first.
func dbUnits(env *spec.Environment) []string {
	var units []string
	s := env.Services
	if s.Backend != nil {
		units = append(units, templates.UnitBackend)
	}
	if s.Broker == spec.BrokerEMQX {
		units = append(units, templates.UnitEMQX)
	}
	if s.PowerSync != nil {
		units = append(units, templates.UnitPowerSync)
	}
	return units
}

// host connects to the services host when it can be reached: a signer is
// given and the host was configured (its keys are pinned in state). It
// returns nil, nil otherwise.
func (s *Session) host(ctx context.Context, o *OnDemandOptions) (configure.Runner, error) {
	inst, ipv4, err := s.Instance()
	if err != nil {
		o.note("Note: the services host is not in state: no service to stop; the database is reached directly.")
		return nil, nil //nolint:nilerr // no instance: no services to stop, reach the database directly
	}
	h := configure.ServicesHost(s.Env, ipv4)
	if _, ok := s.State.Hosts[h.Name]; !ok {
		o.note("Note: %s was never configured (no host key in state): no service to stop; the database is reached directly.", h.Name)
		return nil, nil
	}
	if o.Signer == nil {
		return nil, withHint(fmt.Errorf("%s runs services that use the database, and no deploy key was given to reach it", h.Name),
			"give the deploy keypair's private key with --identity FILE or ACCO_SSH_KEY")
	}
	conn := s.Connector(o.Signer, inst.ID, o.ConnectWait, nil)
	r, err := conn.Connect(ctx, h)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", h.Name, err)
	}
	return r, nil
}

// systemctl runs systemctl verb on those of units that the host has (a
// service the YAML names may not run there, e.g. PowerSync without
// Docker) and returns them. The names are acco's, never input.
func systemctl(ctx context.Context, r configure.Runner, verb string, units []string) ([]string, error) {
	if len(units) == 0 {
		return nil, nil
	}
	script := "for u in " + strings.Join(units, " ") + "; do\n" +
		"  if [ \"$(systemctl show -p LoadState --value -- \"$u\")\" = loaded ]; then\n" +
		"    systemctl " + verb + " -- \"$u\" || exit 1\n" +
		"    echo \"$u\"\n" +
		"  fi\n" +
		"done\n"
	out, err := r.Run(ctx, script, nil)
	done := strings.Fields(string(out))
	if err != nil {
		return done, fmt.Errorf("systemctl %s %s: %w", verb, strings.Join(units, " "), err)
	}
	return done, nil
}

// target is how pg_dump and pg_restore reach a database of the cluster.
func target(a configure.DBAdmin, db string, dial configure.DialFunc) pgdump.Target {
	t := pgdump.Target{Host: a.Host, Port: a.Port, User: a.User, Password: a.Password, CACert: a.CACert, Database: db}
	if dial != nil {
		t.Dial = dial
	}
	return t
}

// StopDatabase is acco db stop: with the writers on the host stopped, it
// dumps every logical database of the cluster, seals the dumps with the
// state key into the bucket with a manifest, reads each back and checks
// it, records the database as stopping (from then on the dumps are what
// matters), deletes the cluster and waits until it is gone, and records it
// as stopped. Run again after a crash, it finishes what was started: the
// cluster is never deleted before its dumps are verified in the bucket.
func (s *Session) StopDatabase(ctx context.Context, o OnDemandOptions) (*StopReport, error) {
	env, c := s.Env, o.Cluster
	if err := CheckOnDemand(env, c); err != nil {
		return nil, err
	}
	rep := &StopReport{Cluster: c}
	rec, has := s.State.OnDemand[c]
	switch {
	case has && rec.Status == state.ArchiveStopped:
		rep.AlreadyStopped, rep.Since, rep.Manifest, rep.Dumps, rep.Record = true, rec.Since, rec.Manifest, rec.Dumps, rec
		return rep, nil
	case has && rec.Status == state.ArchiveStarting:
		return nil, withHint(fmt.Errorf("%s of %s is being started (an acco db start was interrupted): stopping it now could lose what it restored", spec.Address(spec.KindDatabase, c), env.Name),
			"finish the start first: acco db start %s %s", env.Name, c)
	case has && rec.Status == state.ArchiveStopping:
		rep.Resumed = true
		o.note("An earlier acco db stop verified its dumps (%s) and was interrupted: finishing it.", rec.Manifest)
	default:
		var err error
		if rec, err = s.dumpCluster(ctx, &o, rep); err != nil {
			return rep, err
		}
	}
	rep.Since, rep.Manifest, rep.Dumps = rec.Since, rec.Manifest, rec.Dumps

	start := time.Now()
	if err := s.deleteCluster(ctx, &o); err != nil {
		return rep, err
	}
	rec.Status = state.ArchiveStopped
	s.setArchive(c, rec)
	if err := s.Save(ctx); err != nil {
		return rep, err
	}
	o.phase("delete cluster", start)
	rep.Record = rec
	return rep, nil
}

func (s *Session) setArchive(cluster string, rec state.DatabaseArchive) {
	if s.State.OnDemand == nil {
		s.State.OnDemand = map[string]state.DatabaseArchive{}
	}
	s.State.OnDemand[cluster] = rec
}

// dumpCluster stops the writers, dumps, seals, uploads and checks every
// logical database, writes the manifest and records the database as
// stopping. On failure the services are started again.
func (s *Session) dumpCluster(ctx context.Context, o *OnDemandOptions, rep *StopReport) (state.DatabaseArchive, error) {
	env, c := s.Env, o.Cluster
	addr := spec.Address(spec.KindDatabase, c)
	res, ok := s.State.Resource(addr)
	if !ok || res.Status == state.StatusTainted {
		return state.DatabaseArchive{}, withHint(fmt.Errorf("%s is not in the state of %s (or its creation did not finish): there is nothing to stop", addr, env.Name),
			"acco plan %s shows what exists", env.Name)
	}
	admin, err := s.AdminLogin(ctx, c)
	if err != nil {
		return state.DatabaseArchive{}, err
	}
	runner, err := s.host(ctx, o)
	if err != nil {
		return state.DatabaseArchive{}, err
	}
	var dial configure.DialFunc
	stopped := []string{}
	if runner != nil {
		defer runner.Close()
		dial = runner.DialContext
		start := time.Now()
		stopped, err = systemctl(ctx, runner, "stop", dbUnits(env))
		rep.Services = stopped
		if err != nil {
			if len(stopped) > 0 {
				_, _ = systemctl(context.WithoutCancel(ctx), runner, "start", stopped)
			}
			return state.DatabaseArchive{}, err
		}
		o.phase("stop services", start)
	}
	rec, err := s.dumpAll(ctx, o, admin, dial)
	if err != nil {
		if runner != nil && len(stopped) > 0 {
			if _, serr := systemctl(context.WithoutCancel(ctx), runner, "start", stopped); serr != nil {
				err = fmt.Errorf("%w (and starting the services again failed: %v)", err, serr)
			} else {
				err = fmt.Errorf("%w (the services were started again; the database was not touched)", err)
			}
		}
		return state.DatabaseArchive{}, err
	}
	s.setArchive(c, rec)
	if err := s.Save(ctx); err != nil {
		return state.DatabaseArchive{}, fmt.Errorf("recording the verified dumps (the cluster was not touched): %w", err)
	}
	return rec, nil
}

// dumpAll dumps every logical database and returns the record.
func (s *Session) dumpAll(ctx context.Context, o *OnDemandOptions, admin configure.DBAdmin, dial configure.DialFunc) (state.DatabaseArchive, error) {
	env, c := s.Env, o.Cluster
	start := time.Now()
	facts, err := pgdump.Facts(ctx, target(admin, adminDatabase, dial))
	if err != nil {
		return state.DatabaseArchive{}, fmt.Errorf("reading the databases of %s: %w", spec.Address(spec.KindDatabase, c), err)
	}
	if facts.Major > 0 {
		if major := o.Tools.Major(); major > 0 && major < facts.Major {
			return state.DatabaseArchive{}, fmt.Errorf("pg_dump %s is older than the server (PostgreSQL %s): it cannot dump it", o.Tools.Version, facts.Version)
		}
	}
	now := time.Now().UTC()
	stamp := state.NewStamp(now)
	m := state.Manifest{
		FormatVersion: 1, Env: env.Name, Cluster: c, Stamp: stamp, Created: now,
		ServerVersion: facts.Version, Extensions: facts.Extensions, Tool: o.Tools.String(),
	}
	dir, err := os.MkdirTemp(o.WorkDir, "dump-")
	if err != nil {
		return state.DatabaseArchive{}, err
	}
	defer os.RemoveAll(dir)
	// The admin reads the tables the services' users own.
	_, giveBack, err := pgdump.BorrowRoles(ctx, target(admin, adminDatabase, dial))
	if err != nil {
		return state.DatabaseArchive{}, fmt.Errorf("letting %s read the users' tables: %w", admin.User, err)
	}
	defer giveBackRoles(ctx, o, giveBack)
	var dumps []state.ArchivedDump
	for _, db := range facts.Databases {
		d, md, err := s.dumpOne(ctx, o, admin, dial, dir, stamp, db)
		if errors.Is(err, pgdump.ErrEmptyDump) {
			o.note("%s/%s holds nothing: not dumped (acco apply makes it again if the YAML declares it).", spec.Address(spec.KindDatabase, c), db)
			continue
		}
		if err != nil {
			return state.DatabaseArchive{}, err
		}
		dumps = append(dumps, d)
		m.Dumps = append(m.Dumps, md)
	}
	o.phase(fmt.Sprintf("dump %d databases", len(dumps)), start)
	key := state.ManifestKey(env.Name, c, stamp)
	if _, err := state.WriteManifest(ctx, o.Files, s.Sealer, key, m); err != nil {
		return state.DatabaseArchive{}, fmt.Errorf("writing the manifest of the dumps: %w", err)
	}
	return state.DatabaseArchive{Status: state.ArchiveStopping, Since: now, Manifest: key, Dumps: dumps}, nil
}

// dumpOne dumps one logical database, checks the dump is readable, seals
// it, uploads it, reads the stored object back and checks it is the same
// and opens to the same dump.
func (s *Session) dumpOne(ctx context.Context, o *OnDemandOptions, admin configure.DBAdmin, dial configure.DialFunc, dir, stamp, db string) (state.ArchivedDump, state.ManifestDump, error) {
	env, c := s.Env, o.Cluster
	where := fmt.Sprintf("%s/%s", spec.Address(spec.KindDatabase, c), db)
	plain := filepath.Join(dir, db+".dump")
	if err := pgdump.Dump(ctx, o.Tools, target(admin, db, dial), plain); err != nil {
		return state.ArchivedDump{}, state.ManifestDump{}, fmt.Errorf("dumping %s: %w", where, err)
	}
	if _, err := pgdump.List(ctx, o.Tools, plain); errors.Is(err, pgdump.ErrEmptyDump) {
		return state.ArchivedDump{}, state.ManifestDump{}, err
	} else if err != nil {
		return state.ArchivedDump{}, state.ManifestDump{}, fmt.Errorf("the dump of %s does not read back: %w", where, err)
	}
	plainSum, size, err := state.FileDigest(ctx, plain)
	if err != nil {
		return state.ArchivedDump{}, state.ManifestDump{}, err
	}
	key := state.DumpKey(env.Name, c, stamp, db)
	sealed := plain + ".sealed"
	if err := s.Sealer.SealFile(ctx, plain, sealed, key); err != nil {
		return state.ArchivedDump{}, state.ManifestDump{}, fmt.Errorf("sealing the dump of %s: %w", where, err)
	}
	sealedSum, _, err := state.FileDigest(ctx, sealed)
	if err != nil {
		return state.ArchivedDump{}, state.ManifestDump{}, err
	}
	if _, err := o.Files.PutFile(ctx, key, sealed); err != nil {
		return state.ArchivedDump{}, state.ManifestDump{}, fmt.Errorf("uploading the dump of %s: %w", where, err)
	}
	// Read back what the bucket holds: same bytes, opens with the key,
	// and is the same dump.
	back := filepath.Join(dir, db+".back")
	if err := o.Files.GetFile(ctx, key, back); err != nil {
		return state.ArchivedDump{}, state.ManifestDump{}, fmt.Errorf("reading back the dump of %s: %w", where, err)
	}
	if sum, _, err := state.FileDigest(ctx, back); err != nil || sum != sealedSum {
		return state.ArchivedDump{}, state.ManifestDump{}, fmt.Errorf("the stored dump of %s (%s) differs from what was uploaded (sha256 %s, expected %s)", where, key, sum, sealedSum)
	}
	opened := filepath.Join(dir, db+".opened")
	if err := s.Sealer.OpenFile(ctx, back, opened, key); err != nil {
		return state.ArchivedDump{}, state.ManifestDump{}, fmt.Errorf("the stored dump of %s does not open: %w", where, err)
	}
	if sum, _, err := state.FileDigest(ctx, opened); err != nil || sum != plainSum {
		return state.ArchivedDump{}, state.ManifestDump{}, fmt.Errorf("the stored dump of %s opens to other bytes than were dumped", where)
	}
	if _, err := pgdump.List(ctx, o.Tools, opened); err != nil {
		return state.ArchivedDump{}, state.ManifestDump{}, fmt.Errorf("the stored dump of %s does not read back: %w", where, err)
	}
	for _, p := range []string{plain, sealed, back, opened} {
		os.Remove(p)
	}
	d := state.ArchivedDump{Database: db, Key: key, Size: size, SHA256: sealedSum}
	return d, state.ManifestDump{Database: db, Key: key, Size: size, SHA256: sealedSum, PlainSHA256: plainSum}, nil
}

// deleteCluster deletes the cluster through the OVH API, waits until it is
// gone, and forgets it (with its users, databases and admin login) in
// state.
func (s *Session) deleteCluster(ctx context.Context, o *OnDemandOptions) error {
	c := o.Cluster
	addr := spec.Address(spec.KindDatabase, c)
	res, ok := s.State.Resource(addr)
	if ok && res.ID != "" {
		cl, err := s.Clients.DB.GetCluster(ctx, res.ID)
		switch {
		case errors.Is(err, ovhdb.ErrNotFound):
		case err != nil:
			return err
		default:
			if cl.DeletionProtection != nil && *cl.DeletionProtection {
				return withHint(fmt.Errorf("cluster %s (%s) has deletion protection on in OVH", res.ID, addr),
					"turn it off in the OVH control panel, or let acco apply %s set it as the YAML says, then run acco db stop again", s.Env.Name)
			}
			if err := s.Clients.DB.DeleteCluster(ctx, res.ID); err != nil && !errors.Is(err, ovhdb.ErrNotFound) {
				return err
			}
			if err := s.waitGone(ctx, o, res.ID); err != nil {
				return err
			}
		}
	}
	for _, r := range slices.Clone(s.State.Resources) {
		if ofCluster(r.Address, c) {
			s.State.RemoveResource(r.Address)
		}
	}
	// Intents about it are moot, and its endpoint is gone with it: acco
	// output must not show it.
	s.State.Pending = slices.DeleteFunc(s.State.Pending, func(p state.Pending) bool { return ofCluster(p.Address, c) })
	s.State.Outputs = provision.Outputs(s.State)
	return nil
}

// ofCluster reports whether addr is cluster c or one of its users,
// databases or admin login.
func ofCluster(addr, c string) bool {
	return addr == spec.Address(spec.KindDatabase, c) || strings.HasPrefix(addr, spec.KindDatabaseUser+"."+c+".") ||
		strings.HasPrefix(addr, spec.KindDatabaseDB+"."+c+".") || addr == configure.KindDatabaseAdmin+"."+c
}

func (s *Session) waitGone(ctx context.Context, o *OnDemandOptions, id string) error {
	timeout := o.DeleteTimeout
	if timeout <= 0 {
		timeout = spec.DefaultDeleteTimeout
	}
	poll := o.Poll
	if poll <= 0 {
		poll = 5 * time.Second
	}
	deadline := time.Now().Add(timeout)
	for {
		cl, err := s.Clients.DB.GetCluster(ctx, id)
		if errors.Is(err, ovhdb.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return withHint(fmt.Errorf("database cluster %s still %s after %s", id, cl.Status, timeout),
				"its dumps are safe in the bucket; run acco db stop %s again to go on waiting", s.Env.Name)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for database cluster %s to be deleted: %w", id, context.Cause(ctx))
		case <-time.After(poll):
		}
	}
}

// adminDatabase is the database every OVH cluster has, where the admin
// logs in to look around.
const adminDatabase = "defaultdb"

// ErrNotStopped is returned by BeginStart for a database that is running.
var ErrNotStopped = errors.New("the database is not stopped")

// BeginStart is the first step of acco db start: it checks the database
// may be started, reads the manifest of the dumps to restore (the one the
// stop recorded, or from, a manifest key; none with empty), and records the
// database as starting, so that plan and apply create it again. It returns
// the manifest (nil with empty).
func (s *Session) BeginStart(ctx context.Context, o OnDemandOptions, from string, empty bool) (*state.Manifest, error) {
	env, c := s.Env, o.Cluster
	if err := CheckOnDemand(env, c); err != nil {
		return nil, err
	}
	addr := spec.Address(spec.KindDatabase, c)
	rec, has := s.State.OnDemand[c]
	if !has {
		return nil, ErrNotStopped
	}
	if rec.Status == state.ArchiveStopping {
		return nil, withHint(fmt.Errorf("%s of %s is being stopped (an acco db stop was interrupted after its dumps were verified)", addr, env.Name),
			"finish the stop first: acco db stop %s %s; then start it", env.Name, c)
	}
	key := rec.Manifest
	if from != "" {
		key = from
	}
	var m *state.Manifest
	switch {
	case key != "":
		got, err := state.ReadManifest(ctx, o.Files, s.Sealer, key)
		if err != nil {
			return nil, withHint(fmt.Errorf("reading the manifest %s: %w", key, err),
				"acco db status %s lists the dumps kept; name one with --from", env.Name)
		}
		if got.Env != env.Name || got.Cluster != c {
			return nil, fmt.Errorf("the manifest %s is of database %s of %s, not %s of %s", key, got.Cluster, got.Env, c, env.Name)
		}
		m = &got
	case !empty:
		return nil, withHint(fmt.Errorf("%s of %s has no dump to restore", addr, env.Name),
			"name one with --from MANIFEST (acco db status %s lists them), or start it empty with --empty", env.Name)
	}
	if empty && from == "" {
		m = nil
	}
	if rec.Status != state.ArchiveStarting {
		rec.Status = state.ArchiveStarting
		s.setArchive(c, rec)
		if err := s.Save(ctx); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// StartReport is what the restore of acco db start did.
type StartReport struct {
	Cluster  string `json:"database"`
	Manifest string `json:"manifest,omitempty"`
	// Restored are the logical databases restored from their dumps;
	// AlreadyThere those that held tables already (restored by an earlier,
	// interrupted start: a restore is one transaction).
	Restored     []string `json:"restored"`
	AlreadyThere []string `json:"already_there"`
	Created      []string `json:"created"`
}

// Restore is the second step of acco db start, after apply made the
// cluster again: each dump of m is read from the bucket, checked against
// the manifest, and restored in one transaction into its database (made
// through the OVH API when the YAML does not declare it) unless that
// database already holds tables. Then the database is recorded as
// running.
func (s *Session) Restore(ctx context.Context, o OnDemandOptions, m *state.Manifest) (*StartReport, error) {
	c := o.Cluster
	rep := &StartReport{Cluster: c, Restored: []string{}, AlreadyThere: []string{}, Created: []string{}}
	if m != nil {
		rep.Manifest = state.ManifestKey(m.Env, m.Cluster, m.Stamp)
		if err := s.restoreAll(ctx, &o, m, rep); err != nil {
			return rep, err
		}
	}
	delete(s.State.OnDemand, c)
	if err := s.Save(ctx); err != nil {
		return rep, err
	}
	return rep, nil
}

func (s *Session) restoreAll(ctx context.Context, o *OnDemandOptions, m *state.Manifest, rep *StartReport) error {
	c := o.Cluster
	addr := spec.Address(spec.KindDatabase, c)
	res, ok := s.State.Resource(addr)
	if !ok || res.ID == "" {
		return fmt.Errorf("%s is not in state after apply", addr)
	}
	admin, err := s.AdminLogin(ctx, c)
	if err != nil {
		return err
	}
	runner, err := s.host(ctx, o)
	if err != nil {
		return err
	}
	var dial configure.DialFunc
	if runner != nil {
		defer runner.Close()
		dial = runner.DialContext
	}
	existing, err := s.Clients.DB.ListDatabases(ctx, res.ID)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, d := range existing {
		have[d.Name] = true
	}
	dir, err := os.MkdirTemp(o.WorkDir, "restore-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	start := time.Now()
	// The admin gives the restored objects back to their owners.
	_, giveBack, err := pgdump.BorrowRoles(ctx, target(admin, adminDatabase, dial))
	if err != nil {
		return fmt.Errorf("letting %s give objects back to their owners: %w", admin.User, err)
	}
	defer giveBackRoles(ctx, o, giveBack)
	for _, d := range m.Dumps {
		where := fmt.Sprintf("%s/%s", addr, d.Database)
		if !have[d.Database] && d.Database != "postgres" {
			if _, err := s.Clients.DB.CreateDatabase(ctx, res.ID, d.Database); err != nil {
				return fmt.Errorf("creating %s to restore it: %w", where, err)
			}
			rep.Created = append(rep.Created, d.Database)
		}
		conn, err := configure.ConnectAdmin(ctx, dial, admin, d.Database)
		if err != nil {
			return fmt.Errorf("connecting to %s: %w", where, err)
		}
		tables, err := configure.UserTables(ctx, conn)
		if err == nil && tables == 0 {
			var dropped []string
			if dropped, err = configure.DropEmptySchemas(ctx, conn); len(dropped) > 0 {
				o.note("%s: dropped the empty schemas an interrupted restore left (%s).", where, strings.Join(dropped, ", "))
			}
		}
		conn.Close(context.WithoutCancel(ctx))
		if err != nil {
			return fmt.Errorf("reading %s: %w", where, err)
		}
		if tables > 0 {
			o.note("%s already holds %d tables (restored by an earlier start): not restored again.", where, tables)
			rep.AlreadyThere = append(rep.AlreadyThere, d.Database)
			continue
		}
		if err := s.restoreOne(ctx, o, admin, dial, dir, d); err != nil {
			return fmt.Errorf("restoring %s: %w", where, err)
		}
		rep.Restored = append(rep.Restored, d.Database)
	}
	o.phase(fmt.Sprintf("restore %d databases", len(rep.Restored)), start)
	return nil
}

func (s *Session) restoreOne(ctx context.Context, o *OnDemandOptions, admin configure.DBAdmin, dial configure.DialFunc, dir string, d state.ManifestDump) error {
	sealed := filepath.Join(dir, d.Database+".sealed")
	if err := o.Files.GetFile(ctx, d.Key, sealed); err != nil {
		return fmt.Errorf("reading %s from the bucket: %w", d.Key, err)
	}
	if sum, _, err := state.FileDigest(ctx, sealed); err != nil || sum != d.SHA256 {
		return fmt.Errorf("%s in the bucket is not the object the manifest recorded (sha256 %s, expected %s)", d.Key, sum, d.SHA256)
	}
	plain := filepath.Join(dir, d.Database+".dump")
	if err := s.Sealer.OpenFile(ctx, sealed, plain, d.Key); err != nil {
		return fmt.Errorf("opening %s: %w", d.Key, err)
	}
	os.Remove(sealed)
	if sum, _, err := state.FileDigest(ctx, plain); err != nil || (d.PlainSHA256 != "" && sum != d.PlainSHA256) {
		return fmt.Errorf("%s opens to other bytes than were dumped", d.Key)
	}
	return pgdump.Restore(ctx, o.Tools, target(admin, d.Database, dial), plain)
}

// giveBackRoles revokes what BorrowRoles granted, even when the run was
// cancelled; a failure is told, not fatal (the rights are the admin's own).
func giveBackRoles(ctx context.Context, o *OnDemandOptions, giveBack func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := giveBack(ctx); err != nil {
		o.note("Warning: giving back the roles the admin borrowed: %v", err)
	}
}
