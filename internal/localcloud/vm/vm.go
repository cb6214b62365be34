package vm

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// Accelerators for Options.Accel.
const (
	AccelAuto = "auto"
	AccelKVM  = "kvm"
	AccelTCG  = "tcg"
)

// AccelEnv, when set, is used for an Options.Accel that is empty.
const AccelEnv = "ACCO_VM_ACCEL"

// ConsoleFile is the file in the work directory that receives the guest's
// serial console, all boots appended.
const ConsoleFile = "console.log"

// credentialName is the systemd credential the guest's first-boot unit
// installs as the debian user's authorized_keys.
const credentialName = "acco.ssh.authorized_keys.debian"

// Options describe one VM. Only AuthorizedKey or Signer matters to most callers.
type Options struct {
	// ImageDir holds vmlinuz, initrd.img and base.qcow2; DefaultImageDir() when empty.
	ImageDir string
	// WorkDir receives the overlay disk, the console log and the QMP socket.
	// When empty a temporary directory is used and removed by Stop and Kill;
	// a given WorkDir is left in place (handy for reading console.log).
	WorkDir string
	// Name is the guest host name and the QEMU process name; "acco-vm" when empty.
	Name string
	// MemoryMB is the guest memory; 512 when zero.
	MemoryMB int
	// CPUs is the number of virtual CPUs; 1 when zero (under TCG a second vCPU
	// mostly costs host CPU).
	CPUs int
	// User is the login user; "debian" when empty (the image's only login user).
	User string
	// AuthorizedKey is a public key line (authorized_keys format) installed for
	// the debian user at boot.
	AuthorizedKey string
	// Signer is the harness's own key, used for the readiness check, Reboot,
	// Dial and Run. When nil an ed25519 key is generated; it is authorized in
	// the guest next to AuthorizedKey and returned by VM.Signer.
	Signer ssh.Signer
	// Accel is "auto" (KVM when usable, else TCG; a failed KVM boot falls back
	// to TCG), "kvm" or "tcg". Empty means $ACCO_VM_ACCEL, else "auto".
	Accel string
	// ExtraHostFwd lists guest TCP ports to forward from free loopback ports
	// as well as 22; see VM.HostAddr.
	ExtraHostFwd []int
	// HostIP is the host address the forwarded ports listen on; 127.0.0.1
	// when empty. Any address of 127.0.0.0/8 works on Linux without
	// configuration.
	HostIP string
	// FixedPorts, when true, forwards each guest port P (22 and
	// ExtraHostFwd) from HostIP:P instead of from a free port, so the guest
	// answers on its usual ports at HostIP. A port that is taken makes Boot
	// fail.
	FixedPorts bool
	// KeepDisk, when true, boots from the overlay disk a previous VM left in
	// WorkDir (same Name) when there is one, instead of a fresh copy of the
	// image: the guest keeps its files and host keys.
	KeepDisk bool
	// BootTimeout bounds each wait for SSH after a (re)boot, on top of the
	// context; 5 minutes when zero.
	BootTimeout time.Duration
	// Logf, when set, receives progress lines (t.Logf fits).
	Logf func(format string, args ...any)
}

// VM is a running QEMU guest. Its methods are safe for concurrent use.
type VM struct {
	opts    Options
	dir     string
	ownDir  bool
	overlay string
	console string
	qmpPath string
	signer  ssh.Signer
	keys    string // authorized_keys content handed to the guest

	mu       sync.Mutex
	accel    string
	fwd      map[int]int // guest port -> host port
	proc     *process
	hostKeys []ssh.PublicKey
	bootID   string
	stopped  bool
}

type process struct {
	cmd    *exec.Cmd
	done   chan struct{}
	err    error
	stderr *os.File
}

