// Package lctest runs acco's local cloud in-process for the tests of the
// provision packages and hands out what clients need to reach it.
package lctest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/accoreboot/acco/internal/localcloud"
)

// Env is the test environment's project: the one of environments/test.yaml.
const (
	Env     = "test"
	Project = "00000000000000000000000000000001"
	Region  = "GRA11"
)

// Cloud is a local cloud served for one test.
type Cloud struct {
	Cloud *localcloud.Cloud
	Info  localcloud.Info
	Creds *localcloud.Credentials
	Dir   string
	// Vars are the variables `acco local env test` exports (OS_*, OVH_*,
	// AWS_*, ACCO_STATE, ACCO_STATE_KEY).
	Vars map[string]string
}

// Lookup reads Vars, as os.LookupEnv would after eval "$(acco local env)".
func (c *Cloud) Lookup(name string) (string, bool) {
	v, ok := c.Vars[name]
	return v, ok
}

// Start serves a local cloud with fast transitions (overridable in opts)
// until the test ends.
func Start(t testing.TB, opts localcloud.Options) *Cloud {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.Projects == nil {
		opts.Projects = []localcloud.Project{{Env: Env, ID: Project}}
	}
	if opts.Postgres == "" {
		opts.Postgres = localcloud.PostgresOff
	}
	if opts.BuildDelay == 0 {
		opts.BuildDelay = 50 * time.Millisecond
	}
	if opts.AddressDelay == 0 {
		opts.AddressDelay = 50 * time.Millisecond
	}
	if opts.DBCreateDelay == 0 {
		opts.DBCreateDelay = 100 * time.Millisecond
	}
	if opts.DBDeleteDelay == 0 {
		opts.DBDeleteDelay = 50 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	c, err := localcloud.Start(ctx, opts)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve local cloud: %v", err)
		}
		if err := c.Close(context.Background()); err != nil {
			t.Errorf("close local cloud: %v", err)
		}
	})
	info := c.Info()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := Counts(ctx, info.APIURL); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("local cloud does not answer")
		}
		time.Sleep(20 * time.Millisecond)
	}
	creds, err := localcloud.LoadCredentials(opts.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := localcloud.WriteCloudsYAML(&info, creds); err != nil {
		t.Fatal(err)
	}
	exports, err := localcloud.Exports(&info, creds, Env)
	if err != nil {
		t.Fatal(err)
	}
	return &Cloud{Cloud: c, Info: info, Creds: creds, Dir: opts.Dir, Vars: localcloud.ParseExports(exports)}
}

// Counts returns the local cloud's resource counts, by kind
// (openstack.servers, ovh.clusters, ...).
func Counts(ctx context.Context, apiURL string) (map[string]int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, apiURL+"/localcloud/status", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status endpoint answered %s", resp.Status)
	}
	var st struct {
		Counts map[string]int `json:"counts"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, err
	}
	return st.Counts, nil
}

// RequestLog returns the path of the local cloud's request log.
func (c *Cloud) RequestLog() string { return filepath.Join(c.Dir, "requests.jsonl") }

// Environments returns the repository's environments directory.
func Environments(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs("../environments")
	if err != nil {
		t.Fatal(err)
	}
	for d := dir; ; {
		if _, err := os.Stat(filepath.Join(d, "defaults.yaml")); err == nil {
			return d
		}
		parent := filepath.Dir(filepath.Dir(d))
		if parent == filepath.Dir(d) {
			t.Fatal("environments directory not found")
		}
		d = filepath.Join(parent, "environments")
	}
}
