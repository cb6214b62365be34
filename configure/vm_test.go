package configure

// End-to-end tests of the engine against a real sshd and a real systemd: a
// Debian 12 VM from internal/localcloud/vm, configured with the offline
// service set (common + Mosquitto + the Node backend, Node.js from Debian).
//
// One VM serves the whole sequence (TestVMConfigure's subtests, in order, and
// the benchmarks): a boot costs about 20-30 s and a reboot about 25-30 s under
// TCG. The VM is booted lazily by the first test or benchmark that needs it
// and shut down by TestMain.
//
// What the first run installs comes from Debian's mirror, reached by the
// guest through QEMU's user-mode networking (apt-get update, then mosquitto,
// nodejs, systemd-timesyncd and unattended-upgrades; the image already has
// ca-certificates, curl and iproute2). That run takes about 2.5 minutes under
// TCG, most of it dpkg; the whole sequence about 5 minutes.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/accoreboot/acco/internal/localcloud/vm"
	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/state"
	"github.com/accoreboot/acco/templates"
)

func TestMain(m *testing.M) {
	code := m.Run()
	shared.mu.Lock()
	if shared.fx != nil {
		shared.fx.stop()
	}
	shared.mu.Unlock()
	os.Exit(code)
}

// shared is the one VM of the test binary.
var shared struct {
	mu    sync.Mutex
	tried bool
	fx    *vmFixture
	err   error
	skip  string
}

// vmFixture is a booted VM, the sshTarget that reaches it, and the state
// (pinned host keys, owed restarts) acco keeps for it, persisted to a file
// the way acco persists state between runs.
type vmFixture struct {
	v         *vm.VM
	tg        sshTarget
	priv      ed25519.PrivateKey // the client key, for OpenSSH (Ansible)
	env       *spec.Environment
	in        templates.Inputs
	artifact  string // the test backend archive
	stateFile string
	dir       string
}

// bootOnce is the boot timeout of the shared VM, and runTimeout bounds one
// configure run (the first installs packages under TCG).
const (
	bootOnce   = 10 * time.Minute
	runTimeout = 15 * time.Minute
)

// getVM returns the shared VM, booting it on first use, or skips tb.
func getVM(tb testing.TB) *vmFixture {
	tb.Helper()
	if testing.Short() {
		tb.Skip("boots a QEMU VM and configures it (minutes under TCG): skipped in -short mode")
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.tried {
		shared.tried = true
		dir := vm.DefaultImageDir()
		if err := vm.ImageAvailable(dir); err != nil {
			shared.skip = err.Error()
		} else {
			shared.fx, shared.err = bootFixture(dir)
		}
	}
	switch {
	case shared.skip != "":
		tb.Skipf("skipping: %s", shared.skip)
	case shared.err != nil:
		tb.Fatalf("booting the VM: %v", shared.err)
	}
	return shared.fx
}

func bootFixture(imageDir string) (*vmFixture, error) {
	dir, err := os.MkdirTemp("", "acco-configure-vm-")
	if err != nil {
		return nil, err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), bootOnce)
	defer cancel()
	start := time.Now()
	v, err := vm.Boot(ctx, vm.Options{
		ImageDir: imageDir,
		WorkDir:  filepath.Join(dir, "vm"),
		Name:     "app",
		MemoryMB: 1024, // apt and node
		Signer:   signer,
		Logf:     vmLogf,
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	vmLogf("configure tests: VM booted to SSH in %s (%s)", time.Since(start).Round(100*time.Millisecond), v.Accel())
	port := 0
	if _, p, err := net.SplitHostPort(v.SSHAddr()); err == nil {
		fmt.Sscan(p, &port)
	}
	console, _ := v.ConsoleLog()
	fx := &vmFixture{
		v:    v,
		priv: priv,
		tg: sshTarget{
			Host:    Host{Name: "app", Address: "127.0.0.1", Port: port, User: v.User()},
			Signer:  signer,
			HostKey: v.HostKeys()[0],
			Console: console,
			Root:    "/var/tmp/acco-test",
		},
		stateFile: filepath.Join(dir, "state.json"),
		dir:       dir,
	}
	if err := fx.setup(); err != nil {
		fx.stop()
		return nil, err
	}
	return fx, nil
}

func vmLogf(format string, args ...any) {
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
	}
}

func (fx *vmFixture) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := fx.v.Stop(ctx); err != nil {
		fx.v.Kill()
	}
	os.RemoveAll(fx.dir)
}