// Boot creates an overlay on the image, starts QEMU and returns once the
// console has printed the host keys and an SSH login pinned to them works.
// On failure the error carries the tail of the console log and QEMU is gone.
func Boot(ctx context.Context, opts Options) (*VM, error) {
	if opts.ImageDir == "" {
		opts.ImageDir = DefaultImageDir()
	}
	if err := ImageAvailable(opts.ImageDir); err != nil {
		return nil, err
	}
	imageDir, err := filepath.Abs(opts.ImageDir)
	if err != nil {
		return nil, err
	}
	opts.ImageDir = imageDir
	if opts.Name == "" {
		opts.Name = "acco-vm"
	}
	if opts.MemoryMB == 0 {
		opts.MemoryMB = 512
	}
	if opts.CPUs == 0 {
		opts.CPUs = 1
	}
	if opts.User == "" {
		opts.User = "debian"
	}
	if opts.BootTimeout == 0 {
		opts.BootTimeout = 5 * time.Minute
	}
	if opts.HostIP == "" {
		opts.HostIP = "127.0.0.1"
	}
	if ip := net.ParseIP(opts.HostIP); ip == nil || ip.To4() == nil {
		return nil, fmt.Errorf("vm: host address %q is not an IPv4 address", opts.HostIP)
	}
	if opts.Accel == "" {
		opts.Accel = os.Getenv(AccelEnv)
	}
	if opts.Accel == "" {
		opts.Accel = AccelAuto
	}
	switch opts.Accel {
	case AccelAuto, AccelKVM, AccelTCG:
	default:
		return nil, fmt.Errorf("vm: unknown accelerator %q (want auto, kvm or tcg)", opts.Accel)
	}
	seen := map[int]bool{22: true}
	for _, p := range opts.ExtraHostFwd {
		if p <= 0 || p > 65535 || seen[p] {
			return nil, fmt.Errorf("vm: bad or repeated extra forwarded guest port %d", p)
		}
		seen[p] = true
	}

	v := &VM{opts: opts, signer: opts.Signer}
	if v.signer == nil {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		if v.signer, err = ssh.NewSignerFromKey(priv); err != nil {
			return nil, err
		}
	}
	v.keys = authorizedKeys(opts.AuthorizedKey, v.signer.PublicKey())

	if opts.WorkDir == "" {
		if v.dir, err = os.MkdirTemp("", "acco-vm-"); err != nil {
			return nil, err
		}
		v.ownDir = true
	} else {
		if v.dir, err = filepath.Abs(opts.WorkDir); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(v.dir, 0o755); err != nil {
			return nil, err
		}
	}
	v.overlay = filepath.Join(v.dir, opts.Name+".qcow2")
	v.console = filepath.Join(v.dir, ConsoleFile)
	v.qmpPath = filepath.Join(v.dir, "qmp.sock")

	if err := v.boot(ctx); err != nil {
		v.Kill()
		return nil, err
	}
	return v, nil
}

// boot runs the first boot, with the KVM-to-TCG fallback and retries when a
// picked loopback port was taken in the meantime.
func (v *VM) boot(ctx context.Context) error {
	accel := v.opts.Accel
	if accel == AccelAuto {
		if ok, why := kvmUsable(); ok {
			accel = AccelKVM
		} else {
			accel = AccelTCG
			v.logf("vm %s: using TCG: %s", v.opts.Name, why)
		}
	}
	keep := false
	if v.opts.KeepDisk {
		if st, err := os.Stat(v.overlay); err == nil && st.Mode().IsRegular() {
			keep = true
			v.logf("vm %s: booting the disk kept in %s", v.opts.Name, v.overlay)
		}
	}
	for attempt := 0; ; attempt++ {
		if !keep {
			if err := v.newOverlay(ctx); err != nil {
				return err
			}
		}
		if err := v.pickPorts(); err != nil {
			return err
		}
		timeout := v.opts.BootTimeout
		if accel == AccelKVM && v.opts.Accel == AccelAuto && timeout > kvmAttemptTimeout {
			// A KVM that can run the guest boots it within seconds; don't
			// wait the full TCG budget before falling back.
			timeout = kvmAttemptTimeout
		}
		start := time.Now()
		err := v.start(accel)
		if err == nil {
			err = v.waitReady(ctx, 0, "", nil, timeout)
		}
		if err == nil {
			v.logf("vm %s: SSH ready on %s after %s (%s)", v.opts.Name, v.SSHAddr(), time.Since(start).Round(100*time.Millisecond), accel)
			return nil
		}
		v.killProcess()
		switch {
		case ctx.Err() != nil:
			return err
		case attempt < 3 && !v.opts.FixedPorts && v.portClash():
			v.logf("vm %s: a forwarded port was taken, retrying: %v", v.opts.Name, err)
		case accel == AccelKVM && v.opts.Accel == AccelAuto:
			v.logf("vm %s: KVM boot failed, falling back to TCG: %v", v.opts.Name, err)
			accel = AccelTCG
		default:
			return err
		}
		v.resetConsole()
	}
}

