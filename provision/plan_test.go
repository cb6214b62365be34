package provision_test

import (
	"strings"
	"testing"
	"time"

	"github.com/accoreboot/acco/internal/localcloud"
	"github.com/accoreboot/acco/provision"
	"github.com/accoreboot/acco/provision/internal/lctest"
	"github.com/accoreboot/acco/provision/openstack"
	"github.com/accoreboot/acco/state"
)

// planErr plans with opts after edit and returns the error.
func planErr(t *testing.T, h *harness, opts provision.PlanOptions) error {
	t.Helper()
	obs, err := provision.Observe(t.Context(), h.cl, lctest.Env)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := provision.PublicKeys(h.env)
	if err != nil {
		t.Fatal(err)
	}
	_, err = provision.PlanChanges(provision.Inputs{Env: h.env, PublicKeys: keys, State: h.state(), Observed: obs}, opts)
	return err
}

func TestPlanRefusesWhatCannotBeDone(t *testing.T) {
	for _, tc := range []struct {
		name    string
		edit    func(h *harness)
		opts    provision.PlanOptions
		applied bool // apply the environment first
		want    string
	}{
		{name: "flavor typo", edit: func(h *harness) { h.env.Instances["app"].Flavor = "d2-44" }, want: `no flavor "d2-44" (did you mean d2-2, d2-4, d2-8?)`},
		{name: "image typo", edit: func(h *harness) { h.env.Instances["app"].Image = "Debian 21" }, want: `no active image "Debian 21"`},
		{name: "network typo", edit: func(h *harness) { h.env.Instances["app"].Network = "Ext-Nte" }, want: `no network "Ext-Nte"`},
		{name: "offer not sold", edit: func(h *harness) { h.env.Databases["main"].Flavor = "b3-8" }, want: "OVH does not offer PostgreSQL 17 on plan essential with flavor b3-8 in GRA"},
		{name: "unknown address", opts: provision.PlanOptions{Targets: []string{"instance.nope"}}, want: "address instance.nope is neither"},
		{name: "protected database destroy", applied: true, edit: func(h *harness) { h.env.Databases["main"].Protect = true }, opts: provision.PlanOptions{Destroy: true}, want: "database.main is protected"},
		{name: "protected database replace", applied: true, edit: func(h *harness) {
			h.env.Databases["main"].Protect = true
			h.env.Databases["main"].Region = "SBG"
		}, want: "replaces (deletes) the protected cluster"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, localcloud.Options{})
			if tc.applied {
				h.apply(h.plan(provision.PlanOptions{}))
			}
			if tc.edit != nil {
				tc.edit(h)
			}
			err := planErr(t, h, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("plan error = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestPlanTargetsAndReplace(t *testing.T) {
	h := newHarness(t, localcloud.Options{})
	p := h.plan(provision.PlanOptions{Targets: []string{"instance.app"}})
	if got, want := actions(p), map[string]provision.Action{"keypair.deploy": provision.Create, "security_group.app": provision.Create, "instance.app": provision.Create}; !equalActions(got, want) {
		t.Fatalf("targeted plan = %v, want %v", got, want)
	}
	h.apply(p)
	p = h.plan(provision.PlanOptions{Targets: []string{"security_group.app"}})
	if got := actions(p); len(got) != 0 {
		t.Errorf("plan of an applied target = %v", got)
	}
	p = h.plan(provision.PlanOptions{Replace: []string{"instance.app"}, Targets: []string{"instance.app"}})
	if c := p.Change("instance.app"); c == nil || c.Action != provision.Replace || !strings.Contains(c.Reason, "--replace") {
		t.Fatalf("replace requested: %+v", c)
	}
	// configure pinned the old server's host keys and owes it a restart.
	old := h.state()
	old.Hosts["app"] = state.Host{Address: "198.51.100.2", HostKeys: []string{"ssh-ed25519 AAAAold"}}
	old.Pending = append(old.Pending, state.Pending{Address: "host.app:unit:mosquitto.service", Action: "restart"})
	_, etag, err := h.store.Read(t.Context(), old.Env)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.store.Write(t.Context(), old.Env, old, etag); err != nil {
		t.Fatal(err)
	}
	h.apply(h.plan(provision.PlanOptions{Replace: []string{"instance.app"}, Targets: []string{"instance.app"}}))
	oldApp, _ := old.Resource("instance.app")
	now := h.state()
	newApp, _ := now.Resource("instance.app")
	if oldApp.ID == newApp.ID || newApp.ID == "" {
		t.Errorf("instance not replaced: %s -> %s", oldApp.ID, newApp.ID)
	}
	// The new server has new host keys: the old pin must not refuse them,
	// and nothing is owed to a machine that is gone.
	if h, ok := now.Hosts["app"]; ok {
		t.Errorf("the replaced instance's host keys are still pinned: %+v", h)
	}
	for _, pd := range now.Pending {
		if strings.HasPrefix(pd.Address, "host.app:") {
			t.Errorf("a restart is still owed to the replaced instance: %+v", pd)
		}
	}
}

func TestStopFinishesWhatRunsAndSavesState(t *testing.T) {
	h := newHarness(t, localcloud.Options{})
	p := h.plan(provision.PlanOptions{})
	stop := make(chan struct{})
	rep, err := provision.Apply(t.Context(), h.cl, h.store, p, provision.ApplyOptions{
		Sealer: h.sealer, PollServer: 10_000_000, PollDatabase: 10_000_000, Stop: stop,
		OnEvent: func(e provision.Event) {
			if e.Type == provision.EventComplete && e.Address == "instance.app" {
				close(stop)
			}
		},
	})
	if err == nil || !strings.Contains(err.Error(), "stopped") {
		t.Fatalf("apply: %v", err)
	}
	status := map[string]string{}
	for _, r := range rep.Results {
		status[r.Address] = r.Status
		// The cluster is ordered with the instance (see createDatabase):
		// the stop interrupts its wait, or it had not started.
		if r.Address == "database.main" && r.Status == provision.ResultFailed && !strings.Contains(r.Error, "stopped") {
			t.Errorf("database.main failed for another reason than the stop: %s", r.Error)
		}
	}
	if status["instance.app"] != provision.ResultDone || status["database.main"] == provision.ResultDone || status["database_user.main.emqx"] != provision.ResultSkipped {
		t.Errorf("results: %v", status)
	}
	if _, ok := h.state().Resource("instance.app"); !ok {
		t.Error("the instance made before the stop is not in state")
	}
	// The next apply finishes the job.
	h.apply(h.plan(provision.PlanOptions{}))
	if p := h.plan(provision.PlanOptions{}); p.HasChanges() {
		t.Errorf("plan after the resumed apply: %v", actions(p))
	}
}

func TestProtectedDatabase(t *testing.T) {
	h := newHarness(t, localcloud.Options{})
	h.env.Databases["main"].Protect = true
	h.apply(h.plan(provision.PlanOptions{}))
	st := h.state()
	db, _ := st.Resource("database.main")
	cl, err := h.cl.DB.GetCluster(t.Context(), db.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cl.DeletionProtection == nil || !*cl.DeletionProtection {
		t.Fatalf("OVH deletion protection not set: %+v", cl.DeletionProtection)
	}
	if p := h.plan(provision.PlanOptions{}); p.HasChanges() {
		t.Fatalf("plan after a protected create: %v %v", actions(p), p.Drift)
	}
	if err := planErr(t, h, provision.PlanOptions{Destroy: true}); err == nil || !strings.Contains(err.Error(), "protected") {
		t.Fatalf("destroy of a protected database planned: %v", err)
	}
	// Lifting the protection in the YAML is an update, then destroy works.
	h.env.Databases["main"].Protect = false
	p := h.plan(provision.PlanOptions{})
	if got := actions(p); !equalActions(got, map[string]provision.Action{"database.main": provision.Update}) {
		t.Fatalf("plan after lifting protection: %v", got)
	}
	h.apply(p)
	h.apply(h.plan(provision.PlanOptions{Destroy: true}))
	assertEmpty(t, h)
}

// An apply killed after it asked for a server but before it recorded it,
// for an instance the YAML then dropped: the next plan deletes the server.
func TestInterruptedCreateOfADroppedInstance(t *testing.T) {
	h := newHarness(t, localcloud.Options{})
	h.apply(h.plan(provision.PlanOptions{}))
	ctx := t.Context()
	st, etag, err := h.store.Read(ctx, lctest.Env)
	if err != nil {
		t.Fatal(err)
	}
	st.Pending = append(st.Pending, state.Pending{Address: "instance.old", Action: "create", Started: time.Now()})
	if _, err := h.store.Write(ctx, lctest.Env, st, etag); err != nil {
		t.Fatal(err)
	}
	app, _ := st.Resource("instance.app")
	if _, err := h.cl.Compute.CreateServer(ctx, openstack.ServerSpec{
		Name: "acco-test-old", FlavorID: attr(app, "flavor_id"), ImageID: attr(app, "image_id"), NetworkID: attr(app, "network_id"),
		Metadata: map[string]string{provision.MetaEnv: "test", provision.MetaName: "old"},
	}); err != nil {
		t.Fatal(err)
	}
	p := h.plan(provision.PlanOptions{})
	c := p.Change("instance.old")
	if c == nil || c.Action != provision.Delete || !strings.Contains(c.Reason, "interrupted") {
		t.Fatalf("instance.old: %+v (plan %v)", c, actions(p))
	}
	var out strings.Builder
	if err := p.Render(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "An earlier apply was interrupted during: create instance.old.") {
		t.Errorf("plan does not say an apply was interrupted:\n%s", out.String())
	}
	h.apply(p)
	if p := h.plan(provision.PlanOptions{}); p.HasChanges() || len(p.Interrupted) != 0 {
		t.Errorf("plan after the sweep: %v, interrupted %v", actions(p), p.Interrupted)
	}
	if st := h.state(); len(st.Pending) != 0 {
		t.Errorf("pending left: %+v", st.Pending)
	}
}

func attr(r *state.Resource, k string) string {
	s, _ := r.Attributes[k].(string)
	return s
}

// A database user found in the cluster and not in state (a state lost or
// put back) keeps its password unless --reset-unknown-users; the one an
// interrupted apply of acco was creating is adopted and reset.
func TestUnknownDatabaseUserIsNotReset(t *testing.T) {
	h := newHarness(t, localcloud.Options{})
	h.apply(h.plan(provision.PlanOptions{}))
	ctx := t.Context()
	const addr = "database_user.main.emqx"
	forget := func(pending bool) {
		t.Helper()
		st, etag, err := h.store.Read(ctx, lctest.Env)
		if err != nil {
			t.Fatal(err)
		}
		st.RemoveResource(addr)
		if pending {
			st.Pending = append(st.Pending, state.Pending{Address: addr, Action: "create", Started: time.Now()})
		}
		if _, err := h.store.Write(ctx, lctest.Env, st, etag); err != nil {
			t.Fatal(err)
		}
	}
	forget(false)
	p := h.plan(provision.PlanOptions{})
	if c := p.Change(addr); c == nil || c.Action != provision.NoOp {
		t.Fatalf("%s without --reset-unknown-users: %+v", addr, c)
	}
	found := false
	for _, d := range p.Drift {
		found = found || d.Address == addr && strings.Contains(d.Message, "--reset-unknown-users")
	}
	if !found {
		t.Errorf("the plan does not say why %s is left alone: %+v", addr, p.Drift)
	}
	if c := h.plan(provision.PlanOptions{ResetUnknownUsers: true}).Change(addr); c == nil || c.Action != provision.Update || !strings.Contains(c.Reason, "reset its password") {
		t.Errorf("%s with --reset-unknown-users: %+v", addr, c)
	}
	forget(true)
	if c := h.plan(provision.PlanOptions{}).Change(addr); c == nil || c.Action != provision.Update {
		t.Errorf("%s that an interrupted apply was creating: %+v", addr, c)
	}
}
