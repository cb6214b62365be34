package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/accoreboot/acco/internal/localcloud"
	"github.com/accoreboot/acco/internal/localcloud/vm"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"acco": func() {
			os.Exit(run(context.Background(), os.Args[1:], streams{in: os.Stdin, out: os.Stdout, err: os.Stderr}, os.LookupEnv))
		},
		"s3put":     func() { os.Exit(s3put()) },
		"nosecrets": func() { os.Exit(nosecrets()) },
		"pgsql":     func() { os.Exit(pgsql()) },
		"hostrun":   func() { os.Exit(hostrun()) },
	})
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
			e.Setenv("ESC", "\x1b")
			e.Setenv("NL", "two\nlines")
			// Scripts that start a local cloud in $WORK/cloud leave none behind.
			e.Defer(func() { _, _ = localcloud.Down(context.Background(), filepath.Join(e.WorkDir, "cloud")) })
			return nil
		},
	})
}
