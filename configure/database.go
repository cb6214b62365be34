package configure

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/accoreboot/acco/internal/devicecred"
	"github.com/accoreboot/acco/internal/spec"
)

// DialFunc opens a TCP connection; Runner.DialContext (an SSH tunnel
// through the services host) in production, since the database admits only
// the instance.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// DBAdmin is how acco logs in to a managed cluster as its admin (avnadmin on
// OVH).
type DBAdmin struct {
	Host     string
	Port     int
	User     string
	Password string
	// CACert is the cluster's CA (PEM); the connection is verify-full, and
	// without it acco does not connect (the local cloud's clusters have
	// one too).
	CACert string
}

// ErrNoClusterCA is returned instead of connecting to a cluster whose CA
// certificate is unknown: acco verifies the server (verify-full), never
// connects unverified.
var ErrNoClusterCA = errors.New("no CA certificate for the cluster: acco verifies its server (verify-full) and never connects unverified; " +
	"OVH returns the CA once the cluster is READY (GET /cloud/project/{serviceName}/database/postgresql/{clusterId}/certificates): " +
	"run acco again when acco plan shows the cluster ready, and ask OVH support if it stays empty")

// DBStep is one idempotent statement of the bootstrap.
type DBStep struct {
	// Address is database_db.CLUSTER.DB plus what it is about.
	Address string `json:"address"`
	SQL     string `json:"sql"`
	// Applied is false when the statement had nothing to do (checked first)
	// or was skipped; Note says why.
	Applied bool   `json:"applied"`
	Note    string `json:"note,omitempty"`
}

func qi(parts ...string) string { return pgx.Identifier(parts).Sanitize() }

// tableIdent quotes table or schema.table.
func tableIdent(t string) (schema, table, quoted string) {
	schema, table = "public", t
	if s, tb, ok := strings.Cut(t, "."); ok {
		schema, table = s, tb
	}
	return schema, table, qi(schema, table)
}

// devicesDDL creates the devices table the apps see (published to
// PowerSync): names and labels, never credentials.
func devicesDDL() string {
	return "CREATE TABLE IF NOT EXISTS " + qi("public", spec.DevicesTable) + ` (
  device_id  text        PRIMARY KEY,
  label      text,
  created_at timestamptz NOT NULL DEFAULT now()
)`
}

// positionsDDL creates the positions hypertable's table and the latest
// position table (plain, publishable).
func positionsDDL(table, latest string) []string {
	_, _, q := tableIdent(table)
	out := []string{
		"CREATE TABLE IF NOT EXISTS " + q + ` (
  time        timestamptz      NOT NULL,
  device_id   text             NOT NULL,
  lat         double precision NOT NULL,
  lon         double precision NOT NULL,
  speed_kmh   real,
  heading     real,
  altitude_m  real,
  accuracy_m  real,
  received_at timestamptz      NOT NULL DEFAULT now(),
  extra       jsonb
)`,
	}
	if latest != "" {
		_, _, l := tableIdent(latest)
		out = append(out, "CREATE TABLE IF NOT EXISTS "+l+` (
  device_id  text PRIMARY KEY,
  time       timestamptz      NOT NULL,
  lat        double precision NOT NULL,
  lon        double precision NOT NULL,
  speed_kmh  real,
  heading    real,
  updated_at timestamptz      NOT NULL DEFAULT now()
)`)
	}
	return out
}

