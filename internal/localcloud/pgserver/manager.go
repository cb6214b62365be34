package pgserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options configures a Manager.
type Options struct {
	// BinDir holds initdb, pg_ctl and postgres; "" means the first
	// directory in FindBinDir's order that the servers' user can use.
	BinDir string
	// ListenAddress is the address the servers listen on; "" means
	// 127.0.0.1.
	ListenAddress string
	// Host is the host name or address CreateCluster returns, and that the
	// server certificates are made for (with the listen address, localhost
	// and 127.0.0.1); "" means ListenAddress.
	Host string
	// RunAs is the system user the servers run as when this process is
	// root; "" means "postgres". It is ignored when the process is not root.
	RunAs string
	// Logf, when set, receives the problems met while reattaching clusters.
	Logf func(format string, args ...any)
	// Now is the clock of the certificates; nil means time.Now.
	Now func() time.Time
}

// Manager runs one PostgreSQL server per cluster under <dir>/pg. It is safe
// for concurrent use.
type Manager struct {
	dir    string
	binDir string
	server ServerInfo // the PostgreSQL of binDir
	opts   Options
	cred   *syscall.Credential // nil when not root
	uid    int
	gid    int

	mu       sync.Mutex
	clusters map[string]*instance
}

// instance is one cluster's server.
type instance struct {
	mu      sync.Mutex // serialises the administration of the server
	id      string
	dataDir string
	sockDir string
	meta    clusterMeta
	err     error // why the server could not be started at Open, if it could not
}

// clusterMeta is what a data directory remembers of its cluster, in
// metaFile.
type clusterMeta struct {
	ID   string `json:"id"`
	Port int    `json:"port"`
	Host string `json:"host"`
}

// Files of a data directory written by this package.
const (
	metaFile  = "acco-cluster.json"
	confFile  = "acco.conf"
	caFile    = "acco-ca.crt"
	certFile  = "server.crt"
	keyFile   = "server.key"
	logFile   = "server.log"
	superuser = "postgres"
	adminRole = "avnadmin"
	defaultDB = "defaultdb"
)

// errBeingCreated is the state of a cluster CreateCluster has not finished.
var errBeingCreated = errors.New("being created")

