package pgdump

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

// fakeTool writes an executable script name into dir.
func fakeTool(t *testing.T, dir, name, script string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// fakeVersions makes a directory whose pg_dump and pg_restore print the
// given versions (fault injection: tools of another version).
func fakeVersions(t *testing.T, dump, restore string) string {
	t.Helper()
	dir := t.TempDir()
	if dump != "" {
		fakeTool(t, dir, "pg_dump", "echo 'pg_dump (PostgreSQL) "+dump+"'\n")
	}
	if restore != "" {
		fakeTool(t, dir, "pg_restore", "echo 'pg_restore (PostgreSQL) "+restore+"'\n")
	}
	return dir
}

func TestFindInVersions(t *testing.T) {
	ctx := context.Background()
	old := fakeVersions(t, "15.14 (Debian 15.14-0+deb12u1)", "15.14 (Debian 15.14-0+deb12u1)")
	mixed := fakeVersions(t, "17.2", "16.4")
	noRestore := fakeVersions(t, "17.2", "")
	good := fakeVersions(t, "17.12 (Debian 17.12-0+deb13u1)", "17.12 (Debian 17.12-0+deb13u1)")
	newer := fakeVersions(t, "18.1", "18.1")
	empty := t.TempDir()
	for _, tc := range []struct {
		name     string
		dirs     []string
		min      int
		want     string // Tools.Version; "" for an error
		wantErrs []string
	}{
		{"too old", []string{old}, 17, "", []string{"PostgreSQL 17", "15.14", old, "make deps", "ACCO_PG_BIN", "searched x"}},
		{"nothing", []string{empty}, 17, "", []string{"no pg_dump was found", "postgresql-client-17"}},
		{"majors differ", []string{mixed}, 17, "", []string{"16.4", "17.2"}},
		{"no pg_restore", []string{noRestore}, 17, "", []string{"no " + filepath.Join(noRestore, "pg_restore")}},
		{"first good wins", []string{empty, old, good, newer}, 17, "17.12", nil},
		{"newer is fine", []string{newer}, 17, "18.1", nil},
		{"older server", []string{old}, 15, "15.14", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := findIn(ctx, tc.dirs, tc.min, "x")
			if tc.want == "" {
				if err == nil {
					t.Fatalf("found %+v; want an error", got)
				}
				for _, w := range tc.wantErrs {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Version != tc.want || filepath.Dir(got.PgDump) != filepath.Dir(got.PgRestore) {
				t.Fatalf("got %+v; want version %s", got, tc.want)
			}
		})
	}
}

func TestCandidateDirs(t *testing.T) {
	got := candidateDirs([]string{"/opt/pg/bin", "relative/bin", "/opt/pg/bin/"}, "/usr/bin/pg_dump",
		[]string{"/usr/lib/postgresql/9/bin", "/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/17/bin"})
	want := []string{"/opt/pg/bin", "/usr/bin", "/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/9/bin"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestDefaultDirs(t *testing.T) {
	for _, tc := range []struct {
		cache string
		want  []string
	}{
		{"/home/u/.cache", []string{"/usr/local/lib/acco/pgclient-17/bin", "/home/u/.cache/acco/pgclient-17/bin"}},
		{"", []string{"/usr/local/lib/acco/pgclient-17/bin"}},
		{"rel", []string{"/usr/local/lib/acco/pgclient-17/bin"}},
	} {
		if got := DefaultDirs(tc.cache); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("DefaultDirs(%q) = %v, want %v", tc.cache, got, tc.want)
		}
	}
}

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct{ out, want string }{
		{"pg_dump (PostgreSQL) 17.12 (Debian 17.12-0+deb13u1)\n", "17.12"},
		{"pg_restore (PostgreSQL) 17.2\n", "17.2"},
		{"pg_dump (PostgreSQL) 18devel", "18"},
		{"pg_dump (PostgreSQL) 9.6.24", "9.6"},
		{"something else", ""},
	} {
		got, err := parseVersion(tc.out)
		if (err != nil) != (tc.want == "") || got != tc.want {
			t.Errorf("parseVersion(%q) = %q, %v; want %q", tc.out, got, err, tc.want)
		}
	}
	if m := (Tools{Version: "17.12"}).Major(); m != 17 {
		t.Errorf("Major of 17.12 = %d", m)
	}
}

func TestHasExtension(t *testing.T) {
	toc := []string{
		"3; 3079 16385 EXTENSION - timescaledb ",
		"4; 0 0 COMMENT - EXTENSION plpgsql ",
		"215; 1259 16386 TABLE public items avnadmin",
	}
	for _, tc := range []struct {
		entries []string
		name    string
		want    bool
	}{
		{toc, "timescaledb", true},
		{toc, "plpgsql", false}, // only a comment on it
		{toc, "items", false},
		{[]string{"5; 0 0 COMMENT - EXTENSION timescaledb", "6; 1259 1 TABLE public timescaledb me"}, "timescaledb", false},
		{nil, "timescaledb", false},
	} {
		if got := hasExtension(tc.entries, tc.name); got != tc.want {
			t.Errorf("hasExtension(%q, %s) = %v, want %v", tc.entries, tc.name, got, tc.want)
		}
	}
}

func TestEscapes(t *testing.T) {
	if got, want := connQuote(`a b'c\d`), `'a b\'c\\d'`; got != want {
		t.Errorf("connQuote = %s, want %s", got, want)
	}
	if got, want := passEscape(`p:w\d`), `p\:w\\d`; got != want {
		t.Errorf("passEscape = %s, want %s", got, want)
	}
	if got := toolEnv([]string{"PATH=/bin", "PGSSLMODE=disable", "PGPASSWORD=x", "HOME=/h"}); !reflect.DeepEqual(got, []string{"PATH=/bin", "HOME=/h"}) {
		t.Errorf("toolEnv kept %v", got)
	}
}

func TestTargetCheck(t *testing.T) {
	good := Target{Host: "h", Port: 5432, User: "u", Password: "p", CACert: "pem", Database: "d"}
	if err := good.check(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func(*Target)
		want string
	}{
		{"no host", func(tg *Target) { tg.Host = "" }, "no host"},
		{"bad port", func(tg *Target) { tg.Port = 0 }, "port 0"},
		{"no user", func(tg *Target) { tg.User = "" }, "no user"},
		{"no database", func(tg *Target) { tg.Database = "" }, "no database"},
		{"no CA", func(tg *Target) { tg.CACert = " " }, "no CA certificate"},
		{"newline in password", func(tg *Target) { tg.Password = "se\ncret" }, "line break"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := good
			tc.edit(&tg)
			err := tg.check()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "cret") {
				t.Fatalf("the error shows the password: %v", err)
			}
		})
	}
}

