package provision_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/accoreboot/acco/internal/localcloud"
	"github.com/accoreboot/acco/internal/localcloud/knobs"
	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/provision"
	"github.com/accoreboot/acco/provision/httpretry"
	"github.com/accoreboot/acco/provision/internal/lctest"
	"github.com/accoreboot/acco/provision/openstack"
	"github.com/accoreboot/acco/provision/ovhdb"
	"github.com/accoreboot/acco/state"
)

const testPubKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBn2Mg6/8LZm6XxJ3yYzyD1vE5qH/9bQkxW6mDaxwCCg deploy@acco"

// harness drives plan and apply of the test environment against an
// in-process local cloud, with state in a directory.
type harness struct {
	t      testing.TB
	lc     *lctest.Cloud
	env    *spec.Environment
	cl     provision.Clients
	store  *state.Store
	blob   state.Blob // the state bucket under store
	sealer *state.Sealer
	events []provision.Event
	// rounds is how many applies h.apply may run for one plan (default
	// 1): under injected faults an operation can fail every attempt, and
	// the next apply (of a new plan) must continue from there.
	rounds int
}

func newHarness(t testing.TB, opts localcloud.Options) *harness {
	t.Helper()
	lc := lctest.Start(t, opts)
	keyFile := filepath.Join(t.TempDir(), "deploy.pub")
	if err := os.WriteFile(keyFile, []byte(testPubKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	lc.Vars["ACCO_DEPLOY_PUBLIC_KEY_FILE"] = keyFile
	h, err := connectHarness(lc.Lookup, lctest.Environments(t), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h.t, h.lc = t, lc
	return h
}

// connectHarness loads the test environment and connects to the cloud and
// state that lookup and stateDir name (for the tests and their child
// processes).
func connectHarness(lookup func(string) (string, bool), envDir, stateDir string) (*harness, error) {
	ctx := context.Background()
	env, err := spec.Load(envDir, lctest.Env, lookup)
	if err != nil {
		return nil, err
	}
	hc := &httpretry.Transport{MinDelay: time.Millisecond, MaxDelay: 20 * time.Millisecond, MaxAttempts: 10}
	osc, err := openstack.Connect(ctx, openstack.Config{Cloud: env.Cloud, Region: env.Region, Project: env.Project, Lookup: lookup, HTTPClient: newClient(hc)})
	if err != nil {
		return nil, err
	}
	db, err := ovhdb.New(ovhdb.Config{Project: env.Project, Lookup: lookup, HTTPClient: newClient(hc)})
	if err != nil {
		return nil, err
	}
	key, _ := lookup("ACCO_STATE_KEY")
	sealer, err := state.NewSealer(key)
	if err != nil {
		return nil, err
	}
	blob := state.NewDirBlob(stateDir)
	return &harness{env: env, store: state.NewStore(blob), blob: blob, sealer: sealer,
		cl: provision.Clients{Compute: osc.Compute, Network: osc.Network, Image: osc.Image, DB: db}}, nil
}

func (h *harness) state() *state.State {
	h.t.Helper()
	st, _, err := h.store.Read(h.t.Context(), h.env.Name)
	if errors.Is(err, state.ErrNotFound) {
		return nil
	}
	if err != nil {
		h.t.Fatal(err)
	}
	return st
}

func (h *harness) plan(opts provision.PlanOptions) *provision.Plan {
	h.t.Helper()
	obs, err := provision.Observe(h.t.Context(), h.cl, h.env.Name)
	if err != nil {
		h.t.Fatalf("observe: %v", err)
	}
	keys, err := provision.PublicKeys(h.env)
	if err != nil {
		h.t.Fatal(err)
	}
	p, err := provision.PlanChanges(provision.Inputs{Env: h.env, PublicKeys: keys, State: h.state(), Observed: obs}, opts)
	if err != nil {
		h.t.Fatalf("plan: %v", err)
	}
	return p
}

func (h *harness) apply(p *provision.Plan) *provision.Report {
	h.t.Helper()
	run := func(p *provision.Plan) (*provision.Report, error) {
		return provision.Apply(h.t.Context(), h.cl, h.store, p, provision.ApplyOptions{
			Sealer: h.sealer, Dumps: h.blob, PollServer: 20 * time.Millisecond, PollDatabase: 20 * time.Millisecond,
			ProgressEvery: 50 * time.Millisecond, RetryDelay: 10 * time.Millisecond, OnEvent: func(e provision.Event) { h.events = append(h.events, e) },
		})
	}
	rep, err := run(p)
	for round := 2; err != nil && round <= h.rounds; round++ {
		h.t.Logf("apply round %d: %v; report: %+v", round-1, err, rep.Results)
		p = h.plan(provision.PlanOptions{Destroy: p.Destroy})
		rep, err = run(p)
	}
	if err != nil {
		var b strings.Builder
		_ = p.Render(&b)
		h.t.Fatalf("apply: %v\nreport: %+v\nplan:\n%s", err, rep, b.String())
	}
	return rep
}

// actions summarises a plan as address=action for the changes that are not
// noop.
func actions(p *provision.Plan) map[string]provision.Action {
	out := map[string]provision.Action{}
	for _, c := range p.Changes {
		if c.Action != provision.NoOp {
			out[c.Address] = c.Action
		}
	}
	return out
}

func TestLifecycle(t *testing.T) {
	h := newHarness(t, localcloud.Options{})
	runLifecycle(t, h)
}

func TestLifecycleUnderFaults(t *testing.T) {
	for _, seed := range []uint64{1, 7, 42} {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			// Every fault but "slow", which only costs time.
			faults := slices.DeleteFunc(knobs.AllFaults(), func(f knobs.Fault) bool { return f == knobs.FaultSlow })
			h := newHarness(t, localcloud.Options{FaultRate: 0.2, Seed: seed, Faults: faults})
			// Operations run concurrently, so which request meets a fault
			// varies from run to run: one can fail all its attempts, and
			// the next apply continues, as it would for an operator.
			h.rounds = 3
			runLifecycle(t, h)
		})
	}
}

func runLifecycle(t testing.TB, h *harness) {
	// From nothing.
	p := h.plan(provision.PlanOptions{})
	wantCreate := h.env.Addresses()
	for _, a := range wantCreate {
		if p.Change(a) == nil || p.Change(a).Action != provision.Create {
			t.Fatalf("first plan: %s is %+v, want create", a, p.Change(a))
		}
	}
	rep := h.apply(p)
	if rep.Failed() {
		t.Fatalf("report: %+v", rep.Results)
	}
	st := h.state()
	for _, a := range wantCreate {
		r, ok := st.Resource(a)
		if !ok || r.ID == "" {
			t.Errorf("state has no ID for %s", a)
		}
	}
	for _, u := range []string{"emqx", "powersync", "backend"} {
		r, _ := st.Resource("database_user.main." + u)
		sealed := r.Secrets["password"]
		if !state.IsSealed(sealed) {
			t.Errorf("password of %s not sealed: %q", u, sealed)
		} else if pw, err := h.sealer.For(st.Env, st.Lineage).Open(sealed, "database_user.main."+u+"/password"); err != nil || pw == "" {
			t.Errorf("password of %s does not open: %v", u, err)
		}
	}
	if out := st.Outputs["instance.app.ipv4"]; out.Value == nil || out.Value == "" {
		t.Errorf("outputs: %+v", st.Outputs)
	}
	if db, _ := st.Resource("database.main"); len(attrList(db.Attributes["ip_restrictions"])) != 1 || attrList(db.Attributes["ip_restrictions"])[0] != st.Outputs["instance.app.ipv4"].Value.(string)+"/32" {
		t.Errorf("allow-list %v, instance %v", db.Attributes["ip_restrictions"], st.Outputs["instance.app.ipv4"].Value)
	}

	// Nothing to do.
	p = h.plan(provision.PlanOptions{})
	if p.HasChanges() {
		t.Fatalf("second plan has changes: %v drift %v", actions(p), p.Drift)
	}

	// Change a flavor, add a rule, add a user.
	h.env.Instances["app"].Flavor = "b3-8"
	h.env.SecurityGroups["app"].Rules = append(h.env.SecurityGroups["app"].Rules, spec.Rule{Protocol: "udp", Ports: []spec.PortRange{{Min: 5683, Max: 5683}}, From: []string{"0.0.0.0/0"}})
	h.env.Databases["main"].Users["reader"] = &spec.DatabaseUser{}
	p = h.plan(provision.PlanOptions{})
	want := map[string]provision.Action{
		"instance.app": provision.Replace, "security_group.app": provision.Update,
		"database_user.main.reader": provision.Create, "database.main": provision.Update,
	}
	if got := actions(p); !equalActions(got, want) {
		t.Fatalf("plan after edits = %v, want %v", got, want)
	}
	if r := p.Change("instance.app").Reason; !strings.Contains(r, "flavor changed") {
		t.Errorf("replace reason %q", r)
	}
	h.apply(p)
	if p = h.plan(provision.PlanOptions{}); p.HasChanges() {
		t.Fatalf("plan after edits applied: %v drift %v", actions(p), p.Drift)
	}

	// Drift: a rule deleted outside acco.
	st = h.state()
	sg, _ := st.Resource("security_group.app")
	g, err := h.cl.Network.GetSecurityGroup(t.Context(), sg.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range g.Rules {
		if r.Direction == "ingress" && r.PortMin == 22 {
			if err := h.cl.Network.DeleteRule(t.Context(), r.ID); err != nil && !openstack.IsNotFound(err) {
				t.Fatal(err)
			}
			break
		}
	}
	p = h.plan(provision.PlanOptions{})
	if !p.HasChanges() || len(p.Drift) == 0 || !strings.Contains(p.Drift[0].Message, "deleted outside acco") {
		t.Fatalf("drift not seen: %v %v", actions(p), p.Drift)
	}
	if got := actions(p); !equalActions(got, map[string]provision.Action{"security_group.app": provision.Update}) {
		t.Errorf("plan after drift = %v", got)
	}
	h.apply(p)
	if p = h.plan(provision.PlanOptions{}); p.HasChanges() {
		t.Fatalf("plan after drift repaired: %v drift %v", actions(p), p.Drift)
	}

	// Another security group for the instance: attached in place.
	h.env.SecurityGroups["extra"] = &spec.SecurityGroup{Description: "extra", Rules: []spec.Rule{{Protocol: "icmp", From: []string{"0.0.0.0/0"}}}}
	h.env.Instances["app"].SecurityGroups = append(h.env.Instances["app"].SecurityGroups, "extra")
	p = h.plan(provision.PlanOptions{})
	if got := actions(p); !equalActions(got, map[string]provision.Action{"security_group.extra": provision.Create, "instance.app": provision.Update}) {
		t.Fatalf("plan after adding a group = %v", got)
	}
	instBefore, _ := h.state().Resource("instance.app")
	h.apply(p)
	if p = h.plan(provision.PlanOptions{}); p.HasChanges() {
		t.Fatalf("plan after attaching a group: %v drift %v", actions(p), p.Drift)
	}
	if instAfter, _ := h.state().Resource("instance.app"); instAfter.ID != instBefore.ID {
		t.Errorf("instance replaced for a security group change")
	}

	// And dropped again: detached before the group is deleted.
	delete(h.env.SecurityGroups, "extra")
	h.env.Instances["app"].SecurityGroups = []string{"app"}
	p = h.plan(provision.PlanOptions{})
	if got := actions(p); !equalActions(got, map[string]provision.Action{"security_group.extra": provision.Delete, "instance.app": provision.Update}) {
		t.Fatalf("plan after dropping a group = %v", got)
	}
	h.apply(p)
	if p = h.plan(provision.PlanOptions{}); p.HasChanges() {
		t.Fatalf("plan after dropping a group: %v drift %v", actions(p), p.Drift)
	}

	// Destroy to nothing.
	p = h.plan(provision.PlanOptions{Destroy: true})
	h.apply(p)
	if st := h.state(); len(st.Resources) != 0 {
		t.Errorf("state after destroy holds %d resources", len(st.Resources))
	}
	assertEmpty(t, h)
}

// assertEmpty checks that the project holds nothing acco made.
func assertEmpty(t testing.TB, h *harness) {
	t.Helper()
	obs, err := provision.Observe(t.Context(), h.cl, lctest.Env)
	if err != nil {
		t.Fatal(err)
	}
	if len(obs.Servers) != 0 || len(obs.Keypairs) != 0 || len(obs.Clusters) != 0 {
		t.Errorf("left behind: %d servers, %d keypairs, %d clusters", len(obs.Servers), len(obs.Keypairs), len(obs.Clusters))
	}
	for _, g := range obs.SecurityGroups {
		if g.Name != "default" {
			t.Errorf("left behind: security group %s", g.Name)
		}
	}
}

func attrList(v any) []string {
	switch x := v.(type) {
	case []string:
		return x
	case []any:
		var out []string
		for _, e := range x {
			s, _ := e.(string)
			out = append(out, s)
		}
		return out
	}
	return nil
}

func equalActions(a, b map[string]provision.Action) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