// clusterIDPattern bounds cluster IDs to what is safe in a path.
var clusterIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// Open prepares dir for clusters and starts the clusters already in it.
// A cluster that cannot be started is reported through Options.Logf and
// its calls fail; Open fails only when dir itself is unusable.
func Open(ctx context.Context, dir string, opts Options) (*Manager, error) {
	if opts.ListenAddress == "" {
		opts.ListenAddress = "127.0.0.1"
	}
	if opts.Host == "" {
		opts.Host = opts.ListenAddress
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("pgserver: %w", err)
	}
	m := &Manager{dir: abs, opts: opts, clusters: map[string]*instance{}, uid: os.Getuid(), gid: os.Getgid()}
	if os.Geteuid() == 0 {
		if err := m.setRunAs(); err != nil {
			return nil, err
		}
	}
	if err := m.chooseBinaries(ctx); err != nil {
		return nil, err
	}
	if err := m.prepareDir(); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(m.pgDir())
	if err != nil {
		return nil, fmt.Errorf("pgserver: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		inst, err := m.reattach(ctx, e.Name())
		if inst == nil {
			continue // not a cluster of ours
		}
		if err != nil {
			inst.err = err
			m.logf("pgserver: cluster %s: %v", inst.id, err)
		}
		m.clusters[inst.id] = inst
	}
	return m, nil
}

// setRunAs looks up the user the servers run as under root.
func (m *Manager) setRunAs() error {
	name := m.opts.RunAs
	if name == "" {
		name = "postgres"
	}
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("pgserver: running as root, PostgreSQL must run as another user: %w", err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("pgserver: user %s has a non-numeric uid or gid", name)
	}
	m.uid, m.gid = uid, gid
	m.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	return nil
}

// chooseBinaries settles the PostgreSQL the servers run: Options.BinDir,
// else the first directory in FindBinDir's order whose postgres the
// servers' user can run. A preferred directory passed over is reported
// through Options.Logf.
func (m *Manager) chooseBinaries(ctx context.Context) error {
	if d := m.opts.BinDir; d != "" {
		if !hasBinaries(d) {
			return fmt.Errorf("pgserver: %s lacks one of %v", d, requiredBinaries)
		}
		info, err := m.probe(ctx, d, "Options.BinDir")
		if err != nil {
			return err
		}
		m.binDir, m.server = d, info
		return nil
	}
	var passed []error
	for _, d := range candidateBinDirs(PinnedBinDirs(), DebianBinGlob) {
		if !hasBinaries(d) {
			continue
		}
		info, err := m.probe(ctx, d, "")
		if err != nil {
			passed = append(passed, err)
			continue
		}
		for _, err := range passed {
			m.logf("%v; using %s instead", err, info)
		}
		m.binDir, m.server = d, info
		return nil
	}
	if len(passed) == 0 {
		return ErrNoBinaries
	}
	return errors.Join(passed...)
}

// probe checks that the servers' user can run the postgres of binDir and
// returns its version and source (fallback when neither npm nor Debian).
func (m *Manager) probe(ctx context.Context, binDir, fallback string) (ServerInfo, error) {
	if m.cred != nil {
		for d := binDir; ; d = filepath.Dir(d) {
			if !m.canTraverse(d) {
				return ServerInfo{}, fmt.Errorf("pgserver: the PostgreSQL user (uid %d) cannot enter %s, so cannot run the binaries in %s: "+
					"install them where it can (scripts/ensure-postgres.sh run as root uses %s) or give it o+x", m.uid, d, binDir, SystemInstallRoot)
			}
			if d == filepath.Dir(d) {
				break
			}
		}
	}
	out, err := m.output(ctx, binDir, "postgres", "--version")
	if err != nil {
		return ServerInfo{}, fmt.Errorf("pgserver: %w", err)
	}
	version, err := parseVersion(out)
	if err != nil {
		return ServerInfo{}, fmt.Errorf("pgserver: %s/postgres --version: %w", binDir, err)
	}
	return ServerInfo{Version: version, Source: binSource(binDir, fallback), BinDir: binDir}, nil
}

// Server says which PostgreSQL runs the clusters.
func (m *Manager) Server() ServerInfo { return m.server }

// pgDir is the directory of the data directories.
func (m *Manager) pgDir() string { return filepath.Join(m.dir, "pg") }

// prepareDir creates <dir>/pg and, under root, makes sure the server user
// can reach it.
func (m *Manager) prepareDir() error {
	if err := os.MkdirAll(m.pgDir(), 0o700); err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	if m.cred == nil {
		return nil
	}
	// dir and dir/pg are ours: let the server user traverse them.
	for _, d := range []string{m.dir, m.pgDir()} {
		st, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("pgserver: %w", err)
		}
		if st.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, st.Mode().Perm()|0o011); err != nil {
				return fmt.Errorf("pgserver: %w", err)
			}
		}
	}
	for d := filepath.Dir(m.dir); ; d = filepath.Dir(d) {
		if !m.canTraverse(d) {
			return fmt.Errorf("pgserver: the PostgreSQL user (uid %d) cannot enter %s, above %s: "+
				"choose a directory it can reach (e.g. under /var/lib or /tmp) or give it o+x", m.uid, d, m.dir)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// canTraverse reports whether the server user may enter directory d.
func (m *Manager) canTraverse(d string) bool {
	st, err := os.Stat(d)
	if err != nil {
		return false
	}
	perm := st.Mode().Perm()
	sys, ok := st.Sys().(*syscall.Stat_t)
	switch {
	case perm&0o001 != 0:
		return true
	case ok && int(sys.Uid) == m.uid:
		return perm&0o100 != 0
	case ok && int(sys.Gid) == m.gid:
		return perm&0o010 != 0
	}
	return false
}

// logf reports a problem.
func (m *Manager) logf(format string, args ...any) {
	if m.opts.Logf != nil {
		m.opts.Logf(format, args...)
	}
}

// dataDir is a cluster's data directory.
func (m *Manager) dataDir(id string) string { return filepath.Join(m.pgDir(), id) }

// socketDir is where a cluster's unix socket goes: its data directory, or a
// short directory under the temporary directory when that path is too long
// for a socket (108 bytes on Linux), or under /tmp when $TMPDIR is long too.
func (m *Manager) socketDir(id string) string {
	short := func(d string) bool { return len(d)+len("/.s.PGSQL.65535") < 100 }
	if d := m.dataDir(id); short(d) {
		return d
	}
	if d := filepath.Join(os.TempDir(), "acco-pg-"+id); short(d) {
		return d
	}
	return filepath.Join("/tmp", "acco-pg-"+id)
}

// reattach starts the cluster in data directory name, if it is one of ours.
func (m *Manager) reattach(ctx context.Context, name string) (*instance, error) {
	data, err := os.ReadFile(filepath.Join(m.dataDir(name), metaFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	inst := &instance{id: name, dataDir: m.dataDir(name), sockDir: m.socketDir(name)}
	if err != nil {
		return inst, err
	}
	if err := json.Unmarshal(data, &inst.meta); err != nil {
		return inst, fmt.Errorf("%s: %w", metaFile, err)
	}
	if err := m.checkMajor(inst); err != nil {
		return inst, err
	}
	if running, err := m.running(ctx, inst); err != nil || running {
		return inst, err
	}
	return inst, m.start(ctx, inst)
}

// checkMajor fails, saying what to do, when a cluster's data directory was
// made by another major version than the binaries' (say PostgreSQL 15
// before the local cloud moved to 17): a server cannot start on it.
func (m *Manager) checkMajor(inst *instance) error {
	data, err := os.ReadFile(filepath.Join(inst.dataDir, "PG_VERSION"))
	if err != nil {
		return fmt.Errorf("data directory %s: %w", inst.dataDir, err)
	}
	have := strings.TrimSpace(string(data))
	if have == m.server.Major() {
		return nil
	}
	return fmt.Errorf("data directory %s was initialised by PostgreSQL %s, which %s cannot start: "+
		"delete this database (acco destroy ENV, or DELETE on its OVH API path) and create it again to get a PostgreSQL %s one, "+
		"or remove the local cloud's directory to start afresh (its data is lost)", inst.dataDir, have, m.server, m.server.Major())
}

// instance returns a started cluster.
func (m *Manager) instance(id string) (*instance, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	inst, ok := m.clusters[id]
	if !ok {
		return nil, fmt.Errorf("pgserver: no cluster %s", id)
	}
	if inst.err != nil {
		return nil, fmt.Errorf("pgserver: cluster %s did not start: %w", id, inst.err)
	}
	return inst, nil
}

// Unstarted says, by cluster ID, why each cluster Open found but could not
// start did not start (for example a data directory of another major
// version).
func (m *Manager) Unstarted() map[string]error {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]error{}
	for id, inst := range m.clusters {
		if inst.err != nil && !errors.Is(inst.err, errBeingCreated) {
			out[id] = inst.err
		}
	}
	return out
}

// Clusters returns the IDs of the clusters, started or not.
func (m *Manager) Clusters() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, 0, len(m.clusters))
	for id := range m.clusters {
		ids = append(ids, id)
	}
	return ids
}

// Address returns where a cluster listens.
func (m *Manager) Address(id string) (host string, port int, err error) {
	inst, err := m.instance(id)
	if err != nil {
		return "", 0, err
	}
	return inst.meta.Host, inst.meta.Port, nil
}

// run runs a PostgreSQL binary as the server user. Output goes to a file,
// not a pipe: pg_ctl leaves the server running, and a pipe it inherited
// would keep the command from finishing.
func (m *Manager) run(ctx context.Context, name string, args ...string) error {
	_, err := m.output(ctx, m.binDir, name, args...)
	return err
}

// output runs a PostgreSQL binary of binDir as the server user and returns
// what it printed.
func (m *Manager) output(ctx context.Context, binDir, name string, args ...string) (string, error) {
	out, err := os.CreateTemp("", "pgserver-"+name+"-*.log")
	if err != nil {
		return "", err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	if m.cred != nil {
		if err := out.Chown(m.uid, m.gid); err != nil {
			return "", err
		}
	}
	// The pinned binaries find their libraries through their RUNPATH
	// ($ORIGIN/../lib), Debian's in the system's: no LD_LIBRARY_PATH.
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, name), args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Dir = os.TempDir()
	cmd.Env = []string{"PATH=" + binDir + ":/usr/bin:/bin", "LC_ALL=C", "TZ=UTC"}
	if m.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: m.cred}
	}
	runErr := cmd.Run()
	logText, _ := os.ReadFile(out.Name())
	if runErr == nil {
		return string(logText), nil
	}
	return "", &commandError{name: filepath.Join(binDir, name), args: args, err: runErr, output: strings.TrimSpace(string(logText))}
}

