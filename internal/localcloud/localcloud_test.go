package localcloud

import (
	"context"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	gos "github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/keypairs"
	"github.com/ovh/go-ovh/ovh"

	"github.com/accoreboot/acco/internal/localcloud/knobs"
	"github.com/accoreboot/acco/internal/localcloud/pgserver"
	"github.com/accoreboot/acco/state"
)

// startCloud serves a local cloud from dir until stop is called or the test
// ends.
func startCloud(t *testing.T, dir string, opts Options) (c *Cloud, stop func()) {
	t.Helper()
	opts.Dir = dir
	if opts.Postgres == "" {
		opts.Postgres = PostgresOff
	}
	ctx, cancel := context.WithCancel(context.Background())
	c, err := Start(ctx, opts)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Serve(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		if err := c.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
	}
	t.Cleanup(stop)
	// Wait until it answers.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := fetchStatus(ctx, c.Info().APIURL); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("local cloud does not answer")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return c, stop
}

// TestLocalCloudClients drives every API of one local cloud with the real
// clients acco uses, then restarts it and finds everything again.
func TestLocalCloudClients(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	projects := []Project{{Env: "test", ID: "00000000000000000000000000000001"}, {Env: "prod", ID: "00000000000000000000000000000003"}}
	c, stop := startCloud(t, dir, Options{Projects: projects, BuildDelay: time.Millisecond, AddressDelay: time.Millisecond, DBCreateDelay: time.Millisecond})
	info := c.Info()
	creds, err := LoadCredentials(dir)
	if err != nil {
		t.Fatal(err)
	}
	test := creds.project("test")
	if test == nil || test.ID != projects[0].ID {
		t.Fatalf("project of test = %+v", test)
	}

	// OpenStack through gophercloud, with the environment's project.
	pc, err := gos.AuthenticatedClient(ctx, gophercloud.AuthOptions{
		IdentityEndpoint: info.Endpoints.Identity, Username: test.User, Password: test.Password,
		DomainName: "Default", TenantID: test.ID,
	})
	if err != nil {
		t.Fatalf("keystone: %v", err)
	}
	compute, err := gos.NewComputeV2(pc, gophercloud.EndpointOpts{Region: "GRA11"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keypairs.Create(ctx, compute, keypairs.CreateOpts{Name: "acco-test-deploy", PublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBn2Mg6/8LZm6XxJ3yYzyD1vE5qH/9bQkxW6mDaxwCCg deploy"}).Extract(); err != nil {
		t.Fatalf("create keypair: %v", err)
	}

	// The OVH API through go-ovh, with the account's keys.
	client, err := ovh.NewClient(info.Endpoints.OVH, creds.OVHApplicationKey, creds.OVHAppSecret, creds.OVHConsumerKey)
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		ID string `json:"id"`
	}
	body := map[string]any{"description": "acco-test-main", "plan": "essential", "version": "17",
		"nodesPattern": map[string]any{"flavor": "db1-4", "number": 1, "region": "GRA"}}
	if err := client.PostWithContext(ctx, "/cloud/project/"+test.ID+"/database/postgresql", body, &created); err != nil {
		t.Fatalf("create database: %v", err)
	}

	// S3 through the state package (the real AWS SDK).
	t.Setenv("AWS_ACCESS_KEY_ID", creds.S3AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", creds.S3SecretKey)
	blob, err := state.OpenBlob(ctx, "s3://"+StateBucket+"?endpoint="+info.Endpoints.S3+"&region=gra&path_style=true")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := blob.(state.Bootstrapper).EnsureBucket(ctx); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	if _, err := state.NewLocker(blob).Lock(ctx, "test", state.LockInfo{Operation: "hold", Reason: "restart test"}, 0); err != nil {
		t.Fatalf("lock: %v", err)
	}

	// The request log names every call.
	logData, err := os.ReadFile(filepath.Join(dir, requestLogFile))
	if err != nil {
		t.Fatal(err)
	}
	entries, err := knobs.ReadLog(strings.NewReader(string(logData)))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range entries {
		seen[e.Service] = true
	}
	for _, svc := range []string{"identity", "compute", "ovh", "s3"} {
		if !seen[svc] {
			t.Errorf("request log has no %s call: %v", svc, seen)
		}
	}

	// Restart: everything is still there, at the same endpoints.
	t.Run("restart", func(t *testing.T) {
		old := c.Info()
		stop()
		c2, _ := startCloud(t, dir, Options{Projects: projects})
		if c2.Info().APIURL != old.APIURL || c2.Info().S3URL != old.S3URL {
			t.Errorf("endpoints moved: %s %s -> %s %s", old.APIURL, old.S3URL, c2.Info().APIURL, c2.Info().S3URL)
		}
		counts := c2.status().Counts
		if counts["openstack.keypairs"] != 1 {
			t.Errorf("keypairs after restart: %v", counts)
		}
		var ids []string
		client, _ := ovh.NewClient(c2.Info().Endpoints.OVH, creds.OVHApplicationKey, creds.OVHAppSecret, creds.OVHConsumerKey)
		if err := client.GetWithContext(ctx, "/cloud/project/"+test.ID+"/database/postgresql", &ids); err != nil || len(ids) != 1 || ids[0] != created.ID {
			t.Errorf("databases after restart: %v %v, want [%s]", ids, err, created.ID)
		}
		blob, _ := state.OpenBlob(ctx, "s3://"+StateBucket+"?endpoint="+c2.Info().Endpoints.S3+"&region=gra&path_style=true")
		_, err := state.NewLocker(blob).Lock(ctx, "test", state.LockInfo{Operation: "apply"}, time.Minute)
		var held *state.LockError
		if !errors.As(err, &held) || held.Holder.Reason != "restart test" {
			t.Errorf("lock after restart: %v, want held for %q", err, "restart test")
		}
	})
}

func TestOptionsAreChecked(t *testing.T) {
	for _, o := range []Options{
		{},
		{Dir: t.TempDir(), Listen: "0.0.0.0"},
		{Dir: t.TempDir(), Postgres: "sometimes"},
	} {
		if _, err := o.withDefaults(); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
}

func TestSecondServerOnTheSameDirectoryIsRefused(t *testing.T) {
	dir := t.TempDir()
	startCloud(t, dir, Options{})
	_, err := Start(context.Background(), Options{Dir: dir, Postgres: PostgresOff})
	if err == nil || !strings.Contains(err.Error(), "another local cloud") {
		t.Fatalf("second Start: %v", err)
	}
}

func TestRedactDSN(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://acco:s3cret@db:5432/acco": "postgres://acco:xxxxx@db:5432/acco",
		"postgres://acco@db/acco":             "postgres://acco@db/acco",
		"host=db user=acco password=s3cret":   "host=db user=acco password=xxxxx",
		"auto":                                "auto",
	} {
		if got := redactDSN(in); got != want {
			t.Errorf("redactDSN(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestStatusNamesThePostgreSQL checks that a local cloud whose clusters run
// on real servers says which PostgreSQL runs them and from where (what
// `acco local status` shows): the pinned 17 when installed; and which
// clusters it could not start again, and why.
func TestStatusNamesThePostgreSQL(t *testing.T) {
	bin, err := pgserver.FindBinDir()
	if err != nil {
		t.Skipf("skipping: %v", err)
	}
	// Under root the servers run as postgres, which cannot enter
	// t.TempDir's parent.
	dir, err := os.MkdirTemp("", "localcloud-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	// A cluster left by PostgreSQL 9.6 in the directory the cloud reuses.
	old := filepath.Join(dir, pgDir, "pg", "old-cluster")
	if err := os.MkdirAll(old, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"PG_VERSION": "9.6\n", "acco-cluster.json": `{"id":"old-cluster","port":1}`} {
		if err := os.WriteFile(filepath.Join(old, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if os.Geteuid() == 0 { // as initdb would have left it: the postgres user's
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skipf("skipping: running as root without a postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, p := range []string{old, filepath.Join(old, "PG_VERSION"), filepath.Join(old, "acco-cluster.json")} {
			if err := os.Chown(p, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	startCloud(t, dir, Options{Postgres: PostgresOn})
	st, err := GetStatus(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Postgres || st.PostgresVersion == "" || st.PostgresSource == "" || st.PostgresBinDir == "" {
		t.Fatalf("status: postgres %v, version %q, source %q, bin %q", st.Postgres, st.PostgresVersion, st.PostgresSource, st.PostgresBinDir)
	}
	if len(st.PostgresProblems) != 1 || !strings.Contains(st.PostgresProblems[0], "cluster old-cluster: data directory "+old+" was initialised by PostgreSQL 9.6") {
		t.Errorf("status problems %q, want the cluster of PostgreSQL 9.6 named", st.PostgresProblems)
	}
	if pinned := pgserver.PinnedBinDirs()[0]; bin == pinned {
		want := "npm " + pgserver.PinnedPackage + "@" + pgserver.PinnedPackageVersion
		if !strings.HasPrefix(st.PostgresVersion, "17.") || st.PostgresSource != want || st.PostgresBinDir != pinned {
			t.Fatalf("status: PostgreSQL %s from %s (%s); want 17.x from %s (%s)", st.PostgresVersion, st.PostgresSource, st.PostgresBinDir, want, pinned)
		}
	}
}