// TestDumpKeepsThePasswordPrivate runs Dump with a fake pg_dump (fault
// injection) that reports what it was given: the password is in none of its
// arguments or environment, only in a passfile of mode 0600 in a directory
// of mode 0700, both removed afterwards.
func TestDumpKeepsThePasswordPrivate(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	t.Setenv("PGPASSWORD", "from-the-environment")
	tools := t.TempDir()
	report := filepath.Join(t.TempDir(), "report")
	fakeTool(t, tools, "pg_dump", `
for a in "$@"; do
	case "$a" in
	--dbname=*) pf=$(echo "$a" | sed -n "s/.*passfile='\([^']*\)'.*/\1/p") ;;
	--file=*) out=${a#--file=} ;;
	esac
done
{
	echo "args: $*"
	env | sed 's/^/env: /'
	echo "passfile: $(stat -c %a "$pf") $(stat -c %a "$(dirname "$pf")")"
	echo "content: $(cat "$pf")"
} >`+report+`
echo dump >"$out"
`)
	tg := Target{Host: "db.example", Port: 5432, User: "avnadmin", Password: "s3:cret", CACert: "-----BEGIN CERTIFICATE-----\n", Database: "shop"}
	out := filepath.Join(t.TempDir(), "shop.dump")
	if err := Dump(context.Background(), Tools{PgDump: filepath.Join(tools, "pg_dump"), Version: "17.12"}, tg, out); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var content string
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "content: "):
			content = line
		case strings.Contains(line, "cret"):
			t.Errorf("the password is visible: %s", line)
		case strings.HasPrefix(line, "env: PG"):
			t.Errorf("a PG variable reached pg_dump: %s", line)
		case strings.HasPrefix(line, "passfile: ") && line != "passfile: 600 700":
			t.Errorf("modes: %s, want 600 700", line)
		}
	}
	if content != `content: *:*:*:avnadmin:s3\:cret` {
		t.Errorf("passfile %q", content)
	}
	for _, w := range []string{"sslmode='verify-full'", "host='db.example'", "port='5432'", "--format=custom", "--no-password"} {
		if !strings.Contains(string(b), w) {
			t.Errorf("pg_dump was not given %s: %s", w, b)
		}
	}
	left, _ := os.ReadDir(tmp)
	if len(left) != 0 {
		t.Errorf("left in the temporary directory: %v", left)
	}
}

