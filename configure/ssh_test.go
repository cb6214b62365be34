package configure

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
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
)

// sshTarget is a host reachable over real SSH for tests: a local sshd here;
// a VM from internal/localcloud/vm can provide the same fields.
type sshTarget struct {
	Host    Host
	Signer  ssh.Signer    // client key accepted by the host
	HostKey ssh.PublicKey // the key the host presents
	Console string        // console text with the cloud-init host key block
	Root    string        // a directory on the host the test may write in
}

func newKey(t *testing.T) (ssh.Signer, ed25519.PrivateKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, priv
}

func consoleFor(keys ...ssh.PublicKey) string {
	var b strings.Builder
	b.WriteString("[   12.345678] cloud-init[812]: Cloud-init v. 22.4.2 running 'modules:final'\n")
	b.WriteString("ci-info: no authorized SSH keys fingerprints found for user debian.\n")
	b.WriteString("<14>Nov 26 06:00:00 cloud-init: " + consoleBegin + "\n")
	for _, k := range keys {
		b.WriteString("<14>Nov 26 06:00:00 cloud-init: " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) + " root@app\n")
	}
	b.WriteString("<14>Nov 26 06:00:00 cloud-init: " + consoleEnd + "\r\n")
	b.WriteString("Debian GNU/Linux 12 app ttyS0\n")
	return b.String()
}

