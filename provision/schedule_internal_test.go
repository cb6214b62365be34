package provision

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accoreboot/acco/provision/openstack"
	"github.com/accoreboot/acco/state"
)

// TestStepsWaitForTheirDependencies checks the dependency graph of an
// apply: what runs at once and what waits.
func TestStepsWaitForTheirDependencies(t *testing.T) {
	changes := []Change{
		{Address: "keypair.deploy", Kind: "keypair", Action: Create},
		{Address: "security_group.app", Kind: "security_group", Action: Create},
		{Address: "instance.app", Kind: "instance", Action: Create, DependsOn: []string{"keypair.deploy", "security_group.app"}},
		{Address: "instance.app2", Kind: "instance", Action: Create, DependsOn: []string{"keypair.deploy", "security_group.app"}},
		{Address: "instance.old", Kind: "instance", Action: Replace, ID: "s-old", DependsOn: []string{"keypair.deploy"}},
		{Address: "database.main", Kind: "database", Action: Create, DependsOn: []string{"instance.app"}},
		{Address: "database_db.main.app", Kind: "database_db", Action: Create, After: map[string]any{"cluster": "main"}, DependsOn: []string{"database.main"}},
		{Address: "database_user.main.api", Kind: "database_user", Action: Create, After: map[string]any{"cluster": "main"}, DependsOn: []string{"database.main"}},
		{Address: "database_user.main.emqx", Kind: "database_user", Action: Create, After: map[string]any{"cluster": "main"}, DependsOn: []string{"database.main"}},
		{Address: "database.gone", Kind: "database", Action: Delete, ID: "c1"},
		{Address: "instance.gone", Kind: "instance", Action: Delete, ID: "s1"},
		{Address: "security_group.gone", Kind: "security_group", Action: Delete, ID: "g1"},
	}
	st := state.New("test", "dev")
	st.SetResource(state.Resource{Address: "database.gone", Kind: "database", ID: "c1", DependsOn: []string{"instance.gone"}})
	st.SetResource(state.Resource{Address: "instance.gone", Kind: "instance", ID: "s1", DependsOn: []string{"security_group.gone"}})
	a := &applier{plan: &Plan{Changes: changes}, rec: &recorder{st: st, status: map[string]string{}}}
	steps := a.steps()
	name := func(s step) string { return fmt.Sprintf("%s/%d", s.change.Address, s.phase) }
	index := map[string]int{}
	for i, s := range steps {
		index[name(s)] = i
	}
	waits := func(s string) []string {
		var out []string
		for _, j := range steps[index[s]].after {
			out = append(out, name(steps[j]))
		}
		slices.Sort(out)
		return out
	}
	for _, tc := range []struct {
		step string
		want []string
	}{
		// a creation waits for the deletion of what depends on it
		{"keypair.deploy/1", []string{"instance.old/0"}},
		{"security_group.app/1", nil},
		{"instance.app/1", []string{"keypair.deploy/1", "security_group.app/1"}},
		{"instance.app2/1", []string{"keypair.deploy/1", "security_group.app/1"}},
		{"instance.old/0", nil},
		{"instance.old/1", []string{"instance.old/0", "keypair.deploy/1"}},
		// a new cluster is ordered at once; it waits for its instances itself
		{"database.main/1", nil},
		{"database_db.main.app/1", []string{"database.main/1"}},
		// one cluster's children one after the other, databases first
		{"database_user.main.api/1", []string{"database.main/1", "database_db.main.app/1"}},
		{"database_user.main.emqx/1", []string{"database.main/1", "database_user.main.api/1"}},
		// deletions: what depends on a resource goes first
		{"database.gone/0", nil},
		{"instance.gone/0", []string{"database.gone/0"}},
		// security groups and keypairs dropped go last
		{"security_group.gone/2", []string{
			"database.gone/0", "database.main/1", "database_db.main.app/1", "database_user.main.api/1", "database_user.main.emqx/1",
			"instance.app/1", "instance.app2/1", "instance.gone/0", "instance.old/0", "instance.old/1", "keypair.deploy/1", "security_group.app/1"}},
	} {
		if _, ok := index[tc.step]; !ok {
			t.Errorf("no step %s in %v", tc.step, index)
			continue
		}
		if got := waits(tc.step); !slices.Equal(got, tc.want) {
			t.Errorf("%s waits for %v; want %v", tc.step, got, tc.want)
		}
	}
}