// TestDumpFailureRemovesOutput: a failing pg_dump (fault injection) leaves
// no partial file and its message is in the error.
func TestDumpFailureRemovesOutput(t *testing.T) {
	tools := t.TempDir()
	fakeTool(t, tools, "pg_dump", `for a in "$@"; do case "$a" in --file=*) echo partial >"${a#--file=}" ;; esac; done
echo 'pg_dump: error: connection to server failed: SSL error: certificate verify failed' >&2
exit 1
`)
	tg := Target{Host: "h", Port: 5432, User: "u", Password: "pw", CACert: "x", Database: "d"}
	out := filepath.Join(t.TempDir(), "d.dump")
	err := Dump(context.Background(), Tools{PgDump: filepath.Join(tools, "pg_dump")}, tg, out)
	if err == nil || !strings.Contains(err.Error(), "certificate verify failed") || !strings.Contains(err.Error(), "check the CA") {
		t.Fatalf("got %v; want pg_dump's message and a hint", err)
	}
	if _, serr := os.Stat(out); !os.IsNotExist(serr) {
		t.Fatalf("%s is left behind (%v)", out, serr)
	}
}

func TestSplitSchemas(t *testing.T) {
	in := []string{
		"5; 2615 16390 SCHEMA - app avnadmin",
		"6; 2615 16391 SCHEMA - my schema avnadmin",
		"218; 1259 16393 TABLE public items reader",
		"3283; 0 0 ACL - SCHEMA app avnadmin",
		"3285; 0 0 ACL - SCHEMA public pg_database_owner",
		"3286; 0 0 ACL public TABLE items reader",
		"3287; 0 0 COMMENT - SCHEMA app avnadmin",
	}
	schemas, rest := splitSchemas(in)
	wantSchemas := []string{in[0], in[1], in[3], in[4]}
	wantRest := []string{in[2], in[5], in[6]}
	if !reflect.DeepEqual(schemas, wantSchemas) || !reflect.DeepEqual(rest, wantRest) {
		t.Fatalf("got\n%q\n%q\nwant\n%q\n%q", schemas, rest, wantSchemas, wantRest)
	}
	noGrants := []string{in[0], in[2], in[5]}
	if schemas, rest := splitSchemas(noGrants); schemas != nil || !reflect.DeepEqual(rest, noGrants) {
		t.Fatalf("without grants on schemas: %q, %q", schemas, rest)
	}
}

// TestDumpStopsWithContext: a pg_dump that hangs (fault injection) ends
// with the context, and Dump says so.
func TestDumpStopsWithContext(t *testing.T) {
	tools := t.TempDir()
	started := filepath.Join(tools, "started")
	if err := syscall.Mkfifo(started, 0o600); err != nil {
		t.Fatal(err)
	}
	fakeTool(t, tools, "pg_dump", "echo started >"+started+"\nexec sleep 600\n")
	tg := Target{Host: "h", Port: 5432, User: "u", Password: "pw", CACert: "x", Database: "d",
		Dial: func(context.Context, string, string) (net.Conn, error) { return nil, errors.New("unused") }}
	ctx, cancel := context.WithCancelCause(context.Background())
	errStop := errors.New("stopped by the test")
	go func() {
		// Once pg_dump runs (the FIFO opens when it writes), stop it.
		b, _ := os.ReadFile(started)
		cancel(fmt.Errorf("%w after pg_dump said %q", errStop, strings.TrimSpace(string(b))))
	}()
	err := Dump(ctx, Tools{PgDump: filepath.Join(tools, "pg_dump")}, tg, filepath.Join(t.TempDir(), "d.dump"))
	if !errors.Is(err, errStop) {
		t.Fatalf("got %v; want the context's cause", err)
	}
}
