package pgserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// requirePostgres skips the test when PostgreSQL is not installed.
func requirePostgres(t *testing.T) string {
	t.Helper()
	bin, err := FindBinDir()
	if err != nil {
		t.Skipf("skipping: %v", err)
	}
	return bin
}

// testDir returns a directory under the temporary directory that the
// server user can reach (t.TempDir's parent is private to root).
func testDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgserver-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// openManager opens a Manager and stops its servers when the test ends.
func openManager(t *testing.T, dir string) *Manager {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m, err := Open(ctx, dir, Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return m
}

// connectTCP connects over TCP as a role, verifying the server certificate
// against the cluster's CA.
func connectTCP(ctx context.Context, m *Manager, id, user, password, database string) (*pgx.Conn, error) {
	host, port, err := m.Address(id)
	if err != nil {
		return nil, err
	}
	ca, err := m.CACertificate(ctx, id)
	if err != nil {
		return nil, err
	}
	cfg, err := pgx.ParseConfig("")
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(ca)) {
		return nil, errors.New("bad CA")
	}
	cfg.Host, cfg.Port, cfg.User, cfg.Password, cfg.Database = host, uint16(port), user, password, database
	cfg.TLSConfig = &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12}
	cfg.Fallbacks = nil
	return pgx.ConnectConfig(ctx, cfg)
}

