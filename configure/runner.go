package configure

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
)

// Host is a machine to configure.
type Host struct {
	// Name is the instance name (instance.NAME); addresses of changes are
	// host.NAME:...
	Name string
	// Address is the IP address or host name SSH connects to.
	Address string
	// Port is the SSH port (22 when 0).
	Port int
	// User is the login user (debian on OVH's images); commands run through
	// sudo unless it is root.
	User string
}

// Addr returns address:port.
func (h Host) Addr() string {
	p := h.Port
	if p == 0 {
		p = 22
	}
	return net.JoinHostPort(h.Address, fmt.Sprint(p))
}

// Runner runs commands on one host over one connection.
type Runner interface {
	// Run runs a POSIX shell script as root (through sudo when the login
	// user is not root) in a new session, with stdin when not nil, and
	// returns its standard output. A non-zero exit is an *ExitError.
	Run(ctx context.Context, script string, stdin io.Reader) ([]byte, error)
	// DialContext opens a TCP connection from the host (an SSH direct-tcpip
	// channel), as the database bootstrap does to reach the database.
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
	// Close closes the connection.
	Close() error
}

// Connector opens a Runner for a host.
type Connector interface {
	Connect(ctx context.Context, h Host) (Runner, error)
}

// ExitError is a remote command that exited non-zero. Its Error text has the
// secrets given to the engine masked.
type ExitError struct {
	// What says what the command was doing, e.g. "write /etc/emqx/emqx.conf".
	What string
	// Code is the exit status (-1 when unknown, e.g. a signal).
	Code int
	// Stderr is the command's standard error, secrets masked.
	Stderr string
}

func (e *ExitError) Error() string {
	s := strings.TrimSpace(e.Stderr)
	if len(s) > 2000 {
		s = s[:2000] + "..."
	}
	if s == "" {
		return fmt.Sprintf("%s: exit status %d", e.What, e.Code)
	}
	return fmt.Sprintf("%s: exit status %d: %s", e.What, e.Code, s)
}

// ErrSecretOnCommandLine is returned, without running anything, for a
// script whose text holds a secret the runner or the engine masks: sudo
// logs a command line and ps shows it, so secrets go to a host on standard
// input (or in a file written from it), never in a script.
var ErrSecretOnCommandLine = errors.New("a secret would be on the host's command line (in sudo's log and ps): refused")

// ErrHostKeyMismatch is returned when the host presents a key that is
// neither pinned nor printed on its console. It is not retryable: the host
// may be an impostor, or it was rebuilt and its pinned keys must be removed
// from state on purpose.
var ErrHostKeyMismatch = errors.New("host key mismatch")

// ErrNoConsoleKeys is returned on first contact when the console shows no
// host keys yet (cloud-init has not printed them). It is retryable.
var ErrNoConsoleKeys = errors.New("no host keys on the console yet")

// shellQuote quotes s for a POSIX shell as one word.
func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@%+,", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// argv joins words into a shell command line, quoting each.
func argv(words ...string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = shellQuote(w)
	}
	return strings.Join(q, " ")
}

// Masker replaces secret values with "(sensitive)".
type Masker struct{ r *strings.Replacer }

// NewMasker masks the given secrets; longer secrets are replaced first so a
// secret containing another is masked whole.
func NewMasker(secrets []string) *Masker {
	var pairs []string
	seen := map[string]bool{}
	// longest first
	s := append([]string(nil), secrets...)
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && len(s[j]) > len(s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	for _, v := range s {
		if v == "" || seen[v] {
			continue
		}
		seen[v] = true
		pairs = append(pairs, v, "(sensitive)")
	}
	return &Masker{r: strings.NewReplacer(pairs...)}
}

// Contains reports whether s holds one of the secrets.
func (m *Masker) Contains(s string) bool {
	if m == nil || m.r == nil {
		return false
	}
	return m.r.Replace(s) != s
}

// Mask masks s.
func (m *Masker) Mask(s string) string {
	if m == nil || m.r == nil {
		return s
	}
	return m.r.Replace(s)
}