// commandError is a failed PostgreSQL command.
type commandError struct {
	name   string
	args   []string
	err    error
	output string
}

func (e *commandError) Error() string {
	return fmt.Sprintf("%s %s: %v: %s", e.name, strings.Join(e.args, " "), e.err, e.output)
}

func (e *commandError) Unwrap() error { return e.err }

// exitCode is the exit status of a failed command, or -1.
func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// running reports whether a cluster's server is up; a cluster whose data
// directory is gone is not.
func (m *Manager) running(ctx context.Context, inst *instance) (bool, error) {
	if _, err := os.Stat(inst.dataDir); errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	err := m.run(ctx, "pg_ctl", "status", "-D", inst.dataDir)
	switch {
	case err == nil:
		return true, nil
	case exitCode(err) == 3:
		return false, nil
	}
	return false, err
}

// start starts a cluster's server and waits until it accepts connections.
func (m *Manager) start(ctx context.Context, inst *instance) error {
	if inst.sockDir != inst.dataDir {
		if err := m.mkdirOwned(inst.sockDir); err != nil {
			return err
		}
	}
	return m.run(ctx, "pg_ctl", "start", "-D", inst.dataDir, "-w", "-t", "60",
		"-l", filepath.Join(inst.dataDir, logFile), "-o", "-k "+inst.sockDir)
}

