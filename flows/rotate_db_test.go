package flows

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ovh/go-ovh/ovh"

	"github.com/accoreboot/acco/configure"
	"github.com/accoreboot/acco/internal/localcloud/ovhapi"
	"github.com/accoreboot/acco/internal/localcloud/pgserver"
	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/provision"
	"github.com/accoreboot/acco/provision/ovhdb"
	"github.com/accoreboot/acco/state"
)

// TestRotateDatabaseUser rotates a database user's password through the
// local cloud's OVH API over a real PostgreSQL server: the new password
// is sealed in state with the time, logs in, and the old one no longer
// does.
func TestRotateDatabaseUser(t *testing.T) {
	if _, err := pgserver.FindBinDir(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "flows-rotate-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	m, err := pgserver.Open(ctx, dir, pgserver.Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	const project = "0123456789abcdef0123456789abcdef"
	api, err := ovhapi.New(ovhapi.Config{
		Credentials: []ovhapi.Credential{{ApplicationKey: "ak", ApplicationSecret: "as", ConsumerKey: "ck"}},
		Projects:    []string{project},
		Postgres:    m,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.Handler())
	defer srv.Close()
	raw, err := ovh.NewClient(srv.URL+"/1.0", "ak", "as", "ck")
	if err != nil {
		t.Fatal(err)
	}
	var svc struct {
		ID        string `json:"id"`
		Endpoints []struct {
			Domain string `json:"domain"`
			Port   int    `json:"port"`
		} `json:"endpoints"`
	}
	base := "/cloud/project/" + project + "/database/postgresql"
	if err := raw.PostWithContext(ctx, base, map[string]any{
		"plan": "essential", "version": "17",
		"nodesPattern": map[string]any{"flavor": "db1-4", "number": 1, "region": "GRA"},
	}, &svc); err != nil {
		t.Fatal(err)
	}
	if err := raw.PostWithContext(ctx, base+"/"+svc.ID+"/database", map[string]string{"name": "acco"}, nil); err != nil {
		t.Fatal(err)
	}
	db, err := ovhdb.New(ovhdb.Config{Project: project, Endpoint: srv.URL + "/1.0", ApplicationKey: "ak", ApplicationSecret: "as", ConsumerKey: "ck"})
	if err != nil {
		t.Fatal(err)
	}
	u, err := db.CreateUser(ctx, svc.ID, "backend", nil)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := db.CACertificate(ctx, svc.ID)
	if err != nil {
		t.Fatal(err)
	}
	login := func(password string) error {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM([]byte(ca))
		cfg, err := pgx.ParseConfig("")
		if err != nil {
			t.Fatal(err)
		}
		ep := svc.Endpoints[0]
		cfg.Host, cfg.Port, cfg.User, cfg.Password, cfg.Database = ep.Domain, uint16(ep.Port), "backend", password, "acco"
		cfg.TLSConfig = &tls.Config{RootCAs: pool, ServerName: ep.Domain, MinVersion: tls.VersionTLS12}
		cfg.Fallbacks = nil
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			_ = conn.Close(ctx)
		}
		return err
	}
	if err := login(u.Password); err != nil {
		t.Fatalf("the first password does not log in: %v", err)
	}

	// State as apply leaves it.
	env := loadEnv(t, "local")
	store := state.NewStore(state.NewDirBlob(t.TempDir()))
	st := state.New("local", "test")
	bound := testSealer(t).For(st.Env, st.Lineage)
	addr := spec.Address(spec.KindDatabaseUser, "main", "backend")
	sealed, err := bound.Seal(u.Password, addr+"/password")
	if err != nil {
		t.Fatal(err)
	}
	st.SetResource(state.Resource{Address: "database.main", Kind: spec.KindDatabase, ID: svc.ID})
	st.SetResource(state.Resource{Address: addr, Kind: spec.KindDatabaseUser, ID: u.ID,
		Attributes: map[string]any{"cluster": "database.main", "username": "backend"},
		Secrets:    map[string]string{"password": sealed}})
	if _, err := store.Write(ctx, "local", st, ""); err != nil {
		t.Fatal(err)
	}

	s, err := Open(ctx, env, store, testSealer(t), provision.Clients{DB: db}, false)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	s.Now = func() time.Time { return now }
	if _, err := s.Rotate(ctx, []string{addr}); err != nil {
		t.Fatal(err)
	}

	s2, err := Open(ctx, env, store, testSealer(t), provision.Clients{DB: db}, true)
	if err != nil {
		t.Fatal(err)
	}
	pw, err := s2.Secrets().UserPasswords()
	if err != nil {
		t.Fatal(err)
	}
	if pw["main.backend"] == "" || pw["main.backend"] == u.Password {
		t.Fatal("the password in state did not change")
	}
	if err := login(pw["main.backend"]); err != nil {
		t.Errorf("the new password does not log in: %v", err)
	}
	if err := login(u.Password); err == nil {
		t.Error("the old password still logs in")
	}
	r, _ := s2.State.Resource(addr)
	if got, ok := configure.RotatedAt(r); !ok || !got.Equal(now) {
		t.Errorf("rotated at %v (%v), want %v", got, ok, now)
	}
	if r.ID != u.ID || r.Attributes["username"] != "backend" {
		t.Errorf("the resource lost what apply recorded: %+v", r)
	}
}
