package main

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/accoreboot/acco/internal/localcloud"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"acco": func() {
			os.Exit(run(context.Background(), os.Args[1:], streams{in: os.Stdin, out: os.Stdout, err: os.Stderr}, os.LookupEnv))
		},
		"s3put": func() { os.Exit(s3put()) },
	})
}

// TestScripts runs the end-to-end CLI scripts in testdata/script. Each script
// starts in a directory holding a copy of the shipped environments, and has
// an S3 server of its own (gofakes3 over HTTP on loopback) in $S3_ENDPOINT.
func TestScripts(t *testing.T) {
	envDir, err := filepath.Abs("../../environments")
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(e *testscript.Env) error {
			if err := os.CopyFS(filepath.Join(e.WorkDir, "environments"), os.DirFS(envDir)); err != nil {
				return err
			}
			srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
			e.Defer(srv.Close)
			e.Setenv("S3_ENDPOINT", srv.URL)
			e.Setenv("AWS_ACCESS_KEY_ID", "acco-test")
			e.Setenv("AWS_SECRET_ACCESS_KEY", "acco-test-secret")
			e.Setenv("AWS_REGION", "gra")
			e.Setenv("HOME", e.WorkDir)
			// Scripts that start a local cloud in $WORK/cloud leave none behind.
			e.Defer(func() { _, _ = localcloud.Down(context.Background(), filepath.Join(e.WorkDir, "cloud")) })
			return nil
		},
	})
}