// setup loads the shipped test environment, switched to the offline service
// set, and writes the test backend archive.
func (fx *vmFixture) setup() error {
	env, err := spec.Load("../environments", "test", nil)
	if err != nil {
		return err
	}
	env.Services.Broker = spec.BrokerMosquitto
	env.Services.Mosquitto = &spec.Mosquitto{Listeners: map[string]*spec.Listener{"mqtt": {Type: "tcp", Bind: "0.0.0.0", Port: 1883}}}
	env.Services.Backend.Env = map[string]string{"LOG_LEVEL": "debug", "GREETING": "hello"}
	fx.env = env
	fx.in = templates.Inputs{
		Databases:             map[string]templates.DB{"main": {Host: "127.0.0.1", Port: 5432, CACert: "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n"}},
		Passwords:             map[string]string{"main.emqx": "vm-pw-emqx-1", "main.powersync": "vm-pw-powersync-2", "main.backend": "vm-pw-backend-3"},
		EMQXDashboardPassword: "vm-dash-4", EMQXCookie: "vm-cookie-5", PowerSyncAPIToken: "vm-token-6", MQTTBackendPassword: "vm-mqtt-7",
	}
	fx.artifact = filepath.Join(fx.dir, "acco-backend.tar.gz")
	return os.WriteFile(fx.artifact, backendArchive(), 0o644)
}

// backendServer is the test backend: a Node HTTP server on HOST:PORT (from
// the unit's environment file) whose /healthz answers with GREETING, so a
// test can tell which environment the running process was started with.
const backendServer = `'use strict';
const http = require('http');
const port = Number(process.env.PORT || 3000);
const host = process.env.HOST || '127.0.0.1';
http.createServer((req, res) => {
  if (req.url === '/healthz') {
    res.writeHead(200, {'content-type': 'application/json'});
    res.end(JSON.stringify({ok: true, greeting: process.env.GREETING || '', pid: process.pid}) + '\n');
    return;
  }
  res.writeHead(404);
  res.end();
}).listen(port, host, () => console.log('acco test backend listening on ' + host + ':' + port));
`

// backendArchive is an npm-pack-like archive (files under package/) of the
// test backend, without a package-lock.json, so no npm ci runs (Debian's
// nodejs has no npm without recommends). It is deterministic.
func backendArchive() []byte {
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	tw := tar.NewWriter(gz)
	mod := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, f := range []struct{ name, body string }{
		{"package/", ""},
		{"package/package.json", `{"name":"acco-backend-test","version":"0.0.0","private":true,"main":"dist/server.js"}` + "\n"},
		{"package/dist/", ""},
		{"package/dist/server.js", backendServer},
	} {
		h := &tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg, ModTime: mod}
		if strings.HasSuffix(f.name, "/") {
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
		}
		tw.WriteHeader(h)
		tw.Write([]byte(f.body))
	}
	tw.Close()
	gz.Close()
	return b.Bytes()
}

// desired is what the VM should have with the backend's GREETING set to
// greeting. The backend unit's health gate also probes /healthz over HTTP
// (Services gates it on its port only: the backend's health path is not in
// the environment YAML).
func (fx *vmFixture) desired(tb testing.TB, greeting string) Desired {
	tb.Helper()
	env := *fx.env
	be := *env.Services.Backend
	be.Env = maps.Clone(be.Env)
	be.Env["GREETING"] = greeting
	env.Services.Backend = &be
	d, err := Services(&env, fx.in, ServicesOptions{Offline: true, Artifact: fx.artifact})
	if err != nil {
		tb.Fatal(err)
	}
	for i, u := range d.Units {
		if u.Name == templates.UnitBackend {
			d.Units[i].Health.HTTP = fmt.Sprintf("http://127.0.0.1:%d/healthz", be.Port)
		}
	}
	d.Files = append(d.Files, fx.emqxPasswordFiles(tb)...)
	return d
}