// BootstrapDatabases brings every logical database of env that a service
// uses to what the services need, over dial, and returns the steps. All
// statements are idempotent; the publication is an explicit table list
// (never FOR ALL TABLES) and is made to match the YAML's list exactly.
// admins are by cluster name. mqttUsers are the MQTT users acco manages
// (the backend, the verification device) with their passwords: their rows
// in the device table are (re)made when the stored hash does not match.
// With check, nothing is changed: the steps that would apply are returned
// with Applied false and Note "would apply".
func BootstrapDatabases(ctx context.Context, dial DialFunc, env *spec.Environment, admins map[string]DBAdmin, mqttUsers map[string]string, check bool) ([]DBStep, error) {
	type target struct{ cluster, db string }
	need := map[target]bool{}
	s := env.Services
	flow := env.DataFlow()
	if flow != nil {
		need[target{flow.DB.Cluster, flow.DB.Database}] = true
		if flow.HasDevices {
			need[target{flow.Devices.Cluster, flow.Devices.Database}] = true
		}
	}
	if s.PowerSync != nil {
		need[target{s.PowerSync.Source.Cluster, s.PowerSync.Source.Database}] = true
	}
	for name, c := range env.Databases {
		for _, u := range c.Users {
			for _, g := range u.Grants {
				need[target{name, g.Database}] = true
			}
		}
	}
	targets := make([]target, 0, len(need))
	for t := range need {
		targets = append(targets, t)
	}
	sort.Slice(targets, func(i, j int) bool {
		if targets[i].cluster != targets[j].cluster {
			return targets[i].cluster < targets[j].cluster
		}
		return targets[i].db < targets[j].db
	})
	var steps []DBStep
	for _, t := range targets {
		admin, ok := admins[t.cluster]
		if !ok {
			return steps, fmt.Errorf("database %s: no admin credentials (provision it first)", t.cluster)
		}
		conn, err := connectDB(ctx, dial, admin, t.db)
		if err != nil {
			return steps, fmt.Errorf("connecting to %s/%s: %w", t.cluster, t.db, err)
		}
		b := &dbBootstrap{conn: conn, check: check, addr: spec.Address(spec.KindDatabaseDB, t.cluster, t.db)}
		err = b.run(ctx, env, t.cluster, t.db, flow, mqttUsers)
		steps = append(steps, b.steps...)
		conn.Close(context.WithoutCancel(ctx))
		if err != nil {
			return steps, fmt.Errorf("bootstrapping %s/%s: %w", t.cluster, t.db, err)
		}
	}
	return steps, nil
}

func connectDB(ctx context.Context, dial DialFunc, a DBAdmin, db string) (*pgx.Conn, error) {
	u := url.URL{Scheme: "postgres", Host: net.JoinHostPort(a.Host, strconv.Itoa(a.Port)), Path: "/" + db, RawQuery: "sslmode=require&connect_timeout=20"}
	cfg, err := pgx.ParseConfig(u.String())
	if err != nil {
		return nil, err
	}
	cfg.User, cfg.Password = a.User, a.Password
	if strings.TrimSpace(a.CACert) == "" {
		return nil, ErrNoClusterCA
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(a.CACert)) {
		return nil, errors.New("the cluster's CA certificate does not parse (PEM expected, as OVH's GET .../certificates returns it)")
	}
	cfg.TLSConfig = &tls.Config{ServerName: a.Host, RootCAs: pool, MinVersion: tls.VersionTLS12}
	cfg.Fallbacks = nil
	if dial != nil {
		cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) { return dial(ctx, network, addr) }
		cfg.LookupFunc = func(_ context.Context, host string) ([]string, error) { return []string{host}, nil }
	}
	return pgx.ConnectConfig(ctx, cfg)
}

type dbBootstrap struct {
	conn  *pgx.Conn
	check bool
	addr  string
	steps []DBStep
}

func (b *dbBootstrap) note(what, sql, note string) {
	b.steps = append(b.steps, DBStep{Address: b.addr + ":" + what, SQL: sql, Note: note})
}

func (b *dbBootstrap) exec(ctx context.Context, what, sql string) error {
	if b.check {
		b.note(what, sql, "would apply")
		return nil
	}
	if _, err := b.conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	b.steps = append(b.steps, DBStep{Address: b.addr + ":" + what, SQL: sql, Applied: true})
	return nil
}

func (b *dbBootstrap) bool(ctx context.Context, sql string, args ...any) (bool, error) {
	var v bool
	err := b.conn.QueryRow(ctx, sql, args...).Scan(&v)
	return v, err
}

func (b *dbBootstrap) tableExists(ctx context.Context, t string) (bool, error) {
	s, tb, _ := tableIdent(t)
	return b.bool(ctx, "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = $2)", s, tb)
}