func (v *VM) newOverlay(ctx context.Context) error {
	_ = os.Remove(v.overlay)
	backing := filepath.Join(v.opts.ImageDir, DiskFile) // absolute: qemu-img resolves relative paths from the overlay
	out, err := exec.CommandContext(ctx, "qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", backing, v.overlay).CombinedOutput()
	if err != nil {
		return fmt.Errorf("vm: qemu-img create overlay: %v: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

func (v *VM) resetConsole() {
	_ = os.Remove(v.console)
}

func (v *VM) pickPorts() error {
	guest := append([]int{22}, v.opts.ExtraHostFwd...)
	fwd := make(map[int]int, len(guest))
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for _, g := range guest {
		if v.opts.FixedPorts {
			// Fail early, with a clear message, when the port is taken.
			l, err := net.Listen("tcp", net.JoinHostPort(v.opts.HostIP, strconv.Itoa(g)))
			if err != nil {
				return fmt.Errorf("vm %s: forward guest port %d from %s: %w", v.opts.Name, g, v.opts.HostIP, err)
			}
			ls = append(ls, l)
			fwd[g] = g
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort(v.opts.HostIP, "0"))
		if err != nil {
			return fmt.Errorf("vm: pick a loopback port: %w", err)
		}
		ls = append(ls, l)
		fwd[g] = l.Addr().(*net.TCPAddr).Port
	}
	v.mu.Lock()
	v.fwd = fwd
	v.mu.Unlock()
	return nil
}

// portClash tells whether QEMU's last exit was due to a host port in use.
func (v *VM) portClash() bool {
	b, _ := os.ReadFile(filepath.Join(v.dir, "qemu.stderr"))
	s := string(b)
	return strings.Contains(s, "hostfwd") || strings.Contains(s, "host forwarding")
}

// qemuArgs is the QEMU command line for one start of the guest.
func (v *VM) qemuArgs(accel string) []string {
	v.mu.Lock()
	fwd := v.fwd
	v.mu.Unlock()
	netdev := "user,id=net0"
	ports := make([]int, 0, len(fwd))
	ports = append(ports, 22)
	ports = append(ports, v.opts.ExtraHostFwd...)
	for _, g := range ports {
		netdev += fmt.Sprintf(",hostfwd=tcp:%s:%d-:%d", v.opts.HostIP, fwd[g], g)
	}
	cmdline := strings.Join([]string{
		"root=/dev/vda", "rw", "console=ttyS0", "net.ifnames=0", "quiet",
		"systemd.hostname=" + hostname(v.opts.Name),
	}, " ")
	cred := "io.systemd.credential.binary:" + credentialName + "=" + base64.StdEncoding.EncodeToString([]byte(v.keys))
	args := []string{
		"-name", qemuEscape(v.opts.Name),
		"-nodefaults", "-no-user-config", "-display", "none",
		"-machine", "q35",
		"-m", strconv.Itoa(v.opts.MemoryMB),
		"-smp", strconv.Itoa(v.opts.CPUs),
		"-kernel", filepath.Join(v.opts.ImageDir, KernelFile),
		"-initrd", filepath.Join(v.opts.ImageDir, InitrdFile),
		"-append", cmdline,
		"-drive", "file=" + qemuEscape(v.overlay) + ",if=virtio,format=qcow2,discard=unmap",
		"-netdev", netdev,
		"-device", "virtio-net-pci,netdev=net0",
		"-device", "virtio-rng-pci",
		// append=on: a cold restart must not truncate the earlier boots' output.
		"-chardev", "file,id=ser0,path=" + qemuEscape(v.console) + ",append=on",
		"-serial", "chardev:ser0",
		"-qmp", "unix:" + qemuEscape(v.qmpPath) + ",server=on,wait=off",
		"-smbios", "type=11,value=" + cred,
	}
	if accel == AccelKVM {
		args = append(args, "-accel", "kvm", "-cpu", "host")
	} else {
		// qemu64, not max: with max, warm reboots under TCG take 2-4 times longer.
		args = append(args, "-accel", "tcg,tb-size=64", "-cpu", "qemu64")
	}
	return args
}

// start launches QEMU; the console log is appended to.
func (v *VM) start(accel string) error {
	_ = os.Remove(v.qmpPath)
	stderr, err := os.Create(filepath.Join(v.dir, "qemu.stderr"))
	if err != nil {
		return err
	}
	cmd := exec.Command("qemu-system-x86_64", v.qemuArgs(accel)...)
	cmd.Stdout = stderr
	cmd.Stderr = stderr
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		stderr.Close()
		return fmt.Errorf("vm: start qemu: %w", err)
	}
	p := &process{cmd: cmd, done: make(chan struct{}), stderr: stderr}
	go func() {
		p.err = cmd.Wait()
		stderr.Close()
		close(p.done)
	}()
	v.mu.Lock()
	v.accel = accel
	v.proc = p
	v.mu.Unlock()
	v.logf("vm %s: started qemu (pid %d, %s) in %s", v.opts.Name, cmd.Process.Pid, accel, v.dir)
	return nil
}

// waitReady waits for a host key block in the console log past offset and an
// SSH login whose boot id differs from prevBootID. The login pins pinned, or
// the keys just printed when pinned is nil.
func (v *VM) waitReady(ctx context.Context, offset int64, prevBootID string, pinned []ssh.PublicKey, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v.mu.Lock()
	p := v.proc
	v.mu.Unlock()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		select {
		case <-p.done:
			return v.failure(fmt.Errorf("qemu exited: %v: %s", p.err, v.stderrText()))
		case <-ctx.Done():
			if lastErr == nil {
				lastErr = errors.New("no host keys on the console yet")
			}
			return v.failure(fmt.Errorf("no SSH login within %s: %w (last: %v)", timeout, ctx.Err(), lastErr))
		case <-tick.C:
		}
		log, err := readFrom(v.console, offset)
		if err != nil {
			lastErr = err
			continue
		}
		printed, err := ParseConsoleHostKeys(log)
		if err != nil {
			lastErr = err
			continue
		}
		keys := pinned
		if keys == nil {
			keys = printed
		}
		id, err := v.probe(ctx, keys)
		if err != nil {
			lastErr = err
			continue
		}
		if id == prevBootID {
			lastErr = errors.New("SSH still reaches the previous boot")
			continue
		}
		v.mu.Lock()
		v.hostKeys = keys
		v.bootID = id
		v.mu.Unlock()
		return nil
	}
}

// probe logs in with the harness key, pinning keys, and returns the boot id.
func (v *VM) probe(ctx context.Context, keys []ssh.PublicKey) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	c, err := v.dial(ctx, v.clientConfig(v.opts.User, keys))
	if err != nil {
		return "", err
	}
	defer c.Close()
	out, err := run(ctx, c, "cat /proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(out), nil
}

func (v *VM) failure(err error) error {
	tail := "(empty)"
	if log, rerr := os.ReadFile(v.console); rerr == nil && len(log) > 0 {
		lines := strings.Split(strings.TrimRight(strings.ReplaceAll(string(log), "\r", ""), "\n"), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		tail = strings.Join(lines, "\n")
	}
	return fmt.Errorf("vm %s: %w\n--- console log %s (tail) ---\n%s", v.opts.Name, err, v.console, tail)
}

func (v *VM) stderrText() string {
	b, _ := os.ReadFile(filepath.Join(v.dir, "qemu.stderr"))
	return strings.TrimSpace(string(b))
}

func readFrom(path string, offset int64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return "", err
	}
	b, err := io.ReadAll(f)
	return string(b), err
}

func (v *VM) consoleSize() int64 {
	st, err := os.Stat(v.console)
	if err != nil {
		return 0
	}
	return st.Size()
}

// SSHAddr is the host:port forwarded to the guest's port 22.
func (v *VM) SSHAddr() string { return v.HostAddr(22) }

// HostAddr is the host:port (on Options.HostIP) forwarded to a guest port
// (22 or one of Options.ExtraHostFwd), or "" for a port that is not
// forwarded.
func (v *VM) HostAddr(guestPort int) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	p, ok := v.fwd[guestPort]
	if !ok {
		return ""
	}
	return net.JoinHostPort(v.opts.HostIP, strconv.Itoa(p))
}