// startSSHD runs /usr/sbin/sshd on a free loopback port with a fresh host key
// and an authorized client key, as the current user (root here).
func startSSHD(t *testing.T) sshTarget {
	t.Helper()
	bin := "/usr/sbin/sshd"
	if _, err := os.Stat(bin); err != nil {
		t.Skip("no /usr/sbin/sshd (Debian package openssh-server): real SSH not tested")
	}
	if os.Geteuid() != 0 {
		t.Skip("sshd for this test needs root (privilege separation, login as root)")
	}
	dir := t.TempDir()
	hostSigner, hostPriv := newKey(t)
	block, err := ssh.MarshalPrivateKey(hostPriv, "")
	if err != nil {
		t.Fatal(err)
	}
	hostKeyPath := filepath.Join(dir, "ssh_host_ed25519_key")
	if err := os.WriteFile(hostKeyPath, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	client, _ := newKey(t)
	authz := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authz, ssh.MarshalAuthorizedKey(client.PublicKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cfg := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
AuthorizedKeysFile %s
PidFile %s
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowTcpForwarding yes
MaxSessions 50
LogLevel ERROR
`, port, hostKeyPath, authz, filepath.Join(dir, "sshd.pid"))
	cfgPath := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-D", "-e", "-f", cfgPath)
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("sshd log:\n%s", logs.String())
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if i > 100 {
			t.Fatalf("sshd did not listen on %s: %v\n%s", addr, err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	root := filepath.Join(dir, "root")
	os.MkdirAll(root, 0o755)
	return sshTarget{
		Host:    Host{Name: "app", Address: "127.0.0.1", Port: port, User: "root"},
		Signer:  client,
		HostKey: hostSigner.PublicKey(),
		Console: consoleFor(hostSigner.PublicKey()),
		Root:    root,
	}
}

type memKeys struct {
	mu   sync.Mutex
	keys map[string][]string
	pins int
}

func (m *memKeys) HostKeys(host string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.keys[host]
}

func (m *memKeys) PinHostKeys(_ context.Context, host, _ string, keys []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.keys == nil {
		m.keys = map[string][]string{}
	}
	m.keys[host] = keys
	m.pins++
	return nil
}

func authorized(k ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

func TestSSHHostKeyVerification(t *testing.T) {
	tg := startSSHD(t)
	ctx := context.Background()
	other, _ := newKey(t)

	t.Run("pinned key mismatch is refused and not retried", func(t *testing.T) {
		keys := &memKeys{keys: map[string][]string{"app": {authorized(other.PublicKey())}}}
		c := &SSHConnector{Signer: tg.Signer, Keys: keys, Retry: 30 * time.Second}
		start := time.Now()
		_, err := c.Connect(ctx, tg.Host)
		if !errors.Is(err, ErrHostKeyMismatch) {
			t.Fatalf("err = %v, want ErrHostKeyMismatch", err)
		}
		if time.Since(start) > 10*time.Second {
			t.Error("a host key mismatch was retried")
		}
	})
	t.Run("first contact without a console is refused", func(t *testing.T) {
		c := &SSHConnector{Signer: tg.Signer, Keys: &memKeys{}}
		if _, err := c.Connect(ctx, tg.Host); !errors.Is(err, ErrHostKeyMismatch) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("first contact with other keys on the console is refused", func(t *testing.T) {
		keys := &memKeys{}
		c := &SSHConnector{Signer: tg.Signer, Keys: keys, Console: ConsoleFunc(func(context.Context, string) (string, error) {
			return consoleFor(other.PublicKey()), nil
		})}
		if _, err := c.Connect(ctx, tg.Host); !errors.Is(err, ErrHostKeyMismatch) {
			t.Fatalf("err = %v", err)
		}
		if keys.pins != 0 {
			t.Error("a refused key was pinned")
		}
	})
	t.Run("console without keys yet is retried, then accepted and pinned", func(t *testing.T) {
		keys := &memKeys{}
		calls := 0
		c := &SSHConnector{Signer: tg.Signer, Keys: keys, Retry: 20 * time.Second, Console: ConsoleFunc(func(context.Context, string) (string, error) {
			calls++
			if calls == 1 {
				return "booting...\n", nil
			}
			return tg.Console, nil
		})}
		r, err := c.Connect(ctx, tg.Host)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if got := keys.HostKeys("app"); !slices.Equal(got, []string{authorized(tg.HostKey)}) {
			t.Errorf("pinned %v", got)
		}
		// The pinned key now suffices, with no console.
		c2 := &SSHConnector{Signer: tg.Signer, Keys: keys}
		r2, err := c2.Connect(ctx, tg.Host)
		if err != nil {
			t.Fatal(err)
		}
		r2.Close()
	})
}

type countingConnector struct {
	Connector
	mu      sync.Mutex
	runners []*sshRunner
}

func (c *countingConnector) Connect(ctx context.Context, h Host) (Runner, error) {
	r, err := c.Connector.Connect(ctx, h)
	if err == nil {
		c.mu.Lock()
		c.runners = append(c.runners, r.(*sshRunner))
		c.mu.Unlock()
	}
	return r, err
}

func TestSSHConfigureFilesOneRoundTrip(t *testing.T) {
	tg := startSSHD(t)
	ctx := context.Background()
	keys := &memKeys{keys: map[string][]string{"app": {authorized(tg.HostKey)}}}
	conn := &countingConnector{Connector: &SSHConnector{Signer: tg.Signer, Keys: keys, Secrets: []string{secret}}}
	desired := func(v string) Desired {
		return Desired{
			Commands: []Command{{Name: "marker", Creates: filepath.Join(tg.Root, "marker"), Script: "touch " + shellQuote(filepath.Join(tg.Root, "marker"))}},
			Files: []File{
				{Path: filepath.Join(tg.Root, "etc", "app.conf"), Owner: "root", Group: "root", Mode: 0o640, Content: []byte("name = " + v + "\npassword = " + secret + "\n"), Validate: "grep -q name {}"},
				{Path: filepath.Join(tg.Root, "etc", "secret.env"), Owner: "root", Group: "root", Mode: 0o600, Content: []byte("T=" + secret + "\n"), Sensitive: true},
			},
		}
	}
	j := newMemJournal(nil)
	run := func(d Desired, opts Options) *Result {
		t.Helper()
		opts.Journal = j
		opts.Secrets = []string{secret}
		res, err := Run(ctx, conn, []Target{{Host: tg.Host, Desired: d}}, opts)
		if err != nil {
			t.Fatal(err)
		}
		return res[0]
	}
	sessions := func() int64 { return conn.runners[len(conn.runners)-1].Sessions() }

	res := run(desired("a"), Options{})
	if res.Plan.Empty() {
		t.Fatal("first run planned nothing")
	}
	got, err := os.ReadFile(filepath.Join(tg.Root, "etc", "app.conf"))
	if err != nil || !strings.Contains(string(got), "name = a") {
		t.Fatalf("app.conf = %q, %v", got, err)
	}
	st, _ := os.Stat(filepath.Join(tg.Root, "etc", "secret.env"))
	if st.Mode().Perm() != 0o600 {
		t.Errorf("secret.env mode %o", st.Mode().Perm())
	}

	res = run(desired("a"), Options{})
	if !res.Plan.Empty() {
		t.Errorf("second run planned %+v", res.Plan.Changes)
	}
	if n := sessions(); n != 1 {
		t.Errorf("no-op run opened %d SSH sessions, want 1 (the facts probe)", n)
	}

	res = run(desired("b"), Options{Check: true, Diff: true})
	if n := sessions(); n != 2 {
		t.Errorf("check --diff opened %d sessions, want 2", n)
	}
	var diff string
	for _, c := range res.Plan.Changes {
		if strings.HasSuffix(c.Address, "app.conf") {
			diff = c.Diff
		}
	}
	if !strings.Contains(diff, "-name = a") || !strings.Contains(diff, "+name = b") || strings.Contains(diff, secret) {
		t.Errorf("diff over SSH:\n%s", diff)
	}
	if got, _ := os.ReadFile(filepath.Join(tg.Root, "etc", "app.conf")); !strings.Contains(string(got), "name = a") {
		t.Error("check mode changed the file")
	}

	// A validation failure over SSH keeps the old file; the error (here
	// the staged file, which holds the secret) is masked.
	d := desired("c")
	d.Files[0].Validate = "grep -q nope {} || { cat {} >&2; exit 1; }"
	_, err = Run(ctx, conn, []Target{{Host: tg.Host, Desired: d}}, Options{Journal: j, Secrets: []string{secret}})
	if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "(sensitive)") {
		t.Errorf("validation failure error = %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(tg.Root, "etc", "app.conf")); !strings.Contains(string(got), "name = a") {
		t.Errorf("a file that failed validation replaced the old one: %q", got)
	}
}

func TestSSHTunnel(t *testing.T) {
	tg := startSSHD(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			c.Write([]byte("hello through the tunnel"))
			c.Close()
		}
	}()
	keys := &memKeys{keys: map[string][]string{"app": {authorized(tg.HostKey)}}}
	r, err := (&SSHConnector{Signer: tg.Signer, Keys: keys}).Connect(context.Background(), tg.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := r.DialContext(context.Background(), "tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 64)
	n, _ := c.Read(buf)
	if string(buf[:n]) != "hello through the tunnel" {
		t.Errorf("read %q", buf[:n])
	}
}

// TestParseConsoleKeys: the keys are those of the first complete block
// cloud-init printed, so nothing printed on the console later (a reboot's
// block, a service or a user writing a forged block to /dev/console) can
// override them.
func TestParseConsoleKeys(t *testing.T) {
	a, _ := newKey(t)
	b, _ := newKey(t)
	forged := "-----BEGIN SSH HOST KEY KEYS-----\n" + authorized(b.PublicKey()) + " root@app\n-----END SSH HOST KEY KEYS-----\n"
	for _, tc := range []struct {
		name    string
		console string
		want    ssh.PublicKey // nil: ErrNoConsoleKeys
	}{
		{name: "one boot", console: consoleFor(a.PublicKey()), want: a.PublicKey()},
		{name: "two boots: the first block wins", console: consoleFor(a.PublicKey()) + "reboot\n" + consoleFor(b.PublicKey()), want: a.PublicKey()},
		{name: "a block printed later does not override", console: consoleFor(a.PublicKey()) + "app login: " + forged, want: a.PublicKey()},
		{name: "an unterminated block before the first complete one", console: "no keys here\n" + consoleBegin + "\n" + consoleFor(a.PublicKey()), want: a.PublicKey()},
		{name: "an unterminated block", console: "no keys here\n" + consoleBegin + "\n"},
		{name: "a first block without a key", console: consoleFor() + consoleFor(b.PublicKey())},
		{name: "no block", console: "Debian GNU/Linux 12 app ttyS0\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := ParseConsoleKeys(tc.console)
			if tc.want == nil {
				if !errors.Is(err, ErrNoConsoleKeys) {
					t.Fatalf("keys %v, err %v: want ErrNoConsoleKeys", keys, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != 1 || authorized(keys[0]) != authorized(tc.want) {
				var got []string
				for _, k := range keys {
					got = append(got, authorized(k))
				}
				t.Errorf("keys = %v, want %s", got, authorized(tc.want))
			}
		})
	}
}

// TestCommandDeadline: a command that outlives the connector's
// CommandTimeout fails with an error that says so.
func TestCommandDeadline(t *testing.T) {
	tg := startSSHD(t)
	keys := &memKeys{keys: map[string][]string{"app": {authorized(tg.HostKey)}}}
	r, err := (&SSHConnector{Signer: tg.Signer, Keys: keys, CommandTimeout: 300 * time.Millisecond}).Connect(t.Context(), tg.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = r.Run(t.Context(), "sleep 60", nil)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "did not finish within 300ms") {
		t.Fatalf("Run(sleep 60) = %v, want the command deadline", err)
	}
}
