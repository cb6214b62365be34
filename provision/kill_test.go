package provision_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/accoreboot/acco/internal/localcloud"
	"github.com/accoreboot/acco/provision"
	"github.com/accoreboot/acco/provision/internal/lctest"
	"github.com/accoreboot/acco/provision/ovhdb"
)

// Variables that make the test binary an apply of the test environment (the
// child of TestKillAtEveryStep).
const (
	childVar    = "ACCO_KILLTEST_CHILD"
	childEnvDir = "ACCO_KILLTEST_ENVDIR"
	childState  = "ACCO_KILLTEST_STATE"
)

func TestMain(m *testing.M) {
	if os.Getenv(childVar) == "1" {
		os.Exit(childApply())
	}
	os.Exit(m.Run())
}

// childApply plans and applies the test environment, as acco apply does.
func childApply() int {
	h, err := connectHarness(os.LookupEnv, os.Getenv(childEnvDir), os.Getenv(childState))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx := context.Background()
	obs, err := provision.Observe(ctx, h.cl, lctest.Env)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	keys, err := provision.PublicKeys(h.env)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	st, _, _ := h.store.Read(ctx, lctest.Env)
	p, err := provision.PlanChanges(provision.Inputs{Env: h.env, PublicKeys: keys, State: st, Observed: obs}, provision.PlanOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := provision.Apply(ctx, h.cl, h.store, p, provision.ApplyOptions{Sealer: h.sealer, PollServer: 10 * time.Millisecond, PollDatabase: 10 * time.Millisecond, RetryDelay: 10 * time.Millisecond}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// requests counts the lines of the local cloud's request log.
func requests(t *testing.T, lc *lctest.Cloud) int {
	t.Helper()
	data, err := os.ReadFile(lc.RequestLog())
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(data, []byte("\n"))
}

// TestKillAtEveryStep runs `apply` from nothing in a child process and
// SIGKILLs it after its Nth API request, for every N; then an apply in this
// process must end with exactly the YAML's resources in the cloud and in
// state, nothing duplicated, and a plan with no changes. Each round is
// destroyed before the next. ACCO_KILLTEST_STRIDE=K tries every Kth step
// (default 1, 4 under the race detector).
func TestKillAtEveryStep(t *testing.T) {
	if testing.Short() {
		t.Skip("starts one process per step")
	}
	h := newHarness(t, localcloud.Options{})
	stateDir := t.TempDir()
	h.store = stateStore(stateDir)
	child := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childVar+"=1", childEnvDir+"="+lctest.Environments(t), childState+"="+stateDir)
		for k, v := range h.lc.Vars {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		return cmd
	}

	// A full run from nothing, to count its requests.
	base := requests(t, h.lc)
	if out, err := child().CombinedOutput(); err != nil {
		t.Fatalf("child apply: %v\n%s", err, out)
	}
	total := requests(t, h.lc) - base
	h.apply(h.plan(provision.PlanOptions{Destroy: true}))
	assertEmpty(t, h)
	stride := 1
	if raceEnabled {
		stride = 4
	}
	if s, err := strconv.Atoi(os.Getenv("ACCO_KILLTEST_STRIDE")); err == nil && s > 0 {
		stride = s
	}
	t.Logf("an apply from nothing makes %d requests; killing after every %d", total, stride)

	for n := 1; n < total; n += stride {
		base := requests(t, h.lc)
		cmd := child()
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		killed := false
	watch:
		for {
			select {
			case <-exited:
				break watch
			default:
			}
			if requests(t, h.lc)-base >= n {
				_ = cmd.Process.Kill()
				<-exited
				killed = true
				break
			}
			time.Sleep(time.Millisecond)
		}
		if !killed {
			t.Logf("step %d: the child finished before it was killed:\n%s", n, out.String())
		}

		// The next apply repairs everything.
		h.apply(h.plan(provision.PlanOptions{}))
		if p := h.plan(provision.PlanOptions{}); p.HasChanges() {
			t.Fatalf("step %d: plan after recovery: %v drift %v", n, actions(p), p.Drift)
		}
		assertExactly(t, h, n)
		h.apply(h.plan(provision.PlanOptions{Destroy: true}))
		assertEmpty(t, h)
	}
}

// assertExactly checks that the cloud holds the YAML's resources once each
// and the state knows every address.
func assertExactly(t *testing.T, h *harness, step int) {
	t.Helper()
	obs, err := provision.Observe(t.Context(), h.cl, lctest.Env)
	if err != nil {
		t.Fatal(err)
	}
	count := func(names []string, want string) int {
		n := 0
		for _, x := range names {
			if x == want {
				n++
			}
		}
		return n
	}
	var servers, keypairs, groups, clusters []string
	for _, s := range obs.Servers {
		servers = append(servers, s.Name)
	}
	for _, k := range obs.Keypairs {
		keypairs = append(keypairs, k.Name)
	}
	for _, g := range obs.SecurityGroups {
		groups = append(groups, g.Name)
	}
	var cluster *ovhdb.Cluster
	for i, c := range obs.Clusters {
		clusters = append(clusters, c.Description)
		cluster = &obs.Clusters[i]
	}
	if len(servers) != 1 || count(servers, "acco-test-app") != 1 || len(keypairs) != 1 || count(groups, "acco-test-app") != 1 || len(clusters) != 1 {
		t.Fatalf("step %d: servers %v keypairs %v groups %v clusters %v", step, servers, keypairs, groups, clusters)
	}
	var users, dbs []string
	for _, u := range obs.Users[cluster.ID] {
		users = append(users, u.Username)
	}
	for _, d := range obs.Databases[cluster.ID] {
		dbs = append(dbs, d.Name)
	}
	for _, u := range []string{"emqx", "powersync", "backend"} {
		if count(users, u) != 1 {
			t.Errorf("step %d: users %v", step, users)
		}
	}
	for _, d := range []string{"acco", "powersync_storage"} {
		if count(dbs, d) != 1 {
			t.Errorf("step %d: databases %v", step, dbs)
		}
	}
	st := h.state()
	for _, a := range h.env.Addresses() {
		if r, ok := st.Resource(a); !ok || r.ID == "" {
			t.Errorf("step %d: state lacks %s", step, a)
		}
	}
	if len(st.Pending) != 0 {
		t.Errorf("step %d: pending intents left: %+v", step, st.Pending)
	}
}