func (b *dbBootstrap) run(ctx context.Context, env *spec.Environment, cluster, db string, flow *spec.Flow, mqttUsers map[string]string) error {
	c := env.Databases[cluster]
	// Extensions, where the server offers them.
	for _, ext := range c.Extensions {
		avail, err := b.bool(ctx, "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = $1)", ext)
		if err != nil {
			return err
		}
		installed, err := b.bool(ctx, "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = $1)", ext)
		if err != nil {
			return err
		}
		sql := "CREATE EXTENSION IF NOT EXISTS " + qi(ext)
		switch {
		case installed:
			b.note("extension:"+ext, sql, "installed")
		case !avail:
			b.note("extension:"+ext, sql, "not offered by this server: skipped")
		default:
			if err := b.exec(ctx, "extension:"+ext, sql); err != nil {
				return err
			}
		}
	}
	// The flow's tables, owned by the admin (who can then grant them):
	// devices, the positions (a hypertable when TimescaleDB is installed),
	// the latest positions, and the device table with acco's MQTT users.
	if flow != nil && flow.DB.Cluster == cluster && flow.DB.Database == db {
		if err := b.flowTables(ctx, flow); err != nil {
			return err
		}
	}
	if flow != nil && flow.HasDevices && flow.Devices.Cluster == cluster && flow.Devices.Database == db {
		if err := b.deviceTable(ctx, mqttUsers); err != nil {
			return err
		}
	}
	// Grants, for tables that exist.
	users := make([]string, 0, len(c.Users))
	for u := range c.Users {
		users = append(users, u)
	}
	sort.Strings(users)
	for _, u := range users {
		for _, g := range c.Users[u].Grants {
			if g.Database != db {
				continue
			}
			privs := strings.ToUpper(strings.Join(g.Privileges, ", "))
			switch {
			case len(g.Tables) > 0:
				var objs []string
				for _, t := range g.Tables {
					switch {
					case t == "*":
						objs = append(objs, "ALL TABLES IN SCHEMA "+qi(orDefault(g.Schema, "public")))
					case strings.HasSuffix(t, ".*"):
						objs = append(objs, "ALL TABLES IN SCHEMA "+qi(strings.TrimSuffix(t, ".*")))
					default:
						ok, err := b.tableExists(ctx, t)
						if err != nil {
							return err
						}
						_, _, q := tableIdent(t)
						if !ok {
							b.note("grant:"+u+":"+t, "GRANT "+privs+" ON TABLE "+q+" TO "+qi(u), "table does not exist yet (created by the backend's migrations?): run configure again after")
							continue
						}
						objs = append(objs, "TABLE "+q)
					}
				}
				for _, o := range objs {
					table, isTable := strings.CutPrefix(o, "TABLE ")
					if err := b.grant(ctx, "grant:"+u+":"+o, "GRANT "+privs+" ON "+o+" TO "+qi(u), isTable, "table", u, table, g.Privileges); err != nil {
						return err
					}
				}
			case g.Schema != "":
				if err := b.grant(ctx, "grant:"+u+":schema "+g.Schema, "GRANT "+privs+" ON SCHEMA "+qi(g.Schema)+" TO "+qi(u), true, "schema", u, g.Schema, g.Privileges); err != nil {
					return err
				}
			default:
				if err := b.grant(ctx, "grant:"+u+":database", "GRANT "+privs+" ON DATABASE "+qi(db)+" TO "+qi(u), true, "database", u, db, g.Privileges); err != nil {
					return err
				}
			}
		}
	}
	// PowerSync: wal_level and the publication, an explicit table list.
	if p := env.Services.PowerSync; p != nil && p.Source.Cluster == cluster && p.Source.Database == db {
		var wal string
		if err := b.conn.QueryRow(ctx, "SHOW wal_level").Scan(&wal); err != nil {
			return err
		}
		if wal != "logical" {
			return fmt.Errorf("wal_level is %q: PowerSync needs logical replication (ask OVH support, or check the cluster's advanced parameters)", wal)
		}
		return b.publication(ctx, orDefault(p.Publication, spec.DefaultPublication), p.Tables)
	}
	return nil
}

// createTable creates a table unless it exists.
func (b *dbBootstrap) createTable(ctx context.Context, table, sql string) error {
	ok, err := b.tableExists(ctx, table)
	if err != nil {
		return err
	}
	if ok {
		b.note("table:"+table, sql, "exists")
		return nil
	}
	return b.exec(ctx, "table:"+table, sql)
}