// emqxPasswordFiles are the files through which configure sets EMQX's
// dashboard password on a running node (those with a Post that speaks to
// EMQX), taken from the shipped test environment. EMQX cannot be
// installed on the offline VM: they are owned by root here (the VM has no
// emqx user) and their Post finds no emqx.service, but their scripts go
// through sudo like on a real host, which is what the test of the journal
// and sudo's log checks.
func (fx *vmFixture) emqxPasswordFiles(tb testing.TB) []File {
	tb.Helper()
	env, err := spec.Load("../environments", "test", nil)
	if err != nil {
		tb.Fatal(err)
	}
	if env.Services.Broker != spec.BrokerEMQX {
		tb.Fatalf("the test environment's broker is %s, not emqx", env.Services.Broker)
	}
	env.Services.EMQX.Listeners = map[string]*spec.Listener{"mqtt": {Type: "tcp", Bind: "0.0.0.0", Port: 1883}}
	d, err := Services(env, fx.in, ServicesOptions{NoArtifact: true})
	if err != nil {
		tb.Fatal(err)
	}
	var out []File
	for _, f := range d.Files {
		if strings.Contains(f.Post, "emqx") {
			f.Owner, f.Group, f.Restart = "root", "root", ""
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		tb.Fatal("no file of the EMQX role sets the dashboard password")
	}
	return out
}

// secretLabels names every secret of the inputs, for messages that must
// not show the values.
func (fx *vmFixture) secretLabels() map[string]string {
	out := map[string]string{
		"the EMQX dashboard password": fx.in.EMQXDashboardPassword,
		"the Erlang cookie":           fx.in.EMQXCookie,
		"the PowerSync API token":     fx.in.PowerSyncAPIToken,
		"the backend's MQTT password": fx.in.MQTTBackendPassword,
	}
	for user, pw := range fx.in.Passwords {
		out["the database password of "+user] = pw
	}
	for n, tl := range fx.in.TLS {
		out["the TLS key of "+n] = strings.TrimSpace(tl.Key)
	}
	return out
}

// unitNames are the units the engine manages on the VM.
func unitNames(d Desired) []string {
	var out []string
	for _, u := range d.Units {
		out = append(out, u.Name)
	}
	return out
}

// loadState reads the persisted state, as a new acco process would.
func (fx *vmFixture) loadState(tb testing.TB) *state.State {
	tb.Helper()
	st := &state.State{}
	b, err := os.ReadFile(fx.stateFile)
	if errors.Is(err, os.ErrNotExist) {
		return st
	}
	if err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(b, st); err != nil {
		tb.Fatal(err)
	}
	return st
}

// vmRun is one acco configure run as a fresh process would do it: state
// loaded from the file, host keys pinned there (or checked against the
// serial console on first contact), owed restarts journaled there.
type vmRun struct {
	st      *state.State
	conn    *vmConnector
	journal *StateJournal
	keys    *StateKeys
}

func (fx *vmFixture) newRun(tb testing.TB) *vmRun {
	tb.Helper()
	st := fx.loadState(tb)
	save := func(context.Context) error {
		b, err := json.MarshalIndent(st, "", "  ")
		if err != nil {
			return err
		}
		tmp := fx.stateFile + ".tmp"
		if err := os.WriteFile(tmp, b, 0o600); err != nil {
			return err
		}
		return os.Rename(tmp, fx.stateFile)
	}
	keys := &StateKeys{State: st, Save: save}
	console := ConsoleFunc(func(context.Context, string) (string, error) { return fx.v.ConsoleLog() })
	return &vmRun{
		st:      st,
		keys:    keys,
		journal: &StateJournal{State: st, Save: save},
		conn: &vmConnector{Connector: &SSHConnector{
			Signer: fx.tg.Signer, Keys: keys, Console: console,
			Retry: 30 * time.Second, Secrets: fx.in.Secrets(),
		}},
	}
}

func (r *vmRun) apply(ctx context.Context, fx *vmFixture, d Desired, opts Options) (*Result, error) {
	opts.Journal = r.journal
	opts.Secrets = fx.in.Secrets()
	res, err := Run(ctx, r.conn, []Target{{Host: fx.tg.Host, Desired: d}}, opts)
	if len(res) != 1 || res[0] == nil {
		return nil, fmt.Errorf("Run returned %d results: %w", len(res), err)
	}
	return res[0], err
}

// vmConnector counts connections and the sessions (round trips) of the
// last one, and can kill a run when it is about to run a given command.
type vmConnector struct {
	Connector
	mu       sync.Mutex
	runners  []*sshRunner
	killOn   string             // a script containing this is not run ...
	kill     context.CancelFunc // ... and the run is cancelled instead
	killed   bool
	commands []string // first line of every script run, in order
	connect  time.Duration
}

func (c *vmConnector) Connect(ctx context.Context, h Host) (Runner, error) {
	start := time.Now()
	r, err := c.Connector.Connect(ctx, h)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.connect += time.Since(start)
	c.runners = append(c.runners, r.(*sshRunner))
	c.mu.Unlock()
	return &vmRunner{Runner: r, c: c}, nil
}

func (c *vmConnector) connects() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.runners)
}

func (c *vmConnector) sessions() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for _, r := range c.runners {
		n += r.Sessions()
	}
	return n
}

type vmRunner struct {
	Runner
	c *vmConnector
}

