package configure

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// KeyStore keeps the host keys pinned for each host (state.Hosts).
type KeyStore interface {
	// HostKeys returns the keys pinned for the host, in authorized_keys
	// format; none on first contact.
	HostKeys(host string) []string
	// PinHostKeys records the host's keys after a first contact verified
	// against its console.
	PinHostKeys(ctx context.Context, host, address string, keys []string) error
}

// ConsoleSource returns what a host printed on its console: Nova's console
// output for a real instance, the serial log for a local VM.
type ConsoleSource interface {
	ConsoleOutput(ctx context.Context, host string) (string, error)
}

// ConsoleFunc adapts a function to ConsoleSource.
type ConsoleFunc func(ctx context.Context, host string) (string, error)

// ConsoleOutput calls f.
func (f ConsoleFunc) ConsoleOutput(ctx context.Context, host string) (string, error) {
	return f(ctx, host)
}

const (
	consoleBegin = "-----BEGIN SSH HOST KEY KEYS-----"
	consoleEnd   = "-----END SSH HOST KEY KEYS-----"
)

// ParseConsoleKeys returns the host keys in the first complete cloud-init
// "BEGIN SSH HOST KEY KEYS" block of a console log. Lines may carry a
// console prefix (a timestamp, a program name) before the key type.
//
// The first block is the one cloud-init printed on first boot, before any
// service or user could write to the console; a block printed later (by a
// reboot, or forged by anything that writes to /dev/console) never
// overrides it. A first complete block without a key is no keys at all.
func ParseConsoleKeys(console string) ([]ssh.PublicKey, error) {
	var cur []ssh.PublicKey
	in := false
	sc := bufio.NewScanner(strings.NewReader(console))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case strings.Contains(line, consoleBegin):
			in, cur = true, nil
		case strings.Contains(line, consoleEnd) && in:
			if len(cur) == 0 {
				return nil, fmt.Errorf("%w: the first complete host key block on the console holds no key", ErrNoConsoleKeys)
			}
			return cur, nil
		case in:
			if k := keyInLine(line); k != nil {
				cur = append(cur, k)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the console: %w", err)
	}
	return nil, ErrNoConsoleKeys
}

func keyInLine(line string) ssh.PublicKey {
	f := strings.Fields(line)
	for i := range f {
		if !strings.HasPrefix(f[i], "ssh-") && !strings.HasPrefix(f[i], "ecdsa-") && !strings.HasPrefix(f[i], "sk-") {
			continue
		}
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(strings.Join(f[i:], " ")))
		if err == nil {
			return k
		}
	}
	return nil
}

// SSHConnector connects with golang.org/x/crypto/ssh and verifies host keys
// against the KeyStore, or on first contact against the console.
type SSHConnector struct {
	// Signer is the client key (the deploy keypair's private half).
	Signer ssh.Signer
	// Keys holds the pinned host keys.
	Keys KeyStore
	// Console reads a host's console on first contact; without it a host
	// with no pinned key is refused.
	Console ConsoleSource
	// Retry is how long Connect keeps retrying refused connections, auth
	// failures (cloud-init still installing the key) and a console without
	// keys yet. A host key mismatch is never retried. 0 means one attempt.
	Retry time.Duration
	// Timeout bounds one TCP connect and handshake (10s when 0), and the
	// answer to each keepalive probe of an open connection.
	Timeout time.Duration
	// CommandTimeout bounds each command run on a host (30m when 0): a
	// step that waits longer (an apt or npm install that hangs) fails
	// instead of holding the run and its lock.
	CommandTimeout time.Duration
	// Secrets are masked in command errors.
	Secrets []string
}

// Connect opens one SSH connection to h.
func (c *SSHConnector) Connect(ctx context.Context, h Host) (Runner, error) {
	if c.Signer == nil {
		return nil, errors.New("ssh: no client key")
	}
	deadline := time.Now().Add(c.Retry)
	for attempt := 0; ; attempt++ {
		r, err := c.connectOnce(ctx, h)
		if err == nil {
			return r, nil
		}
		if errors.Is(err, ErrHostKeyMismatch) || ctx.Err() != nil || time.Now().After(deadline) {
			return nil, fmt.Errorf("connecting to %s (%s): %w", h.Name, h.Addr(), err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connecting to %s (%s): %w", h.Name, h.Addr(), ctx.Err())
		case <-time.After(min(time.Duration(attempt+1)*time.Second, 5*time.Second)):
		}
	}
}

func (c *SSHConnector) connectOnce(ctx context.Context, h Host) (*sshRunner, error) {
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	var hkErr error
	pinned := c.Keys.HostKeys(h.Name)
	var known []ssh.PublicKey
	for _, s := range pinned {
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s))
		if err != nil {
			return nil, fmt.Errorf("pinned host key of %s does not parse: %w", h.Name, err)
		}
		known = append(known, k)
	}
	var toPin []ssh.PublicKey
	if len(known) == 0 {
		if c.Console == nil {
			return nil, fmt.Errorf("%w: %s has no pinned host key and no console to check one against", ErrHostKeyMismatch, h.Name)
		}
		out, err := c.Console.ConsoleOutput(ctx, h.Name)
		if err != nil {
			return nil, fmt.Errorf("reading the console of %s: %w", h.Name, err)
		}
		keys, err := ParseConsoleKeys(out)
		if err != nil {
			return nil, err
		}
		known, toPin = keys, keys
	}
	cfg := &ssh.ClientConfig{
		User:              h.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(c.Signer)},
		HostKeyAlgorithms: hostKeyAlgorithms(known),
		Timeout:           timeout,
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			for _, k := range known {
				if bytes.Equal(k.Marshal(), key.Marshal()) {
					return nil
				}
			}
			hkErr = fmt.Errorf("%w: %s presented %s %s, which is not among its %d known keys", ErrHostKeyMismatch, h.Name, key.Type(), ssh.FingerprintSHA256(key), len(known))
			return hkErr
		},
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", h.Addr())
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(timeout))
	cc, chans, reqs, err := ssh.NewClientConn(conn, h.Addr(), cfg)
	stop()
	if err != nil {
		conn.Close()
		if hkErr != nil {
			return nil, hkErr
		}
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	client := ssh.NewClient(cc, chans, reqs)
	if len(toPin) > 0 {
		var lines []string
		for _, k := range toPin {
			lines = append(lines, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))))
		}
		if err := c.Keys.PinHostKeys(ctx, h.Name, h.Address, lines); err != nil {
			client.Close()
			return nil, fmt.Errorf("pinning the host keys of %s: %w", h.Name, err)
		}
	}
	cmdTimeout := c.CommandTimeout
	if cmdTimeout <= 0 {
		cmdTimeout = defaultCommandTimeout
	}
	r := &sshRunner{client: client, sudo: h.User != "root", masker: NewMasker(c.Secrets), cmdTimeout: cmdTimeout}
	go keepAlive(client, timeout)
	return r, nil
}

