package pgserver

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestSharedServer runs the Backend calls of the local cloud's --postgres DSN
// mode against an existing server (one made by a Manager, reached as its
// superuser through the unix socket, as a DSN would name it).
func TestSharedServer(t *testing.T) {
	requirePostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m := openManager(t, testDir(t))
	if _, _, err := m.CreateCluster(ctx, "server"); err != nil {
		t.Fatal(err)
	}
	inst, err := m.instance("server")
	if err != nil {
		t.Fatal(err)
	}
	dsn := fmt.Sprintf("host=%s port=%d user=%s dbname=postgres sslmode=disable", inst.sockDir, inst.meta.Port, superuser)
	s, err := OpenShared(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateCluster(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateCluster(ctx, "c2"); err != nil {
		t.Fatalf("a second cluster on the shared server: %v", err)
	}
	for _, step := range []struct {
		name string
		err  error
	}{
		{"create database", s.CreateDatabase(ctx, "c1", "acco")},
		{"create database again", s.CreateDatabase(ctx, "c2", "acco")},
		{"create user", s.CreateUser(ctx, "c1", "emqx", "first-password")},
		{"same user in another cluster", s.CreateUser(ctx, "c2", "emqx", "second-password")},
	} {
		if step.err != nil {
			t.Fatalf("%s: %v", step.name, step.err)
		}
	}
	// The last password handed out is the one that works, over TCP and TLS.
	mustConnect(t, ctx, m, "server", "emqx", "second-password", "acco")
	_, err = connectTCP(ctx, m, "server", "emqx", "first-password", "acco")
	wantAuthFailure(t, err)

	if err := s.SetPassword(ctx, "c1", "emqx", "third-password"); err != nil {
		t.Fatal(err)
	}
	mustConnect(t, ctx, m, "server", "emqx", "third-password", "acco")
	if err := s.DropDatabase(ctx, "c1", "acco"); err != nil {
		t.Fatal(err)
	}
	if err := s.DropUser(ctx, "c1", "emqx"); err != nil {
		t.Fatal(err)
	}
	_, err = connectTCP(ctx, m, "server", "emqx", "third-password", "defaultdb")
	if err == nil {
		t.Fatal("the dropped role can still log in")
	}
	// avnadmin administers the users, as in a Manager's clusters.
	if err := s.CreateUser(ctx, "c1", "backend", "backend-password"); err != nil {
		t.Fatal(err)
	}
	wantAdministered(ctx, t, m, "backend")

	// A DSN whose role is not a superuser, only CREATEROLE: the user is
	// its own, and it hands avnadmin the ADMIN OPTION.
	if err := m.admin(ctx, "server", "postgres", func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, "CREATE ROLE operator LOGIN CREATEROLE CREATEDB")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	op, err := OpenShared(ctx, fmt.Sprintf("host=%s port=%d user=operator dbname=postgres sslmode=disable", inst.sockDir, inst.meta.Port))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := op.CreateCluster(ctx, "c3"); err != nil {
		t.Fatal(err)
	}
	if err := op.CreateUser(ctx, "c3", "worker", "worker-password"); err != nil {
		t.Fatal(err)
	}
	wantAdministered(ctx, t, m, "worker")
	mustConnect(t, ctx, m, "server", "worker", "worker-password", "defaultdb")
	if got := op.Server(); got.Version != m.Server().Version || !strings.HasPrefix(got.Source, "shared server ") {
		t.Errorf("Server() = %+v, want version %s from the shared server", got, m.Server().Version)
	}

	if err := s.DeleteCluster(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenShared(ctx, "host=127.0.0.1 port=1 user=nobody connect_timeout=2"); err == nil {
		t.Fatal("OpenShared accepted a server that does not answer")
	}
}

// wantAdministered checks that avnadmin may administer a user: on
// PostgreSQL 16 and later, it holds ADMIN OPTION on it, and neither
// inherits its privileges nor may SET ROLE to it.
func wantAdministered(ctx context.Context, t *testing.T, m *Manager, user string) {
	t.Helper()
	if compareVersions(m.Server().Major(), "16") < 0 {
		return // before 16, CREATEROLE administers every non-superuser role
	}
	err := m.admin(ctx, "server", "postgres", func(c *pgx.Conn) error {
		var admin, inherit, set bool
		if err := c.QueryRow(ctx, `SELECT admin_option, inherit_option, set_option FROM pg_auth_members
			WHERE roleid = $1::regrole AND member = 'avnadmin'::regrole`, user).Scan(&admin, &inherit, &set); err != nil {
			return fmt.Errorf("avnadmin's membership in %s: %w", user, err)
		}
		if !admin || inherit || set {
			return fmt.Errorf("avnadmin on %s: admin %v, inherit %v, set %v; want admin only", user, admin, inherit, set)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
