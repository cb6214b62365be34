package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/accoreboot/acco/internal/localcloud"
	"github.com/accoreboot/acco/internal/localcloud/vm"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"acco":       func() { os.Exit(checkedRun(os.Args[1:])) },
		"s3put":      func() { os.Exit(s3put()) },
		"nosecrets":  func() { os.Exit(nosecrets()) },
		"pgsql":      func() { os.Exit(pgsql()) },
		"hostrun":    func() { os.Exit(hostrun()) },
		"jsonstream": func() { os.Exit(jsonstream()) },
		"stateput":   func() { os.Exit(stateput()) },
		"ondemand":   func() { os.Exit(ondemand()) },
		"dbsql":      func() { os.Exit(dbsql()) },
		"ovhapi":     func() { os.Exit(ovhapi()) },
	})
}

// jsonCheckEnv names the file where acco, run by a script with --json,
// records the documents of its stdout that lack format_version.
const jsonCheckEnv = "ACCO_TEST_JSON_CHECK"

// checkedRun runs acco as a script's command. Under --json, every JSON
// value it prints on stdout must be an object with format_version "1";
// those that are not are recorded in $ACCO_TEST_JSON_CHECK, and the script
// fails at its end (whatever exit code the script expected).
func checkedRun(args []string) int {
	check := os.Getenv(jsonCheckEnv)
	if check == "" || !slices.ContainsFunc(args, func(a string) bool { return a == "--json" || strings.HasPrefix(a, "--json=") }) {
		return runWithSignals(args, streams{in: os.Stdin, out: os.Stdout, err: os.Stderr})
	}
	var out bytes.Buffer
	code := runWithSignals(args, streams{in: os.Stdin, out: io.MultiWriter(os.Stdout, &out), err: os.Stderr})
	if problems := unversionedJSON(out.Bytes()); len(problems) > 0 {
		f, err := os.OpenFile(check, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err == nil {
			for _, p := range problems {
				fmt.Fprintf(f, "acco %s: %s\n", strings.Join(args, " "), p)
			}
			f.Close()
		}
	}
	return code
}

// unversionedJSON lists what is wrong with the JSON values of out: values
// that are not objects, objects without format_version "1", and output
// that is not JSON at all.
func unversionedJSON(out []byte) []string {
	var problems []string
	dec := json.NewDecoder(bytes.NewReader(out))
	for i := 1; ; i++ {
		var v any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return problems
		}
		if err != nil {
			return append(problems, fmt.Sprintf("stdout is not JSON after %d values: %v", i-1, err))
		}
		obj, ok := v.(map[string]any)
		if !ok {
			problems = append(problems, fmt.Sprintf("value %d is not an object", i))
			continue
		}
		if obj["format_version"] != jsonFormatVersion {
			problems = append(problems, fmt.Sprintf("value %d has format_version %v, not %q", i, obj["format_version"], jsonFormatVersion))
		}
	}
}

// ignoreConditions serves h as a server that ignores If-None-Match and
// If-Match: it drops them from every request.
func ignoreConditions(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del("If-None-Match")
		r.Header.Del("If-Match")
		h.ServeHTTP(w, r)
	})
}

// TestScripts runs the end-to-end CLI scripts in testdata/script. Each script
// starts in a directory holding a copy of the shipped environments, and has
// an S3 server of its own (gofakes3 over HTTP on loopback) in $S3_ENDPOINT,
// and one that ignores conditional writes in $S3_NOCOND_ENDPOINT.
// blackHole listens on a loopback port, accepts every connection and never
// answers: the server that hangs a client without deadlines. Closing the
// listener closes the connections it holds.
func blackHole() (net.Listener, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				_ = c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	return l, nil
}

func TestScripts(t *testing.T) {
	envDir, err := filepath.Abs("../../environments")
	if err != nil {
		t.Fatal(err)
	}
	imageDir, err := filepath.Abs(vm.DefaultImageDir())
	if err != nil {
		t.Fatal(err)
	}
	exampleBackend, err := filepath.Abs("../../.acco/example-backend.tar.gz")
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		// [vmimage]: QEMU and the guest image of `make vm-image` are there.
		// [examplebackend]: the example backend of `make example-backend`.
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "vmimage":
				return vm.ImageAvailable(imageDir) == nil, nil
			case "examplebackend":
				_, err := os.Stat(exampleBackend)
				return err == nil, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Setup: func(e *testscript.Env) error {
			// The scripts run outside the module: name the image's place.
			e.Setenv(vm.ImageDirEnv, imageDir)
			e.Setenv("EXAMPLE_BACKEND", exampleBackend)
			// A local cloud in $WORK/cloud runs its PostgreSQL servers as
			// the postgres user, who must be able to enter $WORK.
			for _, d := range []string{filepath.Dir(e.WorkDir), e.WorkDir} {
				if err := os.Chmod(d, 0o711); err != nil {
					return err
				}
			}
			if err := os.CopyFS(filepath.Join(e.WorkDir, "environments"), os.DirFS(envDir)); err != nil {
				return err
			}
			srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
			e.Defer(srv.Close)
			e.Setenv("S3_ENDPOINT", srv.URL)
			// An S3 server that ignores conditional writes, as some
			// S3-compatible services and proxies do.
			nocond := httptest.NewServer(ignoreConditions(gofakes3.New(s3mem.New()).Server()))
			e.Defer(nocond.Close)
			e.Setenv("S3_NOCOND_ENDPOINT", nocond.URL)
			hole, err := blackHole()
			if err != nil {
				return err
			}
			e.Defer(func() { _ = hole.Close() })
			e.Setenv("BLACKHOLE", "http://"+hole.Addr().String())
			e.Setenv("AWS_ACCESS_KEY_ID", "acco-test")
			e.Setenv("AWS_SECRET_ACCESS_KEY", "acco-test-secret")
			e.Setenv("AWS_REGION", "gra")
			e.Setenv("HOME", e.WorkDir)
			// Every --json document of every script carries format_version.
			check := filepath.Join(filepath.Dir(e.WorkDir), filepath.Base(e.WorkDir)+".jsoncheck")
			e.Setenv(jsonCheckEnv, check)
			e.Defer(func() {
				if data, err := os.ReadFile(check); err == nil && len(data) > 0 {
					e.T().Fatal("--json output without format_version:\n" + string(data))
				}
			})
			// Rounds of killapply.txtar (scripts/soak-kill.sh asks for 30).
			rounds := os.Getenv("ACCO_SOAK_ITERATIONS")
			if rounds == "" {
				rounds = "5"
			}
			e.Setenv("ACCO_SOAK_ITERATIONS", rounds)
			// Kill points of db_kill.txtar per command (make soak: 0, every one).
			dbKill := os.Getenv("ACCO_DBKILL_ROUNDS")
			if dbKill == "" {
				dbKill = "2"
			}
			e.Setenv("ACCO_DBKILL_ROUNDS", dbKill)
			e.Setenv("ESC", "\x1b")
			e.Setenv("NL", "two\nlines")
			// Scripts that start a local cloud in $WORK/cloud leave none behind.
			e.Defer(func() { _, _ = localcloud.Down(context.Background(), filepath.Join(e.WorkDir, "cloud")) })
			return nil
		},
	})
}