func (b *dbBootstrap) flowTables(ctx context.Context, flow *spec.Flow) error {
	if err := b.createTable(ctx, spec.DevicesTable, devicesDDL()); err != nil {
		return err
	}
	for i, sql := range positionsDDL(flow.Table, flow.LatestTable) {
		t := flow.Table
		if i == 1 {
			t = flow.LatestTable
		}
		if err := b.createTable(ctx, t, sql); err != nil {
			return err
		}
	}
	_, _, q := tableIdent(flow.Table)
	tsdb, err := b.bool(ctx, "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')")
	if err != nil {
		return err
	}
	if tsdb {
		s, tb, _ := tableIdent(flow.Table)
		hyper, err := b.bool(ctx, "SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_schema = $1 AND hypertable_name = $2)", s, tb)
		if err != nil {
			return err
		}
		sql := "SELECT create_hypertable(" + quoteLiteral(s+"."+tb) + ", by_range('time', INTERVAL '1 day'), if_not_exists => TRUE)"
		if hyper {
			b.note("hypertable:"+flow.Table, sql, "exists")
		} else if err := b.exec(ctx, "hypertable:"+flow.Table, sql); err != nil {
			return err
		}
	} else {
		b.note("hypertable:"+flow.Table, "", "timescaledb not installed: positions stays a plain table")
	}
	// Unique (device_id, time): dedupes QoS 1 redeliveries (ON CONFLICT).
	idx := strings.ReplaceAll(strings.ReplaceAll(flow.Table, ".", "_"), "\"", "") + "_device_time_uidx"
	sql := "CREATE UNIQUE INDEX IF NOT EXISTS " + qi(idx) + " ON " + q + " (device_id, time DESC)"
	ps, _, _ := tableIdent(flow.Table)
	has, err := b.bool(ctx, "SELECT EXISTS (SELECT 1 FROM pg_indexes WHERE schemaname = $1 AND indexname = $2)", ps, idx)
	if err != nil {
		return err
	}
	if has {
		b.note("index:"+idx, sql, "exists")
		return nil
	}
	return b.exec(ctx, "index:"+idx, sql)
}

// deviceTable creates the device table and makes the rows of acco's own
// MQTT users match their passwords (a row is rewritten only when its hash
// does not verify, so a no-op run changes nothing).
func (b *dbBootstrap) deviceTable(ctx context.Context, mqttUsers map[string]string) error {
	q := qi("public", devicecred.Table)
	exists, err := b.tableExists(ctx, devicecred.Table)
	if err != nil {
		return err
	}
	if exists {
		b.note("table:"+devicecred.Table, devicecred.TableDDL(q), "exists")
	} else if err := b.exec(ctx, "table:"+devicecred.Table, devicecred.TableDDL(q)); err != nil {
		return err
	}
	names := make([]string, 0, len(mqttUsers))
	for n := range mqttUsers {
		names = append(names, n)
	}
	sort.Strings(names)
	upsert := "INSERT INTO " + q + " (username, password_hash, salt, is_superuser, kind) VALUES ($1, $2, $3, false, 'service') " +
		"ON CONFLICT (username) DO UPDATE SET password_hash = EXCLUDED.password_hash, salt = EXCLUDED.salt, is_superuser = false, kind = 'service', updated_at = now()"
	for _, n := range names {
		what := "mqtt_user:" + n
		if exists {
			var h devicecred.Hash
			err := b.conn.QueryRow(ctx, "SELECT password_hash, salt FROM "+q+" WHERE username = $1", n).Scan(&h.PasswordHash, &h.Salt)
			switch {
			case err == nil && h.Verify(mqttUsers[n]):
				b.note(what, upsert, "up to date")
				continue
			case err != nil && !errors.Is(err, pgx.ErrNoRows):
				return fmt.Errorf("%s: %w", what, err)
			}
		}
		if b.check {
			b.note(what, upsert, "would apply")
			continue
		}
		h, err := devicecred.New(mqttUsers[n])
		if err != nil {
			return err
		}
		if _, err := b.conn.Exec(ctx, upsert, n, h.PasswordHash, h.Salt); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		b.steps = append(b.steps, DBStep{Address: b.addr + ":" + what, SQL: upsert, Applied: true})
	}
	return nil
}

