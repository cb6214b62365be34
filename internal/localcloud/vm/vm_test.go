package vm_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/accoreboot/acco/internal/localcloud/vm"
)

// bootVM boots a VM for a test, or skips the test when that is not possible
// here (-short, QEMU or the image missing).
func bootVM(t *testing.T, opts vm.Options) *vm.VM {
	t.Helper()
	if testing.Short() {
		t.Skip("boots a QEMU VM (about 20 s under TCG): skipped in -short mode")
	}
	if opts.ImageDir == "" {
		opts.ImageDir = vm.DefaultImageDir()
	}
	if err := vm.ImageAvailable(opts.ImageDir); err != nil {
		t.Skipf("skipping: %v", err)
	}
	if opts.WorkDir == "" {
		opts.WorkDir = t.TempDir()
	}
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	v, err := vm.Boot(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("boot to SSH: %s (%s)", time.Since(start).Round(100*time.Millisecond), v.Accel())
	t.Cleanup(func() {
		if t.Failed() {
			if log, err := v.ConsoleLog(); err == nil {
				t.Logf("console log:\n%s", log)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		start := time.Now()
		if err := v.Stop(ctx); err != nil {
			t.Logf("stop: %v", err)
		} else {
			t.Logf("shut down in %s", time.Since(start).Round(100*time.Millisecond))
		}
	})
	return v
}

// The guest a test gets is a host acco can configure: the host key printed on
// the console is the one sshd presents, the debian user logs in with the
// handed-in key and has sudo, systemd comes up, and a reboot comes back with
// the same host key.
func TestBootSSHReboot(t *testing.T) {
	t.Parallel()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	// The caller's key only: the harness generates and authorizes its own.
	v := bootVM(t, vm.Options{Name: "boot-test", AuthorizedKey: string(ssh.MarshalAuthorizedKey(sshPub))})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	keys := v.HostKeys()
	if len(keys) == 0 {
		t.Fatal("no host keys parsed from the console")
	}
	for _, k := range keys {
		t.Logf("host key from the console: %s %s", k.Type(), ssh.FingerprintSHA256(k))
	}

	// Log in as acco would: with its own key and the console's host keys pinned.
	cfg := &ssh.ClientConfig{
		User:            "debian",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: vm.PinnedHostKeys(keys),
		Timeout:         30 * time.Second,
	}
	c, err := v.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("SSH with the pinned host key: %v", err)
	}
	defer c.Close()
	out := sshRun(t, c, "id -un; hostname; sudo -n id -u")
	if got := strings.Fields(out); len(got) != 3 || got[0] != "debian" || got[1] != "boot-test" || got[2] != "0" {
		t.Errorf("id -un; hostname; sudo -n id -u = %q, want debian, boot-test, 0", out)
	}

	state := systemState(t, c)
	t.Logf("systemctl is-system-running --wait: %s", state)

	// A host key other than the console's is refused before authentication.
	wrongPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	wrong, err := ssh.NewPublicKey(wrongPub)
	if err != nil {
		t.Fatal(err)
	}
	refused := false
	bad := *cfg
	bad.HostKeyCallback = func(host string, remote net.Addr, key ssh.PublicKey) error {
		err := vm.PinnedHostKeys([]ssh.PublicKey{wrong})(host, remote, key)
		refused = err != nil
		return err
	}
	if c2, err := v.Dial(ctx, &bad); err == nil {
		c2.Close()
		t.Fatal("SSH accepted a host key that was not pinned")
	} else if !refused {
		t.Fatalf("SSH failed before the host key check: %v", err)
	}

	// Reboot: SSH comes back from a new boot with the same, pinned, host key.
	before := v.BootID()
	start := time.Now()
	if err := v.Reboot(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("reboot to SSH: %s", time.Since(start).Round(100*time.Millisecond))
	if v.BootID() == before {
		t.Errorf("boot id %s unchanged across the reboot", before)
	}
	c3, err := v.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("SSH after the reboot with the host key pinned at first boot: %v", err)
	}
	defer c3.Close()
	if got := strings.TrimSpace(sshRun(t, c3, "cat /proc/sys/kernel/random/boot_id")); got != v.BootID() {
		t.Errorf("boot id after reboot = %s, want %s", got, v.BootID())
	}
	if n := strings.Count(mustConsole(t, v), "-----BEGIN SSH HOST KEY KEYS-----"); n != 2 {
		t.Errorf("the console shows %d host key blocks, want one per boot (2)", n)
	}
}

func mustConsole(t *testing.T, v *vm.VM) string {
	t.Helper()
	log, err := v.ConsoleLog()
	if err != nil {
		t.Fatal(err)
	}
	return log
}

// systemState waits for systemd to finish starting up; "degraded" is
// accepted (and its failed units printed), anything else fails the test.
func systemState(t *testing.T, c *ssh.Client) string {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Output("systemctl is-system-running --wait")
	s.Close()
	state := strings.TrimSpace(string(out))
	var exit *ssh.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("systemctl is-system-running: %v", err)
	}
	switch state {
	case "running":
	case "degraded":
		t.Logf("failed units:\n%s", sshRun(t, c, "systemctl --failed --no-legend --plain"))
	default:
		t.Errorf("system state %q, want running or degraded; failed units:\n%s", state, sshRun(t, c, "systemctl --failed --no-legend --plain"))
	}
	return state
}

func sshRun(t *testing.T, c *ssh.Client, command string) string {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.CombinedOutput(command)
	if err != nil {
		t.Fatalf("%s: %v: %s", command, err, out)
	}
	return string(out)
}

// A guest port asked for in ExtraHostFwd is reachable on the host, and a power
// cycle (QEMU killed and started again) keeps the disk and the host key.
func TestForwardedPortAndPowerCycle(t *testing.T) {
	t.Parallel()
	v := bootVM(t, vm.Options{Name: "fwd-test", ExtraHostFwd: []int{8080}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	if _, err := v.Run(ctx, "echo hello >/tmp/index.html && sudo -n systemd-run --unit=web python3 -m http.server 8080 --directory /tmp"); err != nil {
		t.Fatal(err)
	}
	addr := v.HostAddr(8080)
	if addr == "" {
		t.Fatal("HostAddr(8080) is empty")
	}
	var body string
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get("http://" + addr + "/index.html")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET http://%s/index.html: %v %q", addr, err, body)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if strings.TrimSpace(body) != "hello" {
		t.Errorf("guest web server answered %q, want hello", body)
	}

	if _, err := v.Run(ctx, "echo kept >/home/debian/marker && sync"); err != nil {
		t.Fatal(err)
	}
	keys, before := v.HostKeys(), v.BootID()
	start := time.Now()
	if err := v.PowerCycle(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("power cycle to SSH: %s", time.Since(start).Round(100*time.Millisecond))
	if v.BootID() == before {
		t.Errorf("boot id %s unchanged across the power cycle", before)
	}
	if got := v.HostKeys(); len(got) != len(keys) || !bytes.Equal(got[0].Marshal(), keys[0].Marshal()) {
		t.Errorf("host keys changed across the power cycle")
	}
	out, err := v.Run(ctx, "cat /home/debian/marker")
	if err != nil || strings.TrimSpace(out) != "kept" {
		t.Errorf("file written before the power cycle: %q, %v", out, err)
	}
}