// HostKeys are the guest's SSH host keys as printed on its console at boot.
func (v *VM) HostKeys() []ssh.PublicKey {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]ssh.PublicKey(nil), v.hostKeys...)
}

// BootID is the guest's /proc/sys/kernel/random/boot_id, read when SSH came up.
func (v *VM) BootID() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.bootID
}

// Accel is the accelerator QEMU runs with: "kvm" or "tcg".
func (v *VM) Accel() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.accel
}

// Name is the VM's name, also its host name.
func (v *VM) Name() string { return v.opts.Name }

// User is the login user.
func (v *VM) User() string { return v.opts.User }

// Signer is the harness key authorized for the login user.
func (v *VM) Signer() ssh.Signer { return v.signer }

// WorkDir holds the overlay, console.log and qemu.stderr.
func (v *VM) WorkDir() string { return v.dir }

// ConsoleLog is everything the guest wrote on its serial console, all boots.
func (v *VM) ConsoleLog() (string, error) {
	b, err := os.ReadFile(v.console)
	return string(b), err
}

// ClientConfig is an SSH client configuration for user (the login user when
// empty) with the harness key and the host keys from the console pinned.
func (v *VM) ClientConfig(user string) *ssh.ClientConfig {
	if user == "" {
		user = v.opts.User
	}
	return v.clientConfig(user, v.HostKeys())
}