// stop stops a cluster's server.
func (m *Manager) stop(ctx context.Context, inst *instance, mode string) error {
	running, err := m.running(ctx, inst)
	if err != nil || !running {
		return err
	}
	return m.run(ctx, "pg_ctl", "stop", "-D", inst.dataDir, "-w", "-t", "60", "-m", mode)
}

// mkdirOwned creates a directory owned by the server user.
func (m *Manager) mkdirOwned(d string) error {
	if err := os.MkdirAll(d, 0o700); err != nil {
		return err
	}
	if m.cred != nil {
		return os.Chown(d, m.uid, m.gid)
	}
	return nil
}

// writeOwned writes a file owned by the server user.
func (m *Manager) writeOwned(path string, data []byte, perm os.FileMode) error {
	if err := os.WriteFile(path, data, perm); err != nil {
		return err
	}
	if m.cred != nil {
		return os.Chown(path, m.uid, m.gid)
	}
	return nil
}

// freePort returns a TCP port free on the listen address and not given to
// another cluster.
func (m *Manager) freePort() (int, error) {
	m.mu.Lock()
	taken := map[int]bool{}
	for _, inst := range m.clusters {
		taken[inst.meta.Port] = true
	}
	m.mu.Unlock()
	for range 20 {
		l, err := net.Listen("tcp", net.JoinHostPort(m.opts.ListenAddress, "0"))
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if !taken[port] {
			return port, nil
		}
	}
	return 0, errors.New("pgserver: no free port")
}

