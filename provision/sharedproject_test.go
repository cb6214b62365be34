package provision_test

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/accoreboot/acco/internal/localcloud"
	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/provision"
	"github.com/accoreboot/acco/provision/internal/lctest"
	"github.com/accoreboot/acco/state"
)

// sibling returns a harness for another environment, named name, in the
// same project, cloud and state bucket as h: the test environment's YAML
// under another name (so its resources are acco-<name>-deploy, -app, -main).
func (h *harness) sibling(t *testing.T, name string) *harness {
	t.Helper()
	env, err := spec.Load(lctest.Environments(t), lctest.Env, h.lc.Lookup)
	if err != nil {
		t.Fatal(err)
	}
	env.Name = name
	return &harness{t: t, lc: h.lc, env: env, cl: h.cl, store: h.store, sealer: h.sealer}
}

// Two environments in one project, one named like the other followed by a
// dash (test and test-eu): acco-test-eu-main is test-eu's database main,
// not test's eu-main. Destroying test leaves every resource of test-eu
// alone, even a security group whose tagging was interrupted (no acco tags,
// so only its name says whose it is).
func TestDestroyLeavesAnotherEnvironmentOfTheProject(t *testing.T) {
	h := newHarness(t, localcloud.Options{})
	eu := h.sibling(t, "test-eu")
	eu.apply(eu.plan(provision.PlanOptions{}))
	h.apply(h.plan(provision.PlanOptions{}))

	euState := eu.state()
	sg, _ := euState.Resource("security_group.app")
	if err := h.cl.Network.SetSecurityGroupTags(t.Context(), sg.ID, []string{}); err != nil {
		t.Fatal(err)
	}
	euIDs := map[string]string{}
	for _, r := range euState.Resources {
		euIDs[r.ID] = r.Address
	}

	// Neither a plan nor a destroy plan of test names test-eu's resources.
	for _, opts := range []provision.PlanOptions{{}, {Destroy: true}} {
		p := h.plan(opts)
		for _, c := range p.Changes {
			if addr, ok := euIDs[c.ID]; ok || strings.HasPrefix(strings.TrimPrefix(c.Address, c.Kind+"."), "eu-") {
				t.Errorf("plan of test (destroy %v): %s %s [id=%s], which is test-eu's %s", opts.Destroy, c.Action, c.Address, c.ID, addr)
			}
		}
	}

	h.apply(h.plan(provision.PlanOptions{Destroy: true}))
	if st := h.state(); len(st.Resources) != 0 {
		t.Errorf("state of test after destroy holds %d resources", len(st.Resources))
	}
	obs, err := provision.Observe(t.Context(), h.cl, "test-eu")
	if err != nil {
		t.Fatal(err)
	}
	live := map[string]bool{}
	for _, k := range obs.Keypairs {
		live["keypair "+k.Name] = true
	}
	for _, g := range obs.SecurityGroups {
		live["security group "+g.Name] = true
	}
	for _, s := range obs.Servers {
		live["instance "+s.Name] = true
	}
	for _, c := range obs.Clusters {
		live["database "+c.Description] = true
	}
	for _, want := range []string{"keypair acco-test-eu-deploy", "security group acco-test-eu-app", "instance acco-test-eu-app", "database acco-test-eu-main"} {
		if !live[want] {
			t.Errorf("destroy of test deleted test-eu's %s", want)
		}
	}
	for what := range live {
		if strings.Contains(what, " acco-test-") && !strings.Contains(what, " acco-test-eu-") {
			t.Errorf("destroy of test left its %s", what)
		}
	}
	if p := eu.plan(provision.PlanOptions{}); p.HasChanges() {
		t.Errorf("plan of test-eu after test's destroy: %v, drift %v", actions(p), p.Drift)
	}
	t.Logf("left in the project: %s", strings.Join(slices.Sorted(maps.Keys(live)), ", "))
}

// A cluster found by its whole name that neither the YAML nor state holds
// (an interrupted apply created it, then the YAML dropped it) is not swept
// while OVH's deletion protection is on: nothing else says it may go.
func TestSweepKeepsAProtectedCluster(t *testing.T) {
	h := newHarness(t, localcloud.Options{})
	old := *h.env.Databases["main"]
	old.Protect, old.Users, old.LogicalDatabases = true, nil, nil
	h.env.Databases["old"] = &old
	h.apply(h.plan(provision.PlanOptions{}))

	ctx := t.Context()
	st, etag, err := h.store.Read(ctx, lctest.Env)
	if err != nil {
		t.Fatal(err)
	}
	st.RemoveResource("database.old")
	st.Pending = append(st.Pending, state.Pending{Address: "database.old", Action: "create", Started: time.Now()})
	if _, err := h.store.Write(ctx, lctest.Env, st, etag); err != nil {
		t.Fatal(err)
	}
	delete(h.env.Databases, "old")
	for _, opts := range []provision.PlanOptions{{}, {Destroy: true}} {
		if err := planErr(t, h, opts); err == nil || !strings.Contains(err.Error(), "database.old is protected") {
			t.Errorf("plan (destroy %v) of a protected cluster left by an interrupted apply: %v", opts.Destroy, err)
		}
	}
}
