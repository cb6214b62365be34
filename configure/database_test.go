package configure

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/accoreboot/acco/internal/devicecred"
	"github.com/accoreboot/acco/internal/localcloud/pgserver"
	"github.com/accoreboot/acco/internal/spec"
)

// TestBootstrapDatabaseThroughSSHTunnel runs the database bootstrap against
// a real PostgreSQL server set up as OVH's managed PostgreSQL (avnadmin, not
// a superuser; TLS), reached through a direct-tcpip channel of a real sshd,
// twice: the second run must change nothing.
func TestBootstrapDatabaseThroughSSHTunnel(t *testing.T) {
	if _, err := pgserver.FindBinDir(); err != nil {
		t.Skipf("no PostgreSQL binaries (apt-get install postgresql): %v", err)
	}
	tg := startSSHD(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "configure-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	m, err := pgserver.Open(ctx, dir, pgserver.Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	host, port, err := m.CreateCluster(ctx, "main")
	if err != nil {
		t.Fatal(err)
	}
	for _, db := range []string{"acco", "powersync_storage"} {
		if err := m.CreateDatabase(ctx, "main", db); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []string{"emqx", "powersync", "backend"} {
		if err := m.CreateUser(ctx, "main", u, u+"-pw-S3CRET"); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.SetPassword(ctx, "main", "avnadmin", "admin-S3CRET"); err != nil {
		t.Fatal(err)
	}
	ca, err := m.CACertificate(ctx, "main")
	if err != nil {
		t.Fatal(err)
	}
	env, err := spec.Load("../environments", "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	keys := &memKeys{keys: map[string][]string{"app": {authorized(tg.HostKey)}}}
	r, err := (&SSHConnector{Signer: tg.Signer, Keys: keys}).Connect(ctx, tg.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	admins := map[string]DBAdmin{"main": {Host: host, Port: port, User: "avnadmin", Password: "admin-S3CRET", CACert: ca}}
	mqttUsers := map[string]string{devicecred.BackendUser: "mqtt-backend-S3CRET", devicecred.VerifyDevice: "mqtt-verify-S3CRET"}

	applied := func(steps []DBStep) []string {
		var out []string
		for _, s := range steps {
			if s.Applied {
				out = append(out, s.Address)
			}
		}
		return out
	}
	check, err := BootstrapDatabases(ctx, r.DialContext, env, admins, mqttUsers, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied(check)) != 0 {
		t.Errorf("check mode applied %v", applied(check))
	}
	steps, err := BootstrapDatabases(ctx, r.DialContext, env, admins, mqttUsers, false)
	if err != nil {
		t.Fatal(err)
	}
	got := applied(steps)
	for _, want := range []string{
		"database_db.main.acco:table:devices",
		"database_db.main.acco:table:positions",
		"database_db.main.acco:table:device_last_position",
		"database_db.main.acco:table:mqtt_users",
		"database_db.main.acco:mqtt_user:backend",
		"database_db.main.acco:mqtt_user:acco-verify",
		"database_db.main.acco:grant:emqx:TABLE \"public\".\"mqtt_users\"",
		"database_db.main.acco:grant:backend:TABLE \"public\".\"mqtt_users\"",
		"database_db.main.acco:publication:powersync",
		"database_db.main.acco:grant:emqx:TABLE \"public\".\"positions\"",
		"database_db.main.powersync_storage:grant:powersync:database",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("first run did not apply %s; applied:\n%s", want, strings.Join(got, "\n"))
		}
	}
	for _, s := range steps {
		if strings.Contains(strings.ToUpper(s.SQL), "ALL TABLES") && strings.Contains(s.SQL, "PUBLICATION") {
			t.Errorf("publication FOR ALL TABLES: %s", s.SQL)
		}
	}
	again, err := BootstrapDatabases(ctx, r.DialContext, env, admins, mqttUsers, false)
	if err != nil {
		t.Fatal(err)
	}
	if a := applied(again); len(a) != 0 {
		t.Errorf("second run applied %v", a)
	}

	// What PowerSync will find: the publication on the explicit list of
	// tables, all created by the bootstrap (owned by avnadmin, who can
	// therefore grant them, as on PostgreSQL 16 and later it must).
	conn, err := connectDB(ctx, r.DialContext, admins["main"], "acco")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, _ := conn.Query(ctx, "SELECT tablename FROM pg_publication_tables WHERE pubname = 'powersync' ORDER BY 1")
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tables, []string{"device_last_position", "devices"}) {
		t.Errorf("published tables = %v", tables)
	}
	// acco's MQTT users are in the device table, hashed: the stored row
	// verifies the password, and no column holds it in clear.
	var h devicecred.Hash
	var kind string
	if err := conn.QueryRow(ctx, "SELECT password_hash, salt, kind FROM mqtt_users WHERE username = 'backend'").Scan(&h.PasswordHash, &h.Salt, &kind); err != nil {
		t.Fatal(err)
	}
	if !h.Verify("mqtt-backend-S3CRET") || kind != devicecred.KindService || strings.Contains(h.PasswordHash+h.Salt, "S3CRET") {
		t.Errorf("backend row = %+v (%s)", h, kind)
	}
	// A new password for the backend rewrites its row, and only its row.
	mqttUsers[devicecred.BackendUser] = "mqtt-backend-rotated-S3CRET"
	steps, err = BootstrapDatabases(ctx, r.DialContext, env, admins, mqttUsers, false)
	if err != nil {
		t.Fatal(err)
	}
	if a := applied(steps); !slices.Equal(a, []string{"database_db.main.acco:mqtt_user:backend"}) {
		t.Errorf("after a password change, applied %v", a)
	}
}