func (r *vmRunner) Run(ctx context.Context, script string, stdin io.Reader) ([]byte, error) {
	r.c.mu.Lock()
	if r.c.killOn != "" && strings.Contains(script, r.c.killOn) {
		r.c.killed = true
		kill := r.c.kill
		r.c.mu.Unlock()
		kill()
		return nil, context.Canceled
	}
	first, _, _ := strings.Cut(strings.TrimPrefix(script, "set -e\n"), "\n")
	r.c.commands = append(r.c.commands, first)
	r.c.mu.Unlock()
	return r.Runner.Run(ctx, script, stdin)
}

// guest runs a command on the VM as root, outside the engine.
func (fx *vmFixture) guest(tb testing.TB, cmd string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := fx.v.Run(ctx, "sudo -n sh -c "+shellQuote(cmd))
	if err != nil {
		tb.Fatalf("on the VM: %s: %v", cmd, err)
	}
	return strings.TrimSpace(out)
}

// invocations returns each unit's InvocationID, which systemd renews on
// every start and restart: an unchanged id proves a unit was not restarted.
func (fx *vmFixture) invocations(tb testing.TB, units []string) map[string]string {
	tb.Helper()
	out := fx.guest(tb, "for u in "+argv(units...)+"; do printf '%s %s\\n' \"$u\" \"$(systemctl show -p InvocationID --value \"$u\")\"; done")
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		u, id, _ := strings.Cut(line, " ")
		m[u] = id
	}
	return m
}

// activeStates returns systemctl is-active of each unit.
func (fx *vmFixture) activeStates(tb testing.TB, units []string) map[string]string {
	tb.Helper()
	out := fx.guest(tb, "for u in "+argv(units...)+"; do printf '%s %s\\n' \"$u\" \"$(systemctl is-active \"$u\" || true)\"; done")
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		u, st, _ := strings.Cut(line, " ")
		m[u] = st
	}
	return m
}

func allActive(m map[string]string) bool {
	for _, st := range m {
		if st != "active" {
			return false
		}
	}
	return len(m) > 0
}

// greeting asks the running backend for the GREETING it was started with.
func (fx *vmFixture) greeting(tb testing.TB) string {
	tb.Helper()
	out := fx.guest(tb, "curl -fsS --max-time 5 http://127.0.0.1:3000/healthz")
	var h struct {
		Greeting string `json:"greeting"`
	}
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		tb.Fatalf("backend /healthz answered %q: %v", out, err)
	}
	return h.Greeting
}

// ensureConfigured applies the baseline configuration: the whole fresh
// install when the benchmarks run without the tests, else a restart of the
// backend back to its first greeting.
func (fx *vmFixture) ensureConfigured(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	if _, err := fx.newRun(tb).apply(ctx, fx, fx.desired(tb, "hello"), Options{}); err != nil {
		tb.Fatalf("configuring the VM: %v", err)
	}
}

func changedFiles(p *HostPlan) []string {
	var out []string
	for _, c := range p.Changes {
		if c.Kind == KindFile && c.Action != ActionNoop {
			out = append(out, c.Address)
		}
	}
	return out
}

func nonUnitChanges(p *HostPlan) []string {
	var out []string
	for _, c := range p.Changes {
		if c.Kind != KindUnit && c.Action != ActionNoop {
			out = append(out, c.Address+" "+c.Action)
		}
	}
	return out
}

