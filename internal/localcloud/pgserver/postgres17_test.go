package pgserver_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ovh/go-ovh/ovh"

	"github.com/accoreboot/acco/internal/localcloud/ovhapi"
	"github.com/accoreboot/acco/internal/localcloud/pgserver"
)

// pinnedInstalled returns the pinned PostgreSQL 17's bin directory, or
// skips the test saying how to install it.
func pinnedInstalled(t *testing.T) string {
	t.Helper()
	for _, d := range pgserver.PinnedBinDirs() {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d
		}
	}
	t.Skipf("skipping: the pinned PostgreSQL 17 (npm %s@%s) is not installed in any of %v: run scripts/ensure-postgres.sh (make deps)",
		pgserver.PinnedPackage, pgserver.PinnedPackageVersion, pgserver.PinnedBinDirs())
	return ""
}

// TestClustersRunPinnedPostgres17 checks that, with the pinned package
// installed, the Manager runs its clusters on PostgreSQL 17 from it, as OVH
// runs 17; and that avnadmin there has OVH's rights and no more: not a
// superuser, yet it can grant a user made through the OVH API privileges on
// a table it owns, and publish that table for logical replication
// (PowerSync's publication).
func TestClustersRunPinnedPostgres17(t *testing.T) {
	bin := pinnedInstalled(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "pgserver-pg17-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	m, err := pgserver.Open(ctx, dir, pgserver.Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })

	srv := m.Server()
	wantSource := "npm " + pgserver.PinnedPackage + "@" + pgserver.PinnedPackageVersion
	if srv.Major() != "17" || srv.Source != wantSource {
		t.Fatalf("the Manager runs %s; want PostgreSQL 17 from %s (installed in %s)", srv, wantSource, bin)
	}
	if v, err := pgserver.BinVersion(ctx, srv.BinDir); err != nil || v != srv.Version {
		t.Fatalf("postgres --version: %q, %v; the Manager says %s", v, err, srv.Version)
	}

	const project = "0123456789abcdef0123456789abcdef"
	api, err := ovhapi.New(ovhapi.Config{
		Credentials: []ovhapi.Credential{{ApplicationKey: "ak", ApplicationSecret: "as", ConsumerKey: "ck"}},
		Projects:    []string{project},
		Postgres:    m,
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(api.Handler())
	defer hs.Close()
	client, err := ovh.NewClient(hs.URL+"/1.0", "ak", "as", "ck")
	if err != nil {
		t.Fatal(err)
	}
	base := "/cloud/project/" + project + "/database/postgresql"
	var svc struct {
		ID        string `json:"id"`
		Endpoints []struct {
			Domain string `json:"domain"`
			Port   int    `json:"port"`
		} `json:"endpoints"`
	}
	if err := client.PostWithContext(ctx, base, map[string]any{
		"plan": "essential", "version": "17",
		"nodesPattern": map[string]any{"flavor": "db1-4", "number": 1, "region": "GRA"},
	}, &svc); err != nil {
		t.Fatal(err)
	}
	cluster := base + "/" + svc.ID
	if err := client.PostWithContext(ctx, cluster+"/database", map[string]string{"name": "acco"}, nil); err != nil {
		t.Fatal(err)
	}
	var powersync struct {
		Password string `json:"password"`
	}
	if err := client.PostWithContext(ctx, cluster+"/user", map[string]any{"name": "powersync", "roles": []string{"replication"}}, &powersync); err != nil {
		t.Fatal(err)
	}
	adminPassword := resetAdmin(ctx, t, client, cluster)
	var certs struct {
		CA string `json:"ca"`
	}
	if err := client.GetWithContext(ctx, cluster+"/certificates", &certs); err != nil {
		t.Fatal(err)
	}
	connect := func(user, password, database string) *pgx.Conn {
		t.Helper()
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(certs.CA)) {
			t.Fatal("the API's CA is not PEM")
		}
		cfg, err := pgx.ParseConfig("")
		if err != nil {
			t.Fatal(err)
		}
		ep := svc.Endpoints[0]
		cfg.Host, cfg.Port, cfg.User, cfg.Password, cfg.Database = ep.Domain, uint16(ep.Port), user, password, database
		cfg.TLSConfig = &tls.Config{RootCAs: pool, ServerName: ep.Domain, MinVersion: tls.VersionTLS12}
		cfg.Fallbacks = nil
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatalf("connect as %s to %s: %v", user, database, err)
		}
		t.Cleanup(func() { _ = conn.Close(context.Background()) })
		return conn
	}

	admin := connect("avnadmin", adminPassword, "acco")
	var version string
	if err := admin.QueryRow(ctx, "SHOW server_version").Scan(&version); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(version, "17.") {
		t.Fatalf("server_version %s, want 17.x", version)
	}
	var super, createdb, createrole, replication, monitor bool
	if err := admin.QueryRow(ctx, `SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, pg_has_role('pg_monitor', 'USAGE')
		FROM pg_roles WHERE rolname = current_user`).Scan(&super, &createdb, &createrole, &replication, &monitor); err != nil {
		t.Fatal(err)
	}
	if super || !createdb || !createrole || !replication || !monitor {
		t.Fatalf("avnadmin: superuser %v, createdb %v, createrole %v, replication %v, pg_monitor %v; want OVH's: all but superuser",
			super, createdb, createrole, replication, monitor)
	}
	// What only a superuser may do is refused.
	if _, err := admin.Exec(ctx, "CREATE PUBLICATION everything FOR ALL TABLES"); err == nil {
		t.Fatal("avnadmin created a publication FOR ALL TABLES, which needs a superuser")
	}

	// PostgreSQL 16+: avnadmin administers the API's user because it holds
	// ADMIN OPTION on it (it created it), without inheriting its rights.
	var adminOption, inherit, set bool
	if err := admin.QueryRow(ctx, `SELECT admin_option, inherit_option, set_option FROM pg_auth_members
		WHERE roleid = 'powersync'::regrole AND member = 'avnadmin'::regrole`).Scan(&adminOption, &inherit, &set); err != nil {
		t.Fatalf("avnadmin's membership in powersync: %v", err)
	}
	if !adminOption || inherit || set {
		t.Fatalf("avnadmin on powersync: admin %v, inherit %v, set %v; want admin only", adminOption, inherit, set)
	}
	for _, q := range []string{
		"ALTER ROLE powersync CONNECTION LIMIT 20",
		"CREATE TABLE devices (id text PRIMARY KEY, name text)",
		"INSERT INTO devices VALUES ('t1', 'tracker')",
		"GRANT SELECT ON devices TO powersync",
		"CREATE PUBLICATION powersync FOR TABLE devices",
	} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatalf("as avnadmin: %s: %v", q, err)
		}
	}
	var published string
	if err := admin.QueryRow(ctx, "SELECT tablename FROM pg_publication_tables WHERE pubname = 'powersync'").Scan(&published); err != nil || published != "devices" {
		t.Fatalf("publication powersync holds %q (%v), want devices", published, err)
	}

	ps := connect("powersync", powersync.Password, "acco")
	var name string
	if err := ps.QueryRow(ctx, "SELECT name FROM devices WHERE id = 't1'").Scan(&name); err != nil || name != "tracker" {
		t.Fatalf("powersync reads devices: %q, %v", name, err)
	}
	if _, err := ps.Exec(ctx, "DELETE FROM devices"); err == nil {
		t.Fatal("powersync deleted rows with only SELECT granted")
	}
}

// resetAdmin finds avnadmin among a cluster's users and resets its
// password, as acco does on OVH.
func resetAdmin(ctx context.Context, t *testing.T, client *ovh.Client, cluster string) string {
	t.Helper()
	var ids []string
	if err := client.GetWithContext(ctx, cluster+"/user", &ids); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		var u struct {
			Username string `json:"username"`
		}
		if err := client.GetWithContext(ctx, cluster+"/user/"+id, &u); err != nil {
			t.Fatal(err)
		}
		if u.Username != "avnadmin" {
			continue
		}
		var reset struct {
			Password string `json:"password"`
		}
		if err := client.PostWithContext(ctx, cluster+"/user/"+id+"/credentials/reset", nil, &reset); err != nil {
			t.Fatal(err)
		}
		return reset.Password
	}
	t.Fatal("no avnadmin among the cluster's users")
	return ""
}
