package pgserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
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
		t.Skipf("skipping: no PostgreSQL binaries under %s (apt-get install postgresql): %v", DebianBinGlob, err)
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
	mk := func(version string, bins ...string) {
		d := filepath.Join(root, version, "bin")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, b := range bins {
			if err := os.WriteFile(filepath.Join(d, b), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	mk("9.6", "initdb", "pg_ctl", "postgres")
	mk("15", "initdb", "pg_ctl", "postgres")
	mk("17", "initdb", "pg_ctl") // incomplete
	got, err := findBinDir(filepath.Join(root, "*", "bin"))
	if err != nil || got != filepath.Join(root, "15", "bin") {
		t.Fatalf("got %q, %v", got, err)
	}
	if _, err := findBinDir(filepath.Join(root, "none", "*", "bin")); !errors.Is(err, ErrNoBinaries) {
		t.Fatalf("got %v, want ErrNoBinaries", err)
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