func (v *VM) clientConfig(user string, keys []ssh.PublicKey) *ssh.ClientConfig {
	return &ssh.ClientConfig{
		User:            user,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(v.signer)},
		HostKeyCallback: PinnedHostKeys(keys),
		Timeout:         15 * time.Second,
	}
}

// Dial opens an SSH connection to the guest with cfg, or ClientConfig("")
// when cfg is nil. The handshake is bounded by ctx.
func (v *VM) Dial(ctx context.Context, cfg *ssh.ClientConfig) (*ssh.Client, error) {
	if cfg == nil {
		cfg = v.ClientConfig("")
	}
	return v.dial(ctx, cfg)
}

func (v *VM) dial(ctx context.Context, cfg *ssh.ClientConfig) (*ssh.Client, error) {
	addr := v.SSHAddr()
	d := net.Dialer{Timeout: cfg.Timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	// With user-mode networking the port accepts while the guest is down;
	// the handshake then hangs, so bound it.
	deadline := time.Now().Add(cfg.Timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)
	// A cancelled ctx ends the handshake at once.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	stop()
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}

// Run runs a shell command as the login user on a new connection and returns
// its standard output; a failure carries standard error.
func (v *VM) Run(ctx context.Context, command string) (string, error) {
	c, err := v.Dial(ctx, nil)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return run(ctx, c, command)
}

func run(ctx context.Context, c *ssh.Client, command string) (string, error) {
	s, err := c.NewSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	var stdout, stderr bytes.Buffer
	s.Stdout = &stdout
	s.Stderr = &stderr
	done := make(chan error, 1)
	go func() { done <- s.Run(command) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		// Closing the connection ends Run; its output is read once the
		// session's copies into the buffers have stopped.
		c.Close()
		<-done
		return stdout.String(), ctx.Err()
	}
	if err != nil {
		return stdout.String(), fmt.Errorf("%q: %w: %s", command, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Reboot reboots the guest with `sudo systemctl reboot` over SSH (a warm
// reset; QEMU keeps running) and returns once SSH answers, with the pinned
// host keys, from a new boot (a new boot id and a new host key block on the
// console).
func (v *VM) Reboot(ctx context.Context) error {
	old := v.BootID()
	offset := v.consoleSize()
	c, err := v.Dial(ctx, nil)
	if err != nil {
		return fmt.Errorf("vm %s: reboot: %w", v.opts.Name, err)
	}
	_, err = run(ctx, c, "sudo -n systemctl reboot")
	c.Close()
	var exit *ssh.ExitError
	if errors.As(err, &exit) {
		return fmt.Errorf("vm %s: reboot: %w", v.opts.Name, err)
	}
	// Other errors are the connection going away under the command.
	return v.waitReady(ctx, offset, old, v.HostKeys(), v.opts.BootTimeout)
}

// PowerCycle kills QEMU (like pulling the power) and starts it again on the
// same disk, then waits for SSH as Reboot does.
func (v *VM) PowerCycle(ctx context.Context) error {
	old := v.BootID()
	v.killProcess()
	offset := v.consoleSize()
	if err := v.start(v.Accel()); err != nil {
		return err
	}
	return v.waitReady(ctx, offset, old, v.HostKeys(), v.opts.BootTimeout)
}

// Stop shuts the guest down (ACPI power button through QMP) and waits for
// QEMU to exit; when ctx ends first QEMU is killed. A temporary WorkDir is
// removed.
func (v *VM) Stop(ctx context.Context) error {
	v.mu.Lock()
	p := v.proc
	v.mu.Unlock()
	var err error
	if p != nil && !exited(p) {
		if qerr := qmpCommand(ctx, v.qmpPath, "system_powerdown"); qerr != nil {
			err = fmt.Errorf("vm %s: powerdown: %w", v.opts.Name, qerr)
		} else {
			select {
			case <-p.done:
			case <-ctx.Done():
				err = fmt.Errorf("vm %s: no shutdown: %w; killed", v.opts.Name, ctx.Err())
			}
		}
	}
	v.Kill()
	return err
}

// Kill ends QEMU at once and removes a temporary WorkDir. It is safe to call
// more than once, and after Stop.
func (v *VM) Kill() {
	v.killProcess()
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.stopped {
		return
	}
	v.stopped = true
	if v.ownDir {
		_ = os.RemoveAll(v.dir)
	}
}

func (v *VM) killProcess() {
	v.mu.Lock()
	p := v.proc
	v.mu.Unlock()
	if p == nil {
		return
	}
	if !exited(p) {
		_ = p.cmd.Process.Kill()
	}
	<-p.done
}

func exited(p *process) bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (v *VM) logf(format string, args ...any) {
	if v.opts.Logf != nil {
		v.opts.Logf(format, args...)
	}
}

// Seams for tests of the KVM-to-TCG fallback.
var (
	kvmUsable         = KVMUsable
	kvmAttemptTimeout = 90 * time.Second
)

// KVMUsable tells whether QEMU can use KVM here, and if not why. A host whose
// KVM is kvm_pvm (a paravirtual nested KVM, as on Firecracker-based CI
// machines) reports false: it initialises fine but cannot boot a stock kernel.
func KVMUsable() (bool, string) {
	if _, err := os.Stat("/sys/module/kvm_pvm"); err == nil {
		return false, "the host's KVM is kvm_pvm, which cannot boot a stock Debian kernel"
	}
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false, fmt.Sprintf("/dev/kvm is not usable: %v", err)
	}
	f.Close()
	return true, ""
}

// authorizedKeys is the authorized_keys content handed to the guest.
func authorizedKeys(line string, harness ssh.PublicKey) string {
	var b strings.Builder
	if l := strings.TrimSpace(line); l != "" {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	b.WriteString(strings.TrimSpace(string(ssh.MarshalAuthorizedKey(harness))))
	b.WriteString(" acco-vm-harness\n")
	return b.String()
}

// hostname turns a VM name into a valid host name.
func hostname(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	h := strings.Trim(b.String(), "-")
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-")
	}
	if h == "" {
		h = "acco-vm"
	}
	return h
}

// qemuEscape doubles commas, QEMU's escape inside an option value.
func qemuEscape(s string) string { return strings.ReplaceAll(s, ",", ",,") }
