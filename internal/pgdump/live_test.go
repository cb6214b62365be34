package pgdump_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/accoreboot/acco/internal/localcloud/pgserver"
	"github.com/accoreboot/acco/internal/pgdump"
)

// cluster is a real PostgreSQL 17 cluster of the local cloud, set up as a
// managed one: avnadmin with a password, a user, and a database "shop" with
// a table, a sequence, rows and grants to the user.
type cluster struct {
	m     *pgserver.Manager
	id    string
	admin pgdump.Target // avnadmin on shop
	tools pgdump.Tools
}

const (
	adminPassword  = "admin:Pass\\word1"
	readerPassword = "reader-Password2"
)

// tools finds PostgreSQL 17 client tools or skips the test.
func tools(t *testing.T, major int) pgdump.Tools {
	t.Helper()
	cache, _ := os.UserCacheDir()
	tl, err := pgdump.FindTools(context.Background(), pgdump.DefaultDirs(cache), major)
	if err != nil {
		t.Skipf("skipping: no PostgreSQL %d client tools (run scripts/ensure-pgclient.sh, or make deps): %v", major, err)
	}
	return tl
}

// newCluster starts a PostgreSQL 17 cluster (skipping when the pinned
// PostgreSQL 17 or the client tools are not installed) and fills "shop".
func newCluster(t *testing.T, ctx context.Context) *cluster {
	t.Helper()
	pinned := false
	for _, d := range pgserver.PinnedBinDirs() {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			pinned = true
		}
	}
	if !pinned {
		t.Skipf("skipping: the local cloud's PostgreSQL 17 is not installed in %v: run scripts/ensure-postgres.sh (make deps)", pgserver.PinnedBinDirs())
	}
	tl := tools(t, 17)
	dir, err := os.MkdirTemp("", "pgdump-test-") // reachable by the servers' user, unlike t.TempDir
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	m, err := pgserver.Open(ctx, dir, pgserver.Options{Logf: t.Logf, Host: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	if m.Server().Major() != "17" {
		t.Fatalf("the local cloud runs %s, not PostgreSQL 17", m.Server())
	}
	const id = "pgdump-test"
	host, port, err := m.CreateCluster(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := m.CACertificate(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	must(t, m.SetPassword(ctx, id, "avnadmin", adminPassword))
	must(t, m.CreateUser(ctx, id, "reader", readerPassword))
	must(t, m.CreateDatabase(ctx, id, "shop"))
	c := &cluster{m: m, id: id, tools: tl, admin: pgdump.Target{
		Host: host, Port: port, User: "avnadmin", Password: adminPassword, CACert: ca, Database: "shop",
	}}
	conn := c.connect(t, ctx, c.admin)
	for _, q := range []string{
		"CREATE SEQUENCE order_no START 100",
		"CREATE TABLE items (id int PRIMARY KEY DEFAULT nextval('order_no'), name text NOT NULL, added timestamptz DEFAULT now())",
		"INSERT INTO items (name) VALUES ('bolt'), ('nut'), ('wa''sher'), (repeat('x', 5000))",
		"SELECT nextval('order_no')", // the sequence ahead of the rows
		"GRANT SELECT ON items TO reader",
		"GRANT USAGE ON SEQUENCE order_no TO reader",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// connect opens a pgx connection verified against the cluster's CA.
func (c *cluster) connect(t *testing.T, ctx context.Context, tg pgdump.Target) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig("")
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(tg.CACert))
	cfg.Host, cfg.Port, cfg.User, cfg.Password, cfg.Database = tg.Host, uint16(tg.Port), tg.User, tg.Password, tg.Database
	cfg.TLSConfig = &tls.Config{RootCAs: pool, ServerName: tg.Host, MinVersion: tls.VersionTLS12}
	cfg.Fallbacks = nil
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect as %s to %s: %v", tg.User, tg.Database, err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// snapshot is what a restore must bring back of shop.
type snapshot struct {
	Rows      []string
	Sequence  int64
	Grants    []string
	Owner     string
	ReaderSaw int
}

func (c *cluster) snapshot(t *testing.T, ctx context.Context, db string) snapshot {
	t.Helper()
	tg := c.admin
	tg.Database = db
	conn := c.connect(t, ctx, tg)
	var s snapshot
	rows, err := conn.Query(ctx, "SELECT id || ':' || name || ':' || added::text FROM items ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	if s.Rows, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	must(t, conn.QueryRow(ctx, "SELECT last_value FROM order_no").Scan(&s.Sequence))
	must(t, conn.QueryRow(ctx, "SELECT tableowner FROM pg_tables WHERE tablename = 'items'").Scan(&s.Owner))
	rows, err = conn.Query(ctx, `SELECT grantee || ' ' || privilege_type || ' ' || table_name FROM information_schema.role_table_grants
		WHERE table_schema = 'public' UNION ALL
		SELECT 'reader USAGE order_no' WHERE has_sequence_privilege('reader', 'order_no', 'USAGE') ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	if s.Grants, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	rtg := tg
	rtg.User, rtg.Password = "reader", readerPassword
	must(t, c.connect(t, ctx, rtg).QueryRow(ctx, "SELECT count(*) FROM items").Scan(&s.ReaderSaw))
	return s
}

// countingDialer is a Dial that counts the connections it opens.
type countingDialer struct {
	n atomic.Int64
	d net.Dialer
}

func (c *countingDialer) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c.n.Add(1)
	return c.d.DialContext(ctx, network, addr)
}

func TestDumpListRestore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := newCluster(t, ctx)
	want := c.snapshot(t, ctx, "shop")
	if len(want.Rows) != 4 || want.Sequence != 104 || want.ReaderSaw != 4 {
		t.Fatalf("the set-up went wrong: %+v", want)
	}
	if c.tools.Major() < 17 {
		t.Fatalf("FindTools returned %v", c.tools)
	}

	t.Run("facts", func(t *testing.T) {
		f, err := pgdump.Facts(ctx, c.admin)
		if err != nil {
			t.Fatal(err)
		}
		if f.Major != 17 || !strings.HasPrefix(f.Version, "17.") {
			t.Errorf("version %q major %d", f.Version, f.Major)
		}
		if !reflect.DeepEqual(f.Databases, []string{"defaultdb", "postgres", "shop"}) {
			t.Errorf("databases %v", f.Databases)
		}
		if f.Extensions["shop"]["plpgsql"] == "" || len(f.Extensions) != len(f.Databases) {
			t.Errorf("extensions %v", f.Extensions)
		}
	})

	dump := filepath.Join(t.TempDir(), "shop.dump")
	var entries []string
	t.Run("dump and list", func(t *testing.T) {
		must(t, pgdump.Dump(ctx, c.tools, c.admin, dump))
		var err error
		if entries, err = pgdump.List(ctx, c.tools, dump); err != nil {
			t.Fatal(err)
		}
		for _, w := range []string{"TABLE public items avnadmin", "SEQUENCE public order_no avnadmin",
			"TABLE DATA public items avnadmin", "SEQUENCE SET public order_no avnadmin", "ACL public TABLE items avnadmin"} {
			if !slices.ContainsFunc(entries, func(e string) bool { return strings.HasSuffix(e, w) }) {
				t.Errorf("the table of contents has no %q: %q", w, entries)
			}
		}
	})

	t.Run("restore", func(t *testing.T) {
		must(t, c.m.DropDatabase(ctx, c.id, "shop"))
		must(t, c.m.CreateDatabase(ctx, c.id, "shop"))
		must(t, pgdump.Restore(ctx, c.tools, c.admin, dump))
		if got := c.snapshot(t, ctx, "shop"); !reflect.DeepEqual(got, want) {
			t.Fatalf("restored %+v\nwant %+v", got, want)
		}
	})

	t.Run("through a dial", func(t *testing.T) {
		var d countingDialer
		tg := c.admin
		tg.Dial = d.Dial
		tunneled := filepath.Join(t.TempDir(), "shop.dump")
		must(t, pgdump.Dump(ctx, c.tools, tg, tunneled))
		afterDump := d.n.Load()
		if afterDump == 0 {
			t.Fatal("pg_dump did not connect through the Dial")
		}
		must(t, c.m.CreateDatabase(ctx, c.id, "shop2"))
		tg.Database = "shop2"
		must(t, pgdump.Restore(ctx, c.tools, tg, tunneled))
		if d.n.Load() == afterDump {
			t.Fatal("pg_restore did not connect through the Dial")
		}
		if got := c.snapshot(t, ctx, "shop2"); !reflect.DeepEqual(got, want) {
			t.Fatalf("restored %+v\nwant %+v", got, want)
		}
		before := d.n.Load()
		if _, err := pgdump.Facts(ctx, tg); err != nil {
			t.Fatal(err)
		}
		if d.n.Load() == before {
			t.Fatal("Facts did not connect through the Dial")
		}
	})

	t.Run("restore fails whole", func(t *testing.T) {
		// shop is not empty: the first CREATE fails, nothing is left half
		// done (one transaction) and the error says why.
		err := pgdump.Restore(ctx, c.tools, c.admin, dump)
		if err == nil || !strings.Contains(err.Error(), "already exists") {
			t.Fatalf("got %v; want pg_restore's error", err)
		}
		if strings.Contains(err.Error(), adminPassword) {
			t.Fatalf("the error shows the password: %v", err)
		}
		t.Log(err)
	})

	t.Run("timescaledb calls", func(t *testing.T) {
		// Stand-ins for timescaledb_pre_restore() and _post_restore()
		// record their calls and whether the restored table was there.
		must(t, c.m.CreateDatabase(ctx, c.id, "shop4"))
		tg := c.admin
		tg.Database = "shop4"
		conn := c.connect(t, ctx, tg)
		for _, q := range []string{
			"CREATE TABLE acco_calls (n serial PRIMARY KEY, fn text, items_there bool)",
			`CREATE FUNCTION timescaledb_pre_restore() RETURNS bool LANGUAGE sql AS
				$$ INSERT INTO acco_calls (fn, items_there) VALUES ('pre', to_regclass('public.items') IS NOT NULL) RETURNING true $$`,
			`CREATE FUNCTION timescaledb_post_restore() RETURNS bool LANGUAGE sql AS
				$$ INSERT INTO acco_calls (fn, items_there) VALUES ('post', to_regclass('public.items') IS NOT NULL) RETURNING true $$`,
		} {
			if _, err := conn.Exec(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		calls := func() []string {
			rows, err := conn.Query(ctx, "SELECT fn || ' ' || items_there FROM acco_calls ORDER BY n")
			must(t, err)
			got, err := pgx.CollectRows(rows, pgx.RowTo[string])
			must(t, err)
			return got
		}
		must(t, pgdump.RestoreAsTimescale(ctx, c.tools, tg, dump))
		if got, want := calls(), []string{"pre false", "post true"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("calls %q, want %q", got, want)
		}
		var n int
		must(t, conn.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&n))
		if n != 4 {
			t.Fatalf("%d rows restored", n)
		}
		// A failed restore still ends with post_restore.
		if err := pgdump.RestoreAsTimescale(ctx, c.tools, tg, dump); err == nil {
			t.Fatal("restored twice into the same database")
		}
		if got, want := calls(), []string{"pre false", "post true", "pre true", "post true"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("calls %q, want %q", got, want)
		}
	})

	t.Run("objects of another role", func(t *testing.T) {
		// A backend's migrations create tables as its own user, in public
		// and in a schema of its own. Dumping and restoring them as
		// avnadmin needs avnadmin to act as that user (BorrowRoles); the
		// user's CREATE on each schema must then be granted before its
		// tables are given to it, which Restore sees to.
		must(t, c.m.CreateDatabase(ctx, c.id, "app"))
		tg := c.admin
		tg.Database = "app"
		admin := c.connect(t, ctx, tg)
		for _, q := range []string{
			"GRANT CREATE ON SCHEMA public TO reader",
			"CREATE SCHEMA backend",
			"GRANT USAGE, CREATE ON SCHEMA backend TO reader",
		} {
			if _, err := admin.Exec(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		rtg := tg
		rtg.User, rtg.Password = "reader", readerPassword
		rc := c.connect(t, ctx, rtg)
		for _, q := range []string{
			"CREATE TABLE public.notes (n int)",
			"INSERT INTO public.notes VALUES (1), (2)",
			"CREATE TABLE backend.jobs (id serial PRIMARY KEY, what text)",
			"INSERT INTO backend.jobs (what) VALUES ('sync')",
		} {
			if _, err := rc.Exec(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		out := filepath.Join(t.TempDir(), "app.dump")
		err := pgdump.Dump(ctx, c.tools, tg, out)
		if err == nil || !strings.Contains(err.Error(), "permission denied for table notes") {
			t.Fatalf("avnadmin dumped a user's table without its role: %v", err)
		}
		actsAs := func() (usage, set bool) {
			must(t, admin.QueryRow(ctx, "SELECT pg_has_role('reader', 'USAGE'), pg_has_role('reader', 'SET')").Scan(&usage, &set))
			return usage, set
		}
		roles, giveBack, err := pgdump.BorrowRoles(ctx, tg)
		must(t, err)
		if !reflect.DeepEqual(roles, []string{"reader"}) {
			t.Fatalf("borrowed %q, want reader", roles)
		}
		if u, s := actsAs(); !u || !s {
			t.Fatalf("after BorrowRoles, avnadmin has reader's privileges %v, may SET ROLE %v", u, s)
		}
		again, _, err := pgdump.BorrowRoles(ctx, tg)
		if err != nil || len(again) != 0 {
			t.Fatalf("borrowed again: %q, %v", again, err)
		}
		must(t, pgdump.Dump(ctx, c.tools, tg, out))
		must(t, c.m.CreateDatabase(ctx, c.id, "app2"))
		tg.Database = "app2"
		must(t, pgdump.Restore(ctx, c.tools, tg, out))
		must(t, giveBack(ctx))
		if u, s := actsAs(); u || s {
			t.Fatalf("after giving back, avnadmin has reader's privileges %v, may SET ROLE %v", u, s)
		}
		var adminOption bool
		must(t, admin.QueryRow(ctx, `SELECT bool_or(admin_option) FROM pg_auth_members
			WHERE roleid = 'reader'::regrole AND member = 'avnadmin'::regrole`).Scan(&adminOption))
		if !adminOption {
			t.Fatal("giving back took avnadmin's ADMIN OPTION on reader")
		}
		rtg.Database = "app2"
		var got string
		must(t, c.connect(t, ctx, rtg).QueryRow(ctx, `SELECT string_agg(schemaname || '.' || tablename || ' ' || tableowner, ', ' ORDER BY 1)
			|| ' / ' || (SELECT count(*) FROM public.notes) || ' ' || (SELECT what FROM backend.jobs)
			|| ' / ' || has_schema_privilege('reader', 'backend', 'CREATE') || ' ' || has_schema_privilege('reader', 'public', 'CREATE')
			FROM pg_tables WHERE tableowner = 'reader'`).Scan(&got))
		if want := "backend.jobs reader, public.notes reader / 2 sync / true true"; got != want {
			t.Fatalf("restored %q, want %q", got, want)
		}
	})

	t.Run("truncated dump", func(t *testing.T) {
		b, err := os.ReadFile(dump)
		must(t, err)
		cut := filepath.Join(t.TempDir(), "cut.dump")
		must(t, os.WriteFile(cut, b[:len(b)/2], 0o600))
		if _, err := pgdump.List(ctx, c.tools, cut); err == nil {
			t.Fatal("List read a truncated dump")
		}
		// Cut in the data only, past the table of contents, which
		// pg_restore --list alone reads without complaint.
		data := filepath.Join(t.TempDir(), "data.dump")
		must(t, os.WriteFile(data, b[:len(b)-50], 0o600))
		if _, err := pgdump.List(ctx, c.tools, data); err == nil || !strings.Contains(err.Error(), "read "+data) {
			t.Fatalf("List of a dump without its last 50 bytes: %v; want pg_restore's read error", err)
		}
		must(t, c.m.CreateDatabase(ctx, c.id, "shop3"))
		tg := c.admin
		tg.Database = "shop3"
		if err := pgdump.Restore(ctx, c.tools, tg, cut); err == nil {
			t.Fatal("a truncated dump restored without error")
		}
		head := filepath.Join(t.TempDir(), "head.dump")
		must(t, os.WriteFile(head, b[:20], 0o600))
		if _, err := pgdump.List(ctx, c.tools, head); err == nil {
			t.Fatal("List read a 20-byte dump")
		}
	})

	t.Run("wrong CA", func(t *testing.T) {
		tg := c.admin
		tg.CACert = otherCA(t)
		out := filepath.Join(t.TempDir(), "x.dump")
		err := pgdump.Dump(ctx, c.tools, tg, out)
		if err == nil || !strings.Contains(err.Error(), "certificate verify failed") || !strings.Contains(err.Error(), "check the CA") {
			t.Fatalf("got %v; want a certificate verification error", err)
		}
		t.Log(err)
		if _, err := pgdump.Facts(ctx, tg); err == nil {
			t.Fatal("Facts accepted a server its CA did not sign")
		}
	})

	t.Run("wrong host name", func(t *testing.T) {
		// The certificate names localhost and 127.0.0.1; through the
		// forwarder libpq must still check the name, not the forwarder's
		// address.
		tg := c.admin
		tg.Host = "127.0.0.2"
		var d net.Dialer
		tg.Dial = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", strconv.Itoa(c.admin.Port)))
		}
		err := pgdump.Dump(ctx, c.tools, tg, filepath.Join(t.TempDir(), "x.dump"))
		if err == nil || !strings.Contains(err.Error(), "127.0.0.2") {
			t.Fatalf("got %v; want a host name mismatch", err)
		}
		t.Log(err)
	})

	t.Run("dial fails", func(t *testing.T) {
		tg := c.admin
		tg.Dial = func(context.Context, string, string) (net.Conn, error) {
			return nil, os.ErrPermission
		}
		err := pgdump.Dump(ctx, c.tools, tg, filepath.Join(t.TempDir(), "x.dump"))
		if err == nil || !strings.Contains(err.Error(), "tunnel could not connect") {
			t.Fatalf("got %v; want the tunnel's error", err)
		}
		t.Log(err)
	})
}

// otherCA returns a CA certificate that signed nothing of the cluster.
func otherCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "another CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}