// CreateCluster makes and starts a server for a cluster, with the role
// avnadmin and the database defaultdb, and tells where it listens.
func (m *Manager) CreateCluster(ctx context.Context, clusterID string) (string, int, error) {
	if !clusterIDPattern.MatchString(clusterID) {
		return "", 0, fmt.Errorf("pgserver: %q is not a valid cluster ID", clusterID)
	}
	inst := &instance{id: clusterID, dataDir: m.dataDir(clusterID), sockDir: m.socketDir(clusterID)}
	m.mu.Lock()
	if _, exists := m.clusters[clusterID]; exists {
		m.mu.Unlock()
		return "", 0, fmt.Errorf("pgserver: cluster %s exists", clusterID)
	}
	inst.err = errBeingCreated
	m.clusters[clusterID] = inst
	m.mu.Unlock()

	err := m.create(ctx, inst)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		delete(m.clusters, clusterID)
		_ = m.stop(context.WithoutCancel(ctx), inst, "immediate")
		_ = os.RemoveAll(inst.dataDir)
		return "", 0, fmt.Errorf("pgserver: create cluster %s: %w", clusterID, err)
	}
	inst.err = nil
	return inst.meta.Host, inst.meta.Port, nil
}

// create runs initdb, configures, starts and bootstraps a cluster.
func (m *Manager) create(ctx context.Context, inst *instance) error {
	if _, err := os.Stat(inst.dataDir); err == nil {
		return fmt.Errorf("%s already exists", inst.dataDir)
	}
	if err := m.mkdirOwned(inst.dataDir); err != nil {
		return err
	}
	if err := m.run(ctx, "initdb", "-D", inst.dataDir, "-U", superuser, "--auth-local=trust",
		"--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync"); err != nil {
		return err
	}
	hosts := uniq([]string{m.opts.Host, m.opts.ListenAddress, "localhost", "127.0.0.1"})
	certs, err := newCertificates(inst.id, hosts, m.opts.Now())
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
		perm os.FileMode
	}{
		{caFile, certs.caPEM, 0o644},
		{certFile, certs.certPEM, 0o644},
		{keyFile, certs.keyPEM, 0o600},
		{"pg_hba.conf", []byte(hbaConf), 0o600},
	} {
		if err := m.writeOwned(filepath.Join(inst.dataDir, f.name), f.data, f.perm); err != nil {
			return err
		}
	}
	conf, err := os.ReadFile(filepath.Join(inst.dataDir, "postgresql.conf"))
	if err != nil {
		return err
	}
	conf = append(conf, []byte("\n# acco local cloud\ninclude '"+confFile+"'\n")...)
	if err := m.writeOwned(filepath.Join(inst.dataDir, "postgresql.conf"), conf, 0o600); err != nil {
		return err
	}
	var startErr error
	for range 3 { // a free port can be taken between the check and the start
		port, err := m.freePort()
		if err != nil {
			return err
		}
		inst.meta = clusterMeta{ID: inst.id, Port: port, Host: m.opts.Host}
		if err := m.writeOwned(filepath.Join(inst.dataDir, confFile), []byte(m.serverConf(port)), 0o600); err != nil {
			return err
		}
		if startErr = m.start(ctx, inst); startErr == nil {
			break
		}
	}
	if startErr != nil {
		return startErr
	}
	if err := m.bootstrap(ctx, inst); err != nil {
		return err
	}
	meta, err := json.Marshal(inst.meta)
	if err != nil {
		return err
	}
	return m.writeOwned(filepath.Join(inst.dataDir, metaFile), meta, 0o600)
}

// hbaConf admits the superuser through the socket only, and everyone else
// over TLS with a SCRAM password.
const hbaConf = `# acco local cloud: like a managed PostgreSQL, TCP needs TLS and a password.
local   all          all                     trust
hostssl all          postgres  0.0.0.0/0     reject
hostssl all          postgres  ::/0          reject
hostssl all          all       0.0.0.0/0     scram-sha-256
hostssl all          all       ::/0          scram-sha-256
hostssl replication  postgres  0.0.0.0/0     reject
hostssl replication  postgres  ::/0          reject
hostssl replication  all       0.0.0.0/0     scram-sha-256
hostssl replication  all       ::/0          scram-sha-256
`

