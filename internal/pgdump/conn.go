package pgdump

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
)

// Target is a database of a cluster and how to reach it.
type Target struct {
	// Host is the cluster's host name, which its certificate names; Port
	// its port.
	Host string
	Port int
	// User and Password are the role the tools log in as.
	User, Password string
	// CACert is the PEM certificate of the CA that signed the server's
	// certificate; the server is verified against it (verify-full).
	CACert string
	// Database is the database dumped or restored into.
	Database string
	// Dial, when set, opens the connections to Host:Port (an SSH tunnel);
	// nil connects directly.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// check rejects a Target the tools cannot use.
func (tg Target) check() error {
	switch {
	case tg.Host == "":
		return errors.New("pgdump: no host")
	case tg.Port <= 0 || tg.Port > 65535:
		return fmt.Errorf("pgdump: port %d of %s is not a TCP port", tg.Port, tg.Host)
	case tg.User == "":
		return fmt.Errorf("pgdump: no user for %s", tg.Host)
	case tg.Database == "":
		return fmt.Errorf("pgdump: no database on %s", tg.Host)
	case strings.TrimSpace(tg.CACert) == "":
		return fmt.Errorf("pgdump: no CA certificate for %s: the server could not be verified", tg.Host)
	case strings.ContainsAny(tg.Password, "\r\n\x00"):
		// A passfile holds one password a line.
		return fmt.Errorf("pgdump: the password of %s contains a line break or NUL, which a PostgreSQL passfile cannot hold", tg.User)
	}
	return nil
}

// where names the target in errors (no secret).
func (tg Target) where() string {
	return fmt.Sprintf("database %s on %s as %s", tg.Database, net.JoinHostPort(tg.Host, strconv.Itoa(tg.Port)), tg.User)
}

// session is what the tools need to connect to a Target: a private
// directory with the passfile and the CA certificate, and the forwarder
// when the Target has a Dial.
type session struct {
	dir string
	fwd *forwarder
	tg  Target
}

// openSession prepares the connection files and, with tg.Dial, starts the
// forwarder. Close removes them.
func openSession(ctx context.Context, tg Target) (*session, error) {
	if err := tg.check(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "acco-pgdump-")
	if err != nil {
		return nil, fmt.Errorf("pgdump: %w", err)
	}
	s := &session{dir: dir, tg: tg}
	if err := os.Chmod(dir, 0o700); err != nil {
		s.Close()
		return nil, fmt.Errorf("pgdump: %w", err)
	}
	pass := "*:*:*:" + passEscape(tg.User) + ":" + passEscape(tg.Password) + "\n"
	if err := os.WriteFile(s.passFile(), []byte(pass), 0o600); err != nil {
		s.Close()
		return nil, fmt.Errorf("pgdump: write the passfile: %w", err)
	}
	if err := os.WriteFile(s.caFile(), []byte(tg.CACert), 0o600); err != nil {
		s.Close()
		return nil, fmt.Errorf("pgdump: write the CA certificate: %w", err)
	}
	if tg.Dial != nil {
		addr := net.JoinHostPort(tg.Host, strconv.Itoa(tg.Port))
		if s.fwd, err = startForwarder(ctx, addr, tg.Dial); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

func (s *session) passFile() string { return filepath.Join(s.dir, "pgpass") }
func (s *session) caFile() string   { return filepath.Join(s.dir, "ca.crt") }

// Close stops the forwarder and removes the files.
func (s *session) Close() {
	if s.fwd != nil {
		s.fwd.Close()
	}
	_ = os.RemoveAll(s.dir)
}

// conninfo is the libpq connection string of the target: no password (it
// is in the passfile), TLS verify-full against the CA file; through the
// forwarder, hostaddr and port are the forwarder's while host stays the
// server's name, which the certificate is checked against.
func (s *session) conninfo() string {
	kv := [][2]string{{"host", s.tg.Host}}
	if s.fwd != nil {
		host, port, _ := net.SplitHostPort(s.fwd.Addr())
		kv = append(kv, [2]string{"hostaddr", host}, [2]string{"port", port})
	} else {
		kv = append(kv, [2]string{"port", strconv.Itoa(s.tg.Port)})
	}
	kv = append(kv,
		[2]string{"user", s.tg.User},
		[2]string{"dbname", s.tg.Database},
		[2]string{"passfile", s.passFile()},
		[2]string{"sslmode", "verify-full"},
		[2]string{"sslrootcert", s.caFile()},
		[2]string{"gssencmode", "disable"},
		[2]string{"connect_timeout", "30"},
		[2]string{"application_name", "acco"},
	)
	parts := make([]string, len(kv))
	for i, p := range kv {
		parts[i] = p[0] + "=" + connQuote(p[1])
	}
	return strings.Join(parts, " ")
}

// dialErr returns the forwarder's last failure to dial the server, if any.
func (s *session) dialErr() error {
	if s.fwd == nil {
		return nil
	}
	return s.fwd.Err()
}

// connQuote quotes a libpq connection string value.
func connQuote(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// passEscape escapes a passfile field.
func passEscape(v string) string {
	return strings.NewReplacer(`\`, `\\`, `:`, `\:`).Replace(v)
}

// pgxConfig is the pgx configuration of tg's database name: verify-full
// against tg.CACert, through tg.Dial when set.
func pgxConfig(tg Target, database string) (*pgx.ConnConfig, error) {
	if err := tg.check(); err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(tg.CACert)) {
		return nil, fmt.Errorf("pgdump: the CA certificate of %s holds no PEM certificate", tg.Host)
	}
	cfg, err := pgx.ParseConfig("")
	if err != nil {
		return nil, fmt.Errorf("pgdump: %w", err)
	}
	cfg.Host, cfg.Port = tg.Host, uint16(tg.Port)
	cfg.User, cfg.Password, cfg.Database = tg.User, tg.Password, database
	cfg.TLSConfig = &tls.Config{RootCAs: pool, ServerName: tg.Host, MinVersion: tls.VersionTLS12}
	cfg.Fallbacks = nil
	cfg.RuntimeParams = map[string]string{"application_name": "acco"}
	if tg.Dial != nil {
		cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return tg.Dial(ctx, network, addr)
		}
		cfg.LookupFunc = func(_ context.Context, host string) ([]string, error) {
			return []string{host}, nil // the Dial resolves, at the far end
		}
	}
	return cfg, nil
}

// connect opens a pgx connection to a database of tg.
func connect(ctx context.Context, tg Target, database string) (*pgx.Conn, error) {
	cfg, err := pgxConfig(tg, database)
	if err != nil {
		return nil, err
	}
	tg.Database = database
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgdump: connect to %s: %w", tg.where(), err)
	}
	return c, nil
}

// forwarder accepts TCP connections on 127.0.0.1 and pipes each to a new
// connection opened with dial to addr.
type forwarder struct {
	ln     net.Listener
	addr   string
	dial   func(ctx context.Context, network, addr string) (net.Conn, error)
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	err   error
}

// startForwarder listens on a free port of 127.0.0.1 and serves until
// Close or ctx ends.
func startForwarder(ctx context.Context, addr string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) (*forwarder, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("pgdump: start the local forwarder to %s: %w", addr, err)
	}
	f := &forwarder{ln: ln, addr: addr, dial: dial, conns: map[net.Conn]struct{}{}}
	f.ctx, f.cancel = context.WithCancel(ctx)
	f.wg.Add(1)
	go f.serve()
	go func() {
		<-f.ctx.Done()
		_ = f.ln.Close()
		f.closeConns()
	}()
	return f, nil
}

// Addr is the address the forwarder listens on.
func (f *forwarder) Addr() string { return f.ln.Addr().String() }

// Err is the last error met dialling the server.
func (f *forwarder) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

func (f *forwarder) serve() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return // closed
		}
		if !f.track(c) {
			_ = c.Close()
			return
		}
		f.wg.Add(1)
		go f.pipe(c)
	}
}

// track remembers an open connection; false once the forwarder is closing.
func (f *forwarder) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conns == nil {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *forwarder) untrack(c net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conns != nil {
		delete(f.conns, c)
	}
}

// pipe copies between an accepted connection and a new one to the server.
func (f *forwarder) pipe(local net.Conn) {
	defer f.wg.Done()
	defer f.untrack(local)
	defer local.Close()
	remote, err := f.dial(f.ctx, "tcp", f.addr)
	if err != nil {
		f.mu.Lock()
		f.err = fmt.Errorf("dial %s: %w", f.addr, err)
		f.mu.Unlock()
		return
	}
	if !f.track(remote) {
		_ = remote.Close()
		return
	}
	defer f.untrack(remote)
	defer remote.Close()
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// Pass the end of one direction on; the other may still flow.
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		} else {
			_ = dst.Close()
		}
		done <- struct{}{}
	}
	go cp(remote, local)
	go cp(local, remote)
	<-done
	<-done
}

// closeConns closes every open connection and refuses new ones.
func (f *forwarder) closeConns() {
	f.mu.Lock()
	conns := f.conns
	f.conns = nil
	f.mu.Unlock()
	for c := range conns {
		_ = c.Close()
	}
}

// Close stops listening, closes the connections and waits for them.
func (f *forwarder) Close() {
	f.cancel()
	_ = f.ln.Close()
	f.closeConns()
	f.wg.Wait()
}