// mustConnect connects or fails the test.
func mustConnect(t *testing.T, ctx context.Context, m *Manager, id, user, password, database string) *pgx.Conn {
	t.Helper()
	conn, err := connectTCP(ctx, m, id, user, password, database)
	if err != nil {
		t.Fatalf("connect as %s to %s: %v", user, database, err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// wantAuthFailure checks that a connection attempt is refused for its
// password.
func wantAuthFailure(t *testing.T, err error) {
	t.Helper()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "28P01" {
		t.Fatalf("got %v, want a password authentication failure (28P01)", err)
	}
}

func TestClusterLifecycle(t *testing.T) {
	requirePostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := testDir(t)
	m := openManager(t, dir)
	const id = "5f0e4b36-3b7e-4f43-9e1c-7a0f0a5e2b11"

	start := time.Now()
	host, port, err := m.CreateCluster(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("initdb + start + bootstrap: %v", time.Since(start))
	if host != "127.0.0.1" || port == 0 {
		t.Fatalf("address %s:%d", host, port)
	}
	if _, _, err := m.CreateCluster(ctx, id); err == nil {
		t.Fatal("a second cluster with the same ID was created")
	}

	// A user, a database, a TCP connection with that password over TLS.
	if err := m.CreateUser(ctx, id, "emqx", "first-Password1"); err != nil {
		t.Fatal(err)
	}
	if err := m.CreateDatabase(ctx, id, "acco"); err != nil {
		t.Fatal(err)
	}
	conn := mustConnect(t, ctx, m, id, "emqx", "first-Password1", "acco")
	var who, db string
	var ssl bool
	if err := conn.QueryRow(ctx, "SELECT current_user, current_database(), ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&who, &db, &ssl); err != nil {
		t.Fatal(err)
	}
	if who != "emqx" || db != "acco" || !ssl {
		t.Fatalf("connected as %s to %s, ssl %v", who, db, ssl)
	}
	// As on PostgreSQL 15+, only the database owner (avnadmin) may create
	// in public until it grants it.
	if _, err := conn.Exec(ctx, "CREATE TABLE positions (id bigint)"); err == nil {
		t.Fatal("a user created a table in public without a grant")
	}
	_ = conn.Close(ctx)
	_, err = connectTCP(ctx, m, id, "emqx", "wrong", "acco")
	wantAuthFailure(t, err)

	// Without TLS: refused, as on OVH.
	noTLS, _ := pgx.ParseConfig("")
	noTLS.Host, noTLS.Port, noTLS.User, noTLS.Password, noTLS.Database = host, uint16(port), "emqx", "first-Password1", "acco"
	noTLS.TLSConfig, noTLS.Fallbacks = nil, nil
	if c, err := pgx.ConnectConfig(ctx, noTLS); err == nil {
		_ = c.Close(ctx)
		t.Fatal("a connection without TLS was accepted")
	}

	// The superuser is not reachable over TCP.
	_, err = connectTCP(ctx, m, id, "postgres", "", "postgres")
	if err == nil {
		t.Fatal("postgres logged in over TCP")
	}

	// New password: the old one stops working.
	if err := m.SetPassword(ctx, id, "emqx", "second-Password2"); err != nil {
		t.Fatal(err)
	}
	_, err = connectTCP(ctx, m, id, "emqx", "first-Password1", "acco")
	wantAuthFailure(t, err)
	mustConnect(t, ctx, m, id, "emqx", "second-Password2", "acco")

	// avnadmin: no password until one is set; then the managed-PG admin.
	_, err = connectTCP(ctx, m, id, "avnadmin", "", "defaultdb")
	if err == nil {
		t.Fatal("avnadmin logged in without a password")
	}
	if err := m.SetPassword(ctx, id, "avnadmin", "admin-Password3"); err != nil {
		t.Fatal(err)
	}
	admin := mustConnect(t, ctx, m, id, "avnadmin", "admin-Password3", "defaultdb")
	var super, createdb, createrole, replication bool
	if err := admin.QueryRow(ctx, "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication FROM pg_roles WHERE rolname = current_user").
		Scan(&super, &createdb, &createrole, &replication); err != nil {
		t.Fatal(err)
	}
	if super || !createdb || !createrole || !replication {
		t.Fatalf("avnadmin: super %v createdb %v createrole %v replication %v", super, createdb, createrole, replication)
	}
	var owner, walLevel string
	if err := admin.QueryRow(ctx, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'acco'").Scan(&owner); err != nil {
		t.Fatal(err)
	}
	if err := admin.QueryRow(ctx, "SHOW wal_level").Scan(&walLevel); err != nil {
		t.Fatal(err)
	}
	if owner != "avnadmin" || walLevel != "logical" {
		t.Fatalf("owner %s, wal_level %s", owner, walLevel)
	}
	if _, err := admin.Exec(ctx, "ALTER ROLE emqx CONNECTION LIMIT 50"); err != nil {
		t.Fatalf("avnadmin cannot administer a user: %v", err)
	}
	_ = admin.Close(ctx)
	adminAcco := mustConnect(t, ctx, m, id, "avnadmin", "admin-Password3", "acco")
	if _, err := adminAcco.Exec(ctx, "GRANT CREATE ON SCHEMA public TO emqx"); err != nil {
		t.Fatal(err)
	}
	_ = adminAcco.Close(ctx)
	conn = mustConnect(t, ctx, m, id, "emqx", "second-Password2", "acco")
	if _, err := conn.Exec(ctx, "CREATE TABLE positions (id bigint)"); err != nil {
		t.Fatalf("the user cannot create a table after the grant: %v", err)
	}
	_ = conn.Close(ctx)

	// Restart: Close, then Open reattaches on the same port.
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := connectTCP(ctx, m, id, "emqx", "second-Password2", "acco"); err == nil {
		t.Fatal("the server still answers after Close")
	}
	m2 := openManager(t, dir)
	if h, p, err := m2.Address(id); err != nil || h != host || p != port {
		t.Fatalf("reopened at %s:%d (%v), was %s:%d", h, p, err, host, port)
	}
	mustConnect(t, ctx, m2, id, "emqx", "second-Password2", "acco")

	// Drop the user (its table goes to avnadmin) and the database.
	if err := m2.DropUser(ctx, id, "emqx"); err != nil {
		t.Fatal(err)
	}
	if err := m2.DropUser(ctx, id, "emqx"); err != nil {
		t.Fatalf("dropping a missing user: %v", err)
	}
	_, err = connectTCP(ctx, m2, id, "emqx", "second-Password2", "acco")
	wantAuthFailure(t, err)
	if err := m2.DropDatabase(ctx, id, "acco"); err != nil {
		t.Fatal(err)
	}
	admin = mustConnect(t, ctx, m2, id, "avnadmin", "admin-Password3", "defaultdb")
	var n int
	if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = 'acco'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("acco still exists (%d, %v)", n, err)
	}
	_ = admin.Close(ctx)

	// Delete: the server stops and its data goes.
	if err := m2.DeleteCluster(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "pg", id)); !os.IsNotExist(err) {
		t.Fatalf("data directory left: %v", err)
	}
	if _, _, err := m2.Address(id); err == nil {
		t.Fatal("the cluster is still known")
	}
	if err := m2.DeleteCluster(ctx, id); err != nil {
		t.Fatalf("deleting a missing cluster: %v", err)
	}
	if err := m2.CreateUser(ctx, id, "x", "y"); err == nil || !strings.Contains(err.Error(), "no cluster") {
		t.Fatalf("CreateUser on a deleted cluster: %v", err)
	}
}

func TestFindBinDir(t *testing.T) {
	root := t.TempDir()
	mk := func(dir string, bins ...string) string {
		d := filepath.Join(root, dir, "bin")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, b := range bins {
			if err := os.WriteFile(filepath.Join(d, b), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	all := []string{"initdb", "pg_ctl", "postgres"}
	mk("debian/9.6", all...)
	debian15 := mk("debian/15", all...)
	mk("debian/17", "initdb", "pg_ctl") // incomplete
	system := mk("system/"+PinnedDirName, all...)
	cache := mk("cache/acco/"+PinnedDirName, all...)
	missing := filepath.Join(root, "nowhere", "bin")
	glob := filepath.Join(root, "debian", "*", "bin")

	tests := []struct {
		name      string
		preferred []string
		glob      string
		want      string
	}{
		{"the pinned install wins", []string{system, cache}, glob, system},
		{"then the one in the user's cache", []string{missing, cache}, glob, cache},
		{"else Debian's newest complete one", []string{missing}, glob, debian15},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := findBinDir(candidateBinDirs(tt.preferred, tt.glob), hasBinaries)
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %s", got, err, tt.want)
			}
		})
	}
	if _, err := findBinDir(candidateBinDirs([]string{missing}, filepath.Join(root, "none", "*", "bin")), hasBinaries); !errors.Is(err, ErrNoBinaries) {
		t.Fatalf("got %v, want ErrNoBinaries", err)
	}
	if !strings.Contains(ErrNoBinaries.Error(), "ensure-postgres.sh") {
		t.Errorf("ErrNoBinaries does not say how to install PostgreSQL 17: %v", ErrNoBinaries)
	}
}

// TestPinnedBinDirs checks where FindBinDir looks for the pinned
// PostgreSQL: where scripts/ensure-postgres.sh installs it.
func TestPinnedBinDirs(t *testing.T) {
	t.Setenv("HOME", "/home/someone")
	t.Setenv("XDG_CACHE_HOME", "")
	want := []string{"/usr/local/lib/acco/" + PinnedDirName + "/bin", "/home/someone/.cache/acco/" + PinnedDirName + "/bin"}
	if got := PinnedBinDirs(); !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	t.Setenv("XDG_CACHE_HOME", "/var/cache/someone")
	if got := PinnedBinDirs(); got[1] != "/var/cache/someone/acco/"+PinnedDirName+"/bin" {
		t.Errorf("with XDG_CACHE_HOME: got %v", got)
	}
	t.Setenv("XDG_CACHE_HOME", "relative")
	if got := PinnedBinDirs(); got[1] != want[1] {
		t.Errorf("with a relative XDG_CACHE_HOME: got %v, want %s", got, want[1])
	}
}

// TestInstallScriptMatchesThePin checks that scripts/ensure-postgres.sh
// installs the package, version and directory this package looks for.
func TestInstallScriptMatchesThePin(t *testing.T) {
	script, err := os.ReadFile(filepath.Join("..", "..", "..", "scripts", "ensure-postgres.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"\npkg=" + PinnedPackage + "\n",
		"\nversion=" + PinnedPackageVersion + "\n",
		"\nname=" + PinnedDirName + "\n",
		"\n\troot=" + SystemInstallRoot + "\n",
		"$cache/acco\n",
		"/" + packageMarker + "\"",
	} {
		if !strings.Contains(string(script), want) {
			t.Errorf("scripts/ensure-postgres.sh lacks %q", want)
		}
	}
}

func TestParseVersion(t *testing.T) {
	tests := []struct{ in, version, major string }{
		{"postgres (PostgreSQL) 17.10\n", "17.10", "17"},
		{"postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)\n", "15.14", "15"},
		{"17.10", "17.10", "17"},
		{"16.4 (Debian 16.4-1.pgdg120+1)", "16.4", "16"},
		{"postgres (PostgreSQL) 9.6.24", "9.6.24", "9.6"},
	}
	for _, tt := range tests {
		v, err := parseVersion(tt.in)
		if err != nil || v != tt.version {
			t.Errorf("parseVersion(%q) = %q, %v; want %s", tt.in, v, err, tt.version)
		}
		if m := (ServerInfo{Version: v}).Major(); m != tt.major {
			t.Errorf("major of %s = %s, want %s", v, m, tt.major)
		}
	}
	if _, err := parseVersion("command not found"); err == nil {
		t.Error("no version, no error")
	}
}

// TestDataDirectoryOfAnotherMajorVersion checks that a cluster whose data
// directory another major version made (the local cloud reuses its
// directory across runs) fails with what to do, and can still be deleted.
func TestDataDirectoryOfAnotherMajorVersion(t *testing.T) {
	requirePostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := testDir(t)
	const id = "old-cluster"
	data := filepath.Join(dir, "pg", id)
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"PG_VERSION": "9.6\n",
		metaFile:     `{"id":"old-cluster","port":1,"host":"127.0.0.1"}`,
	} {
		if err := os.WriteFile(filepath.Join(data, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if os.Geteuid() == 0 { // the data directory is the server user's, as initdb leaves it
		owner := &Manager{}
		if err := owner.setRunAs(); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{data, filepath.Join(data, "PG_VERSION"), filepath.Join(data, metaFile)} {
			if err := os.Chown(p, owner.uid, owner.gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	var logged []string
	m, err := Open(ctx, dir, Options{Logf: func(format string, args ...any) {
		logged = append(logged, fmt.Sprintf(format, args...))
		t.Logf(format, args...)
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	err = m.CreateUser(ctx, id, "emqx", "pw")
	if err == nil {
		t.Fatal("a cluster of PostgreSQL 9.6 was used")
	}
	for _, want := range []string{data, "initialised by PostgreSQL 9.6", "PostgreSQL " + m.Server().Version, "acco destroy"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error lacks %q: %v", want, err)
		}
	}
	if len(logged) == 0 || !strings.Contains(strings.Join(logged, "\n"), data) {
		t.Errorf("Open did not report the cluster it could not start: %q", logged)
	}
	if u := m.Unstarted(); len(u) != 1 || u[id] == nil || !strings.Contains(u[id].Error(), "PostgreSQL 9.6") {
		t.Errorf("Unstarted() = %v, want %s and why", u, id)
	}
	if err := m.DeleteCluster(ctx, id); err != nil {
		t.Fatalf("delete the old cluster: %v", err)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Fatalf("the old data directory is left: %v", err)
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"9.6", "14", -1},
		{"17", "15", 1},
		{"15", "15", 0},
		{"10.1", "10", 1},
	}
	for _, tt := range tests {
		if got := compareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("compareVersions(%s, %s) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestPasswordClause(t *testing.T) {
	tests := []struct {
		name, password, wantPrefix string
	}{
		{"ascii becomes a verifier", "Secret1", "'SCRAM-SHA-256$4096:"},
		{"quote in a verifier-free password", "é'x", "'é''x'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := passwordClause(tt.password)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(got, tt.wantPrefix) {
				t.Fatalf("got %s", got)
			}
			if strings.Contains(got, "Secret1") {
				t.Fatal("the password is in the clause")
			}
		})
	}
	// Same salt, same verifier; the layout PostgreSQL expects.
	v1, _ := scramVerifier("pencil", []byte("0123456789abcdef"), 4096)
	v2, _ := scramVerifier("pencil", []byte("0123456789abcdef"), 4096)
	if v1 != v2 || !strings.HasPrefix(v1, "SCRAM-SHA-256$4096:MDEyMzQ1Njc4OWFiY2RlZg==$") || strings.Count(v1, ":") != 2 {
		t.Fatalf("verifier %s", v1)
	}
}

func TestOpenRejectsBadInput(t *testing.T) {
	bin := requirePostgres(t)
	ctx := context.Background()
	if _, err := Open(ctx, testDir(t), Options{BinDir: t.TempDir()}); err == nil {
		t.Fatal("a bin directory without binaries was accepted")
	}
	m, err := Open(ctx, testDir(t), Options{BinDir: bin})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.CreateCluster(ctx, "../escape"); err == nil {
		t.Fatal("a cluster ID with a path was accepted")
	}
}