// TestVMConfigure runs the engine against the VM, in order: a fresh host
// configured from nothing, a no-op run, one value changed, a run killed
// before its restart, a wrong host key, a reboot.
func TestVMConfigure(t *testing.T) {
	fx := getVM(t)
	units := unitNames(fx.desired(t, "hello"))
	t.Logf("managed units: %v", units)
	ctx := context.Background()
	// Each step needs the one before; after a failure the rest is skipped.
	step := func(name string, fn func(t *testing.T)) {
		if t.Failed() {
			t.Logf("skipping %q: an earlier step failed", name)
			return
		}
		t.Run(name, fn)
	}

	step("fresh VM from nothing", func(t *testing.T) {
		if st := fx.loadState(t); len(st.Hosts) != 0 {
			t.Fatal("the VM is not fresh: state already pins its host key")
		}
		before := fx.guest(t, "dpkg-query -W -f='${db:Status-Status}' mosquitto nodejs 2>/dev/null || true")
		if strings.Contains(before, "installed") {
			t.Fatalf("the image already has mosquitto or nodejs (%q): the test would not install them", before)
		}
		// The packages come from the mirror of the image's apt sources.
		mirror := fx.guest(t, "awk '$1 == \"deb\" { print $2; exit }' /etc/apt/sources.list")
		if out := fx.guest(t, "curl -fsS -o /dev/null --max-time 30 "+shellQuote(strings.TrimSuffix(mirror, "/")+"/dists/bookworm/Release")+" && echo ok || echo unreachable"); out != "ok" {
			t.Fatalf("the VM cannot reach the Debian mirror %s (through QEMU user networking), from which this test installs mosquitto and nodejs: give the guest network access", mirror)
		}
		run := fx.newRun(t)
		ctx, cancel := context.WithTimeout(ctx, runTimeout)
		defer cancel()
		start := time.Now()
		res, err := run.apply(ctx, fx, fx.desired(t, "hello"), Options{})
		if err != nil {
			t.Fatalf("fresh configure: %v", err)
		}
		t.Logf("fresh configure: %s, %d round trips, plan: %s", time.Since(start).Round(100*time.Millisecond), run.conn.sessions(), summary(res.Plan))
		if run.keys.HostKeys("app") == nil {
			t.Error("the host key checked against the console was not pinned")
		} else if got := run.keys.HostKeys("app"); !slices.Equal(got, []string{authorized(fx.tg.HostKey)}) {
			t.Errorf("pinned %v, want the console's %s", got, authorized(fx.tg.HostKey))
		}
		if owed := run.journal.Owed("app"); len(owed) != 0 {
			t.Errorf("restarts still owed after a good run: %v", owed)
		}
		if st := fx.activeStates(t, units); !allActive(st) {
			t.Errorf("units after the fresh configure: %v", st)
		}
		if g := fx.greeting(t); g != "hello" {
			t.Errorf("backend greeting %q, want hello", g)
		}
		if v := fx.guest(t, "node --version"); !strings.HasPrefix(v, "v") {
			t.Errorf("node --version = %q", v)
		}
	})

	step("no secret in the journal, sudo's log or the process list", func(t *testing.T) {
		// sudo logs each command line (the whole script, as sh -c's
		// argument) through syslog, which journald keeps; Debian 12 has
		// no auth.log unless rsyslog is installed.
		logs := fx.guest(t, "journalctl --no-pager -o cat; if [ -r /var/log/auth.log ]; then cat /var/log/auth.log; fi; ps -eo args")
		if !strings.Contains(logs, "COMMAND=") {
			t.Fatal("no sudo COMMAND= line in the journal: sudo's log is elsewhere and this test proves nothing")
		}
		// sudo splits a long line at a space and goes on with
		// "(command continued)": join them back.
		joined := strings.ReplaceAll(logs, "\n(command continued) ", " ")
		for what, v := range fx.secretLabels() {
			if v != "" && (strings.Contains(logs, v) || strings.Contains(joined, v)) {
				t.Errorf("%s is in the journal, sudo's log or the process list", what)
			}
		}
	})

	step("no-op run", func(t *testing.T) {
		ids := fx.invocations(t, units)
		run := fx.newRun(t)
		start := time.Now()
		res, err := run.apply(ctx, fx, fx.desired(t, "hello"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("no-op configure: %s (SSH connect %s)", time.Since(start).Round(time.Millisecond), run.conn.connect.Round(time.Millisecond))
		if !res.Plan.Empty() || len(res.Plan.Restarts) != 0 || len(res.Restarted) != 0 || len(res.Started) != 0 {
			t.Errorf("no-op run: changes %v restarts %v restarted %v started %v", nonUnitChanges(res.Plan), res.Plan.Restarts, res.Restarted, res.Started)
		}
		if n, s := run.conn.connects(), run.conn.sessions(); n != 1 || s != 1 {
			t.Errorf("no-op run: %d connections, %d sessions (round trips); want 1 and 1 (the facts probe): %q", n, s, run.conn.commands)
		}
		if got := fx.invocations(t, units); !maps.Equal(got, ids) {
			t.Errorf("a no-op run restarted units: before %v after %v", ids, got)
		}
	})

	step("one value changed: one file, one restart", func(t *testing.T) {
		ids := fx.invocations(t, units)
		run := fx.newRun(t)
		res, err := run.apply(ctx, fx, fx.desired(t, "changed"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := nonUnitChanges(res.Plan); !slices.Equal(got, []string{"host.app:file:/etc/acco/backend.env update"}) {
			t.Errorf("changes %v, want only /etc/acco/backend.env", got)
		}
		if !slices.Equal(res.Plan.Restarts, []string{templates.UnitBackend}) || !slices.Equal(res.Restarted, []string{templates.UnitBackend}) {
			t.Errorf("restarts planned %v, done %v; want only %s", res.Plan.Restarts, res.Restarted, templates.UnitBackend)
		}
		after := fx.invocations(t, units)
		for _, u := range units {
			if restarted := after[u] != ids[u]; restarted != (u == templates.UnitBackend) {
				t.Errorf("%s restarted: %v", u, restarted)
			}
		}
		if g := fx.greeting(t); g != "changed" {
			t.Errorf("backend greeting %q after the restart, want changed", g)
		}
	})

	step("run killed before the restart; the next run restarts", func(t *testing.T) {
		ids := fx.invocations(t, units)
		run := fx.newRun(t)
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		run.conn.killOn = argv("systemctl", "restart", templates.UnitBackend)
		run.conn.kill = cancel
		_, err := run.apply(ctx, fx, fx.desired(t, "owed"), Options{})
		if !errors.Is(err, context.Canceled) || !run.conn.killed {
			t.Fatalf("the killed run: err %v, killed %v", err, run.conn.killed)
		}
		if got := fx.guest(t, "grep ^GREETING= /etc/acco/backend.env"); got != `GREETING="owed"` {
			t.Errorf("the killed run did not write the file: %q", got)
		}
		if got := fx.invocations(t, units); !maps.Equal(got, ids) {
			t.Errorf("the killed run restarted units: before %v after %v", ids, got)
		}
		if g := fx.greeting(t); g != "changed" {
			t.Errorf("backend greeting %q, want the old value until the restart", g)
		}

		// A new process: owed restarts come from the persisted state.
		next := fx.newRun(t)
		if owed := next.journal.Owed("app"); !slices.Equal(owed, []string{templates.UnitBackend}) {
			t.Fatalf("owed in state after the killed run: %v", owed)
		}
		res, err := next.apply(context.Background(), fx, fx.desired(t, "owed"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := changedFiles(res.Plan); len(got) != 0 {
			t.Errorf("the next run rewrote %v", got)
		}
		if !slices.Equal(res.Restarted, []string{templates.UnitBackend}) {
			t.Errorf("the next run restarted %v, want the owed %s", res.Restarted, templates.UnitBackend)
		}
		if g := fx.greeting(t); g != "owed" {
			t.Errorf("backend greeting %q after the owed restart, want owed", g)
		}
		if owed := fx.newRun(t).journal.Owed("app"); len(owed) != 0 {
			t.Errorf("still owed after the restart: %v", owed)
		}
		after := fx.invocations(t, units)
		for _, u := range units {
			if restarted := after[u] != ids[u]; restarted != (u == templates.UnitBackend) {
				t.Errorf("%s restarted: %v", u, restarted)
			}
		}
	})

	step("wrong host key refused, nothing changed", func(t *testing.T) {
		ids := fx.invocations(t, units)
		envBefore := fx.guest(t, "sha256sum /etc/acco/backend.env")
		other, _ := newKey(t)
		d := fx.desired(t, "impostor")

		// A pinned key that is not the host's.
		keys := &memKeys{keys: map[string][]string{"app": {authorized(other.PublicKey())}}}
		conn := &vmConnector{Connector: &SSHConnector{Signer: fx.tg.Signer, Keys: keys, Retry: 30 * time.Second}}
		start := time.Now()
		_, err := Run(ctx, conn, []Target{{Host: fx.tg.Host, Desired: d}}, Options{Journal: newMemJournal(nil)})
		if !errors.Is(err, ErrHostKeyMismatch) {
			t.Errorf("pinned key mismatch: err = %v, want ErrHostKeyMismatch", err)
		}
		if time.Since(start) > 10*time.Second {
			t.Error("a host key mismatch was retried")
		}
		// First contact, with other keys on the console.
		keys = &memKeys{}
		conn = &vmConnector{Connector: &SSHConnector{Signer: fx.tg.Signer, Keys: keys, Console: ConsoleFunc(func(context.Context, string) (string, error) {
			return consoleFor(other.PublicKey()), nil
		})}}
		_, err = Run(ctx, conn, []Target{{Host: fx.tg.Host, Desired: d}}, Options{Journal: newMemJournal(nil)})
		if !errors.Is(err, ErrHostKeyMismatch) {
			t.Errorf("console key mismatch: err = %v, want ErrHostKeyMismatch", err)
		}
		if keys.pins != 0 {
			t.Error("a refused key was pinned")
		}
		if conn.sessions() != 0 || len(conn.commands) != 0 {
			t.Errorf("commands ran on a host with a wrong key: %q", conn.commands)
		}
		if got := fx.guest(t, "sha256sum /etc/acco/backend.env"); got != envBefore {
			t.Error("backend.env changed")
		}
		if got := fx.invocations(t, units); !maps.Equal(got, ids) {
			t.Errorf("units restarted: before %v after %v", ids, got)
		}
		// The change is still to be made: a check run with the right key sees it.
		run := fx.newRun(t)
		res, err := run.apply(ctx, fx, d, Options{Check: true})
		if err != nil {
			t.Fatal(err)
		}
		if got := changedFiles(res.Plan); !slices.Equal(got, []string{"host.app:file:/etc/acco/backend.env"}) {
			t.Errorf("check after the refused runs: changed files %v", got)
		}
	})

	step("reboot: every managed unit active again", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		start := time.Now()
		if err := fx.v.Reboot(ctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("reboot to SSH: %s", time.Since(start).Round(100*time.Millisecond))
		var st map[string]string
		for deadline := time.Now().Add(2 * time.Minute); ; {
			st = fx.activeStates(t, units)
			if allActive(st) || time.Now().After(deadline) {
				break
			}
			time.Sleep(2 * time.Second)
		}
		if !allActive(st) {
			t.Fatalf("after the reboot: %v", st)
		}
		if g := fx.greeting(t); g != "owed" {
			t.Errorf("backend greeting %q after the reboot", g)
		}
		// And acco finds nothing to do: same pinned key, one round trip.
		run := fx.newRun(t)
		res, err := run.apply(ctx, fx, fx.desired(t, "owed"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !res.Plan.Empty() || len(res.Plan.Restarts) != 0 || len(res.Started) != 0 || run.conn.sessions() != 1 {
			t.Errorf("after the reboot: changes %v, restarts %v, started %v, %d round trips", nonUnitChanges(res.Plan), res.Plan.Restarts, res.Started, run.conn.sessions())
		}
	})
}

// BenchmarkNoopConfigure measures a no-op acco configure of the VM: connect
// (host key pinned), one facts probe, an empty plan. facts-roundtrips/op is
// the SSH sessions per run (1).
func BenchmarkNoopConfigure(b *testing.B) {
	fx := getVM(b)
	fx.ensureConfigured(b)
	d := fx.desired(b, "hello")
	ctx := context.Background()
	var sessions, connects int64
	var connect time.Duration
	for b.Loop() {
		run := fx.newRun(b)
		res, err := run.apply(ctx, fx, d, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if !res.Plan.Empty() || len(res.Restarted) != 0 {
			b.Fatalf("not a no-op: %v %v", nonUnitChanges(res.Plan), res.Restarted)
		}
		sessions += run.conn.sessions()
		connects += int64(run.conn.connects())
		connect += run.conn.connect
	}
	b.ReportMetric(float64(sessions)/float64(b.N), "facts-roundtrips/op")
	b.ReportMetric(float64(connects)/float64(b.N), "ssh-connects/op")
	b.ReportMetric(float64(connect.Milliseconds())/float64(b.N), "connect-ms/op")
}

// BenchmarkNoopAnsible measures the same work done by an Ansible playbook
// (Debian's ansible): the same packages (apt), files (copy, owner and mode),
// artifact, units (systemd: enabled, started) and handlers (daemon-reload,
// restarts), against the same configured VM, where it changes nothing. It
// runs with Ansible's faster settings (pipelining on, no fact gathering).
func BenchmarkNoopAnsible(b *testing.B) {
	bin, err := exec.LookPath("ansible-playbook")
	if err != nil {
		b.Skip("ansible-playbook not found: install Debian's ansible (apt-get install ansible) to compare")
	}
	fx := getVM(b)
	fx.ensureConfigured(b)
	dir := b.TempDir()
	pb := fx.writePlaybook(b, dir, fx.desired(b, "hello"))
	play := func() (string, error) {
		cmd := exec.Command(bin, "-i", filepath.Join(dir, "inventory.ini"), pb)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "ANSIBLE_CONFIG="+filepath.Join(dir, "ansible.cfg"))
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	// The first run copies the archive where the playbook keeps it (acco
	// keeps a hash marker instead) and so unpacks it and restarts the
	// backend; every file and unit must already match. The second run must
	// change nothing, else the comparison is unfair.
	out, err := play()
	if err != nil {
		b.Fatalf("ansible-playbook: %v\n%s", err, out)
	}
	if out, err = play(); err != nil || !strings.Contains(out, "changed=0") {
		b.Fatalf("ansible-playbook's second run changed something (%v):\n%s", err, out)
	}
	var tasks int
	if i := strings.Index(out, "ok="); i >= 0 {
		fmt.Sscanf(out[i:], "ok=%d", &tasks)
	}
	for b.Loop() {
		if out, err := play(); err != nil || !strings.Contains(out, "changed=0") {
			b.Fatalf("ansible-playbook: %v\n%s", err, out)
		}
	}
	b.ReportMetric(float64(tasks), "tasks/op")
}

// writePlaybook writes an inventory, an ansible.cfg and a playbook that
// mirror d, and returns the playbook's path.
func (fx *vmFixture) writePlaybook(tb testing.TB, dir string, d Desired) string {
	tb.Helper()
	must := func(err error) {
		if err != nil {
			tb.Fatal(err)
		}
	}
	block, err := ssh.MarshalPrivateKey(fx.priv, "")
	must(err)
	keyFile := filepath.Join(dir, "id_ed25519")
	must(os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600))
	known := filepath.Join(dir, "known_hosts")
	line := fmt.Sprintf("[%s]:%d %s\n", fx.tg.Host.Address, fx.tg.Host.Port, authorized(fx.tg.HostKey))
	must(os.WriteFile(known, []byte(line), 0o600))
	must(os.WriteFile(filepath.Join(dir, "inventory.ini"), fmt.Appendf(nil,
		"app ansible_host=%s ansible_port=%d ansible_user=%s ansible_python_interpreter=/usr/bin/python3 ansible_ssh_private_key_file=%s\n",
		fx.tg.Host.Address, fx.tg.Host.Port, fx.tg.Host.User, keyFile), 0o600))
	must(os.WriteFile(filepath.Join(dir, "ansible.cfg"), fmt.Appendf(nil, `[defaults]
host_key_checking = True
interpreter_python = /usr/bin/python3
retry_files_enabled = False
stdout_callback = default
[ssh_connection]
pipelining = True
control_path_dir = %s
ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes
`, filepath.Join(dir, "cp"), known), 0o600))

	files := filepath.Join(dir, "files")
	must(os.MkdirAll(files, 0o755))
	var b strings.Builder
	q := func(s string) string { j, _ := json.Marshal(s); return string(j) }
	b.WriteString("- hosts: app\n  become: true\n  gather_facts: false\n  tasks:\n")
	var pkgs []string
	for _, p := range d.Packages {
		pkgs = append(pkgs, q(p.Name))
	}
	fmt.Fprintf(&b, "    - name: packages\n      apt:\n        name: [%s]\n        state: present\n        install_recommends: false\n", strings.Join(pkgs, ", "))
	for i, f := range d.Files {
		src := filepath.Join(files, fmt.Sprintf("f%02d", i))
		must(os.WriteFile(src, f.Content, 0o600))
		fmt.Fprintf(&b, "    - name: %s\n      copy:\n        src: %s\n        dest: %s\n        owner: %s\n        group: %s\n        mode: %q\n",
			q("file "+f.Path), q(src), q(f.Path), q(f.Owner), q(f.Group), fmt.Sprintf("%04o", f.Mode))
		if f.Sensitive {
			b.WriteString("      no_log: true\n")
		}
		var notify []string
		if isUnitFile(f.Path) {
			notify = append(notify, q("daemon-reload"))
		}
		if f.Restart != "" {
			notify = append(notify, q("restart "+f.Restart))
		}
		if len(notify) > 0 {
			fmt.Fprintf(&b, "      notify: [%s]\n", strings.Join(notify, ", "))
		}
	}
	for _, a := range d.Artifacts {
		fmt.Fprintf(&b, "    - name: %s\n      copy:\n        src: %s\n        dest: %s\n        mode: \"0644\"\n      notify: [%s, %s]\n",
			q("artifact "+a.Name), q(fx.artifact), q(strings.TrimRight(a.Dir, "/")+".tar.gz"), q("unpack "+a.Name), q("restart "+a.Restart))
	}
	for _, u := range d.Units {
		fmt.Fprintf(&b, "    - name: %s\n      systemd:\n        name: %s\n        state: started\n", q("unit "+u.Name), q(u.Name))
		if u.Enable {
			b.WriteString("        enabled: true\n")
		}
	}
	b.WriteString("  handlers:\n    - name: daemon-reload\n      systemd:\n        daemon_reload: true\n")
	for _, a := range d.Artifacts {
		dst := strings.TrimRight(a.Dir, "/")
		fmt.Fprintf(&b, "    - name: %s\n      shell: %s\n", q("unpack "+a.Name),
			q(fmt.Sprintf("set -e; rm -rf %[1]s.new; mkdir -p %[1]s.new; tar -xzf %[1]s.tar.gz -C %[1]s.new --strip-components=%[2]d; rm -rf %[1]s; mv %[1]s.new %[1]s", dst, a.Strip)))
	}
	for _, u := range d.Units {
		fmt.Fprintf(&b, "    - name: %s\n      systemd:\n        name: %s\n        state: restarted\n", q("restart "+u.Name), q(u.Name))
	}
	pb := filepath.Join(dir, "playbook.yml")
	must(os.WriteFile(pb, []byte(b.String()), 0o600))
	return pb
}