// ctxErr is ctx's error, with its cause when that says more (a command
// deadline): errors.Is still finds context.Canceled or DeadlineExceeded.
func ctxErr(ctx context.Context) error {
	err, cause := ctx.Err(), context.Cause(ctx)
	if cause == nil || cause == err {
		return err
	}
	return fmt.Errorf("%w: %w", err, cause)
}

// defaultCommandTimeout bounds one remote command unless the connector
// says otherwise.
const defaultCommandTimeout = 30 * time.Minute

// keepAlive probes the connection every interval and closes it when a
// probe goes unanswered for that long: a host that vanished (or a network
// that drops packets silently) fails the commands waiting on it instead
// of holding them forever. It returns once the connection is closed.
func keepAlive(client *ssh.Client, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	closed := make(chan struct{})
	go func() { _ = client.Wait(); close(closed) }()
	for {
		select {
		case <-closed:
			return
		case <-t.C:
		}
		answered := make(chan error, 1)
		go func() {
			_, _, err := client.SendRequest("keepalive@openssh.com", true, nil)
			answered <- err
		}()
		select {
		case err := <-answered:
			if err != nil {
				_ = client.Close()
				return
			}
		case <-closed:
			return
		case <-time.After(interval):
			_ = client.Close()
			return
		}
	}
}

// hostKeyAlgorithms asks the server for a key of a type we know, so a host
// with several keys presents one we can check.
func hostKeyAlgorithms(keys []ssh.PublicKey) []string {
	var algs []string
	seen := map[string]bool{}
	add := func(a string) {
		if !seen[a] {
			seen[a] = true
			algs = append(algs, a)
		}
	}
	for _, k := range keys {
		switch k.Type() {
		case ssh.KeyAlgoRSA:
			add(ssh.KeyAlgoRSASHA512)
			add(ssh.KeyAlgoRSASHA256)
		default:
			add(k.Type())
		}
	}
	return algs
}

// sshRunner runs commands over one SSH connection.
type sshRunner struct {
	client   *ssh.Client
	sudo     bool
	masker   *Masker
	sessions atomic.Int64
	// cmdTimeout bounds each command (none when 0).
	cmdTimeout time.Duration
}

// Sessions reports how many sessions (commands) the connection has opened.
func (r *sshRunner) Sessions() int64 { return r.sessions.Load() }

// Run runs script as root. A script holding a secret the connector masks
// is refused before any session opens (ErrSecretOnCommandLine).
func (r *sshRunner) Run(ctx context.Context, script string, stdin io.Reader) ([]byte, error) {
	if r.masker.Contains(script) {
		return nil, ErrSecretOnCommandLine
	}
	if r.cmdTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, r.cmdTimeout, fmt.Errorf("the command did not finish within %s", r.cmdTimeout))
		defer cancel()
	}
	// Opening a session waits for the server's answer: not past ctx.
	stop := context.AfterFunc(ctx, func() { _ = r.client.Close() })
	s, err := r.client.NewSession()
	stop()
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("opening an SSH session: %w", ctxErr(ctx))
		}
		return nil, fmt.Errorf("opening an SSH session: %w", err)
	}
	r.sessions.Add(1)
	defer s.Close()
	var stdout, stderr bytes.Buffer
	s.Stdout, s.Stderr = &stdout, &stderr
	if stdin != nil {
		s.Stdin = stdin
	}
	cmd := argv("sh", "-c", script)
	if r.sudo {
		cmd = "sudo -n " + cmd
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(cmd) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = s.Signal(ssh.SIGKILL)
		s.Close()
		return nil, ctxErr(ctx)
	}
	if err != nil {
		code := -1
		var ee *ssh.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitStatus()
		} else if !errors.Is(err, io.EOF) {
			var mm *ssh.ExitMissingError
			if !errors.As(err, &mm) {
				return stdout.Bytes(), err
			}
		}
		return stdout.Bytes(), &ExitError{Code: code, Stderr: r.masker.Mask(stderr.String())}
	}
	return stdout.Bytes(), nil
}

func (r *sshRunner) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return r.client.DialContext(ctx, network, addr)
}

func (r *sshRunner) Close() error { return r.client.Close() }
