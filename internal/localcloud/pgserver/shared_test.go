package pgserver

import (
	"context"
	"fmt"
	"testing"
	"time"
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
	if err := s.DeleteCluster(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenShared(ctx, "host=127.0.0.1 port=1 user=nobody connect_timeout=2"); err == nil {
		t.Fatal("OpenShared accepted a server that does not answer")
	}
}
