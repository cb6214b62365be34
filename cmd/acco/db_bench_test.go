package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/accoreboot/acco/configure"
	"github.com/accoreboot/acco/internal/localcloud"
	"github.com/accoreboot/acco/internal/pgdump"
)

// BenchmarkDBStopStart measures acco db stop and acco db start of
// preprod's database holding $ACCO_BENCH_DB_MIB MiB of positions (100 by
// default) on a local cloud with real PostgreSQL, phase by phase, beside
// plain pg_dump and pg_restore of the same database on the same server
// (the SQL part of a stop and a start), and reports the ratios:
//
//	go test ./cmd/acco -run '^$' -bench DBStopStart -benchtime 3x
func BenchmarkDBStopStart(b *testing.B) {
	mib := 100
	if v := os.Getenv("ACCO_BENCH_DB_MIB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("ACCO_BENCH_DB_MIB=%q: give a number of MiB", v)
		}
		mib = n
	}
	ctx := context.Background()
	envDir, err := filepath.Abs("../../environments")
	if err != nil {
		b.Fatal(err)
	}
	startBenchCloud(b)
	b.Setenv("ACCO_ENVIRONMENTS", envDir)
	b.Chdir(b.TempDir())
	acco := func(args ...string) string {
		b.Helper()
		var out, errb bytes.Buffer
		if code := run(ctx, args, streams{in: strings.NewReader(""), out: &out, err: &errb}, os.LookupEnv); code != 0 {
			b.Fatalf("acco %s: exit %d: %s", strings.Join(args, " "), code, errb.String())
		}
		return out.String()
	}
	sql := func(db, q string) string {
		b.Helper()
		var out bytes.Buffer
		if err := runDBSQL(&out, envDir, "preprod", "main", db, q); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
		return strings.TrimSpace(out.String())
	}
	acco("bootstrap")
	acco("apply", "preprod", "--auto-approve")

	// Positions until the table and its index reach the size asked for.
	sql("acco", `CREATE TABLE positions (time timestamptz NOT NULL, device_id text NOT NULL, lat double precision NOT NULL, lon double precision NOT NULL, speed_kmh real, received_at timestamptz NOT NULL DEFAULT now())`)
	sql("acco", `CREATE UNIQUE INDEX ON positions (device_id, time)`)
	for batch := 0; ; batch++ {
		size, _ := strconv.ParseInt(sql("acco", `SELECT pg_total_relation_size('positions')`), 10, 64)
		if size >= int64(mib)<<20 {
			b.Logf("positions: %d MiB, %s rows", size>>20, sql("acco", "SELECT count(*) FROM positions"))
			break
		}
		sql("acco", `INSERT INTO positions (time, device_id, lat, lon, speed_kmh)
SELECT timestamptz '2026-01-01 00:00:00+00' + (i + `+strconv.Itoa(batch*200000)+`) * interval '1 second', 'tracker-' || (i % 500), 45 + random(), 5 + random(), (random() * 90)::real
FROM generate_series(1, 200000) i`)
	}

	// Plain pg_dump and pg_restore of the same database on the same server.
	admin, err := adminLogin(ctx, envDir, "preprod", "main")
	if err != nil {
		b.Fatal(err)
	}
	cache, _ := os.UserCacheDir()
	tools, err := pgdump.FindTools(ctx, pgdump.DefaultDirs(cache), 0)
	if err != nil {
		b.Fatal(err)
	}
	target := func(db string) pgdump.Target {
		return pgdump.Target{Host: admin.Host, Port: admin.Port, User: admin.User, Password: admin.Password, CACert: admin.CACert, Database: db}
	}
	dump := filepath.Join(b.TempDir(), "acco.dump")
	start := time.Now()
	if err := pgdump.Dump(ctx, tools, target("acco"), dump); err != nil {
		b.Fatal(err)
	}
	pgDump := time.Since(start)
	conn, err := configure.ConnectAdmin(ctx, nil, admin, "defaultdb")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE bench_restore"); err != nil {
		b.Fatal(err)
	}
	start = time.Now()
	if err := pgdump.Restore(ctx, tools, target("bench_restore"), dump); err != nil {
		b.Fatal(err)
	}
	pgRestore := time.Since(start)
	if _, err := conn.Exec(ctx, "DROP DATABASE bench_restore"); err != nil {
		b.Fatal(err)
	}
	conn.Close(ctx)

	phases := map[string]time.Duration{}
	var stop, startTotal time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		addPhases(b, phases, acco("db", "stop", "preprod", "--auto-approve", "--json"))
		t1 := time.Now()
		addPhases(b, phases, acco("db", "start", "preprod", "--json"))
		stop += t1.Sub(t0)
		startTotal += time.Since(t1)
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(stop.Seconds()/n, "stop-s")
	b.ReportMetric(startTotal.Seconds()/n, "start-s")
	b.ReportMetric(pgDump.Seconds(), "pg_dump-s")
	b.ReportMetric(pgRestore.Seconds(), "pg_restore-s")
	b.ReportMetric(stop.Seconds()/n/pgDump.Seconds(), "stop/pg_dump")
	b.ReportMetric(startTotal.Seconds()/n/pgRestore.Seconds(), "start/pg_restore")
	for name, d := range phases {
		b.ReportMetric(d.Seconds()/n, name+"-s")
	}
}