// TestRunGraphSkipsAfterAFailure checks that a failed step's dependents
// are skipped, and an independent step that was running finishes.
func TestRunGraphSkipsAfterAFailure(t *testing.T) {
	changes := []Change{{Address: "a", Action: Create}, {Address: "b", Action: Create}, {Address: "c", Action: Create}}
	a := &applier{plan: &Plan{Changes: changes}, results: map[string]*Result{}, opts: ApplyOptions{Stop: make(chan struct{})},
		rec: &recorder{st: state.New("test", "dev"), status: map[string]string{}}}
	release := make(chan struct{})
	steps := []step{
		{change: &changes[0], label: Read, run: func(context.Context, *Change) error { <-release; return nil }},
		{change: &changes[1], label: Read, run: func(context.Context, *Change) error { defer close(release); return fmt.Errorf("boom") }},
		{change: &changes[2], label: Read, run: func(context.Context, *Change) error { return nil }, after: []int{0, 1}},
	}
	if !a.runGraph(t.Context(), steps) {
		t.Fatal("runGraph did not report the failure")
	}
	for addr, want := range map[string]string{"a": ResultDone, "b": ResultFailed, "c": ResultSkipped} {
		if got := a.results[addr+"#create"].Status; got != want {
			t.Errorf("%s: %s, want %s", addr, got, want)
		}
	}
}

// countingCompute counts ListServers calls and the calls in flight.
type countingCompute struct {
	openstack.Compute
	lists, inFlight, maxInFlight atomic.Int32
	servers                      []openstack.Server
}

func (c *countingCompute) ListServers(ctx context.Context) ([]openstack.Server, error) {
	c.lists.Add(1)
	n := c.inFlight.Add(1)
	defer c.inFlight.Add(-1)
	for {
		m := c.maxInFlight.Load()
		if n <= m || c.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(20 * time.Millisecond)
	return c.servers, nil
}

// TestServerWatchShares checks that 50 waits share listings: far fewer
// list calls than waits, never two at once, each answer made after it was
// asked for.
func TestServerWatchShares(t *testing.T) {
	c := &countingCompute{}
	for i := range 50 {
		c.servers = append(c.servers, openstack.Server{ID: fmt.Sprint(i), Status: "ACTIVE"})
	}
	w := newServerWatch(c)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			for range 3 {
				s, found, err := w.get(t.Context(), fmt.Sprint(i), time.Now())
				if err != nil || !found || s.ID != fmt.Sprint(i) {
					t.Errorf("get %d = %+v, %v, %v", i, s, found, err)
				}
			}
		})
	}
	wg.Wait()
	if n := c.lists.Load(); n > 10 {
		t.Errorf("%d list calls for 150 gets; want them shared", n)
	}
	if m := c.maxInFlight.Load(); m != 1 {
		t.Errorf("%d listings at once; want 1", m)
	}
	if _, found, err := w.get(t.Context(), "nope", time.Now()); err != nil || found {
		t.Errorf("a server not listed: found %v, %v", found, err)
	}
}

// TestLimitClients checks that the requests in flight never exceed the
// limit.
func TestLimitClients(t *testing.T) {
	c := &countingCompute{}
	cl := limitClients(Clients{Compute: c}, 3)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := cl.Compute.ListServers(t.Context()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if m := c.maxInFlight.Load(); m > 3 || m < 2 {
		t.Errorf("%d requests at once; want at most 3 (and more than 1)", m)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	full := limitClients(Clients{Compute: c}, 1).Compute.(limitedCompute)
	full.l <- struct{}{}
	if _, err := full.ListServers(ctx); err == nil {
		t.Error("a call waiting for a slot ignored its cancelled context")
	}
}