var allPrivileges = map[string][]string{
	"table":    {"select", "insert", "update", "delete", "truncate", "references", "trigger"},
	"schema":   {"usage", "create"},
	"database": {"connect", "create", "temporary"},
}

// grant runs a GRANT unless the user already holds every privilege (checked
// with has_*_privilege when checkable), so a no-op run reports no change.
func (b *dbBootstrap) grant(ctx context.Context, what, sql string, checkable bool, level, user, obj string, privs []string) error {
	if checkable {
		var want []string
		for _, p := range privs {
			if p == "all" {
				want = append(want, allPrivileges[level]...)
			} else {
				want = append(want, p)
			}
		}
		held := true
		for _, p := range want {
			ok, err := b.bool(ctx, "SELECT has_"+level+"_privilege($1, $2, $3)", user, obj, strings.ToUpper(p))
			if err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			held = held && ok
		}
		if held {
			b.note(what, sql, "granted")
			return nil
		}
	}
	return b.exec(ctx, what, sql)
}

func (b *dbBootstrap) publication(ctx context.Context, name string, tables []string) error {
	want := map[string]string{} // schema.table -> quoted
	for _, t := range tables {
		ok, err := b.tableExists(ctx, t)
		if err != nil {
			return err
		}
		s, tb, q := tableIdent(t)
		if !ok {
			b.note("publication:"+name+":"+t, "ALTER PUBLICATION "+qi(name)+" ADD TABLE "+q, "table does not exist yet: not published; run configure again after the backend's migrations")
			continue
		}
		want[s+"."+tb] = q
	}
	exists, err := b.bool(ctx, "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)", name)
	if err != nil {
		return err
	}
	if !exists {
		keys := make([]string, 0, len(want))
		for k := range want {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		sql := "CREATE PUBLICATION " + qi(name)
		if len(keys) > 0 {
			var qs []string
			for _, k := range keys {
				qs = append(qs, want[k])
			}
			sql += " FOR TABLE " + strings.Join(qs, ", ")
		}
		return b.exec(ctx, "publication:"+name, sql)
	}
	var flags bool
	if err := b.conn.QueryRow(ctx, "SELECT pubinsert AND pubupdate AND pubdelete AND pubtruncate AND NOT pubviaroot AND NOT puballtables FROM pg_publication WHERE pubname = $1", name).Scan(&flags); err != nil {
		return err
	}
	if !flags {
		return fmt.Errorf("publication %s exists but is FOR ALL TABLES, publishes via the partition root or leaves out insert/update/delete/truncate: drop it and run configure again", name)
	}
	rows, err := b.conn.Query(ctx, "SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = $1", name)
	if err != nil {
		return err
	}
	have, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	var add, drop []string
	for k := range want {
		if !slices.Contains(have, k) {
			add = append(add, k)
		}
	}
	for _, k := range have {
		if _, ok := want[k]; !ok {
			drop = append(drop, k)
		}
	}
	sort.Strings(add)
	sort.Strings(drop)
	for _, k := range add {
		if err := b.exec(ctx, "publication:"+name+":add "+k, "ALTER PUBLICATION "+qi(name)+" ADD TABLE "+want[k]); err != nil {
			return err
		}
	}
	for _, k := range drop {
		s, tb, _ := strings.Cut(k, ".")
		if err := b.exec(ctx, "publication:"+name+":drop "+k, "ALTER PUBLICATION "+qi(name)+" DROP TABLE "+qi(s, tb)); err != nil {
			return err
		}
	}
	if len(add) == 0 && len(drop) == 0 {
		b.note("publication:"+name, "", "up to date")
	}
	return nil
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// ConnectDB logs in to the logical database db of a cluster as admin, over
// dial (TLS, verify-full when the admin has the cluster's CA).
func ConnectDB(ctx context.Context, dial DialFunc, admin DBAdmin, db string) (*pgx.Conn, error) {
	return connectDB(ctx, dial, admin, db)
}