// serverConf is the configuration acco adds to postgresql.conf.
func (m *Manager) serverConf(port int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen_addresses = %s\n", quoteLiteral(m.opts.ListenAddress))
	fmt.Fprintf(&b, "port = %d\n", port)
	b.WriteString(`ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
password_encryption = 'scram-sha-256'
wal_level = logical
max_wal_senders = 10
max_replication_slots = 10
max_connections = 100
shared_buffers = 32MB
timezone = 'UTC'
log_timezone = 'UTC'
log_min_error_statement = panic
`)
	if m.hasLibrary("timescaledb.so") {
		b.WriteString("shared_preload_libraries = 'timescaledb'\ntimescaledb.telemetry_level = off\n")
	}
	return b.String()
}

// hasLibrary reports whether a server module is installed: in lib next to
// the binaries (Debian's layout) or in lib/postgresql (the npm package's).
func (m *Manager) hasLibrary(name string) bool {
	lib := filepath.Join(filepath.Dir(m.binDir), "lib")
	for _, d := range []string{lib, filepath.Join(lib, "postgresql")} {
		if _, err := os.Stat(filepath.Join(d, name)); err == nil {
			return true
		}
	}
	return false
}

// bootstrap creates avnadmin and defaultdb.
func (m *Manager) bootstrap(ctx context.Context, inst *instance) error {
	conn, err := m.connect(ctx, inst, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, q := range []string{
		"CREATE ROLE " + ident(adminRole) + " LOGIN CREATEDB CREATEROLE REPLICATION",
		"GRANT pg_read_all_stats, pg_signal_backend, pg_monitor TO " + ident(adminRole),
		"CREATE DATABASE " + ident(defaultDB) + " OWNER " + ident(adminRole),
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// DeleteCluster stops a cluster's server and removes its data. Deleting a
// cluster that does not exist is not an error.
func (m *Manager) DeleteCluster(ctx context.Context, clusterID string) error {
	m.mu.Lock()
	inst, ok := m.clusters[clusterID]
	if ok {
		delete(m.clusters, clusterID)
	}
	m.mu.Unlock()
	if !ok {
		if !clusterIDPattern.MatchString(clusterID) {
			return nil
		}
		inst = &instance{id: clusterID, dataDir: m.dataDir(clusterID), sockDir: m.socketDir(clusterID)}
		if _, err := os.Stat(inst.dataDir); err != nil {
			return nil
		}
	}
	inst.mu.Lock()
	defer inst.mu.Unlock()
	if err := m.stop(ctx, inst, "fast"); err != nil {
		m.mu.Lock()
		m.clusters[clusterID] = inst
		m.mu.Unlock()
		return fmt.Errorf("pgserver: delete cluster %s: %w", clusterID, err)
	}
	if inst.sockDir != inst.dataDir {
		_ = os.RemoveAll(inst.sockDir)
	}
	if err := os.RemoveAll(inst.dataDir); err != nil {
		return fmt.Errorf("pgserver: delete cluster %s: %w", clusterID, err)
	}
	return nil
}

// Close stops every server; their data stays for the next Open.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	insts := make([]*instance, 0, len(m.clusters))
	for _, inst := range m.clusters {
		insts = append(insts, inst)
	}
	m.mu.Unlock()
	var errs []error
	for _, inst := range insts {
		inst.mu.Lock()
		if err := m.stop(ctx, inst, "fast"); err != nil {
			errs = append(errs, fmt.Errorf("pgserver: stop %s: %w", inst.id, err))
		}
		inst.mu.Unlock()
	}
	return errors.Join(errs...)
}

// CACertificate returns the PEM CA certificate that signed a cluster's
// server certificate (for sslmode=verify-full).
func (m *Manager) CACertificate(_ context.Context, clusterID string) (string, error) {
	inst, err := m.instance(clusterID)
	if err != nil {
		return "", err
	}
	pem, err := os.ReadFile(filepath.Join(inst.dataDir, caFile))
	if err != nil {
		return "", fmt.Errorf("pgserver: %w", err)
	}
	return string(pem), nil
}

// uniq drops empty and repeated strings, keeping the order.
func uniq(in []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range in {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