// addPhases adds the db_phase lines of a --json output to phases, by the
// phase's first word(s) (dump, delete-cluster, create-cluster, restore).
func addPhases(b *testing.B, phases map[string]time.Duration, out string) {
	b.Helper()
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var l dbPhaseLine
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Type != "db_phase" {
			continue
		}
		f := strings.Fields(l.Phase)
		name := f[0]
		if len(f) > 1 && f[1] != "" && (f[1][0] < '0' || f[1][0] > '9') {
			name += "-" + f[1]
		}
		phases[name] += time.Duration(l.Duration * float64(time.Second))
	}
}

// startBenchCloud serves a local cloud with real PostgreSQL for the
// benchmark and points the process's environment at it.
func startBenchCloud(b *testing.B) {
	b.Helper()
	dir := b.TempDir()
	// The cluster servers run as the postgres user when root: let it in.
	for d := dir; d != "/" && d != filepath.Clean(os.TempDir()); d = filepath.Dir(d) {
		_ = os.Chmod(d, 0o711)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c, err := localcloud.Start(ctx, localcloud.Options{
		Dir: dir, Postgres: localcloud.PostgresOn,
		Projects:   []localcloud.Project{{Env: "preprod", ID: "00000000000000000000000000000002"}},
		BuildDelay: 10 * time.Millisecond, AddressDelay: 10 * time.Millisecond,
		DBCreateDelay: 100 * time.Millisecond, DBDeleteDelay: 50 * time.Millisecond,
	})
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Serve(ctx) }()
	b.Cleanup(func() {
		cancel()
		<-done
		_ = c.Close(context.Background())
	})
	info := c.Info()
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err := http.Get(info.APIURL + "/localcloud/status")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("the local cloud does not answer")
		}
		time.Sleep(20 * time.Millisecond)
	}
	creds, err := localcloud.LoadCredentials(dir)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := localcloud.WriteCloudsYAML(&info, creds); err != nil {
		b.Fatal(err)
	}
	exports, err := localcloud.Exports(&info, creds, "preprod")
	if err != nil {
		b.Fatal(err)
	}
	for k, v := range localcloud.ParseExports(exports) {
		b.Setenv(k, v)
	}
	key := filepath.Join(dir, "deploy.pub")
	if err := os.WriteFile(key, []byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBn2Mg6/8LZm6XxJ3yYzyD1vE5qH/9bQkxW6mDaxwCCg deploy@acco\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	b.Setenv("ACCO_DEPLOY_PUBLIC_KEY_FILE", key)
	b.Setenv("ACCO_SSH_KEY", "")
}
