package provision_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/accoreboot/acco/internal/localcloud"
	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/provision"
	"github.com/accoreboot/acco/provision/openstack"
	"github.com/accoreboot/acco/provision/ovhdb"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/plan")

// scrubbers replace what differs between runs (IDs, addresses, lineage).
var scrubbers = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`), "<uuid>"},
	{regexp.MustCompile(`postgresql-[0-9a-z-]+\.database\.cloud\.ovh\.net`), "<db-host>"},
	{regexp.MustCompile(`\b198\.51\.100\.\d+\b`), "<ipv4>"},
	{regexp.MustCompile(`"serial": \d+`), `"serial": <n>`},
}

func scrub(s string) string {
	for _, sc := range scrubbers {
		s = sc.re.ReplaceAllString(s, sc.with)
	}
	return strings.ReplaceAll(s, testPubKey[:strings.LastIndex(testPubKey, " ")], "<public key>")
}

// golden compares got with testdata/plan/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "plan", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./provision -run %s -update to create it)", err, t.Name())
	}
	if string(want) != got {
		t.Errorf("%s differs from the golden file (go test ./provision -run %s -update rewrites it)\n--- got\n%s\n--- want\n%s", path, t.Name(), got, want)
	}
}

// TestPlanRendering goes through the lifecycle and checks the human and JSON
// renderings of each plan against golden files, the JSON document against
// DESIGN.md's contract, and that no password ever shows.
func TestPlanRendering(t *testing.T) {
	h := newHarness(t, localcloud.Options{})
	var outputs []string
	check := func(name string, p *provision.Plan) {
		t.Helper()
		var human bytes.Buffer
		if err := p.Render(&human); err != nil {
			t.Fatal(err)
		}
		doc, err := json.MarshalIndent(p.JSON(), "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		outputs = append(outputs, human.String(), string(doc))
		golden(t, name+".txt", scrub(human.String()))
		golden(t, name+".json", scrub(string(doc))+"\n")
		checkContract(t, doc, p)
	}

	p := h.plan(provision.PlanOptions{})
	check("create", p)
	h.apply(p)
	check("noop", h.plan(provision.PlanOptions{}))

	h.env.Instances["app"].Flavor = "b3-8"
	h.env.SecurityGroups["app"].Rules = append(h.env.SecurityGroups["app"].Rules, spec.Rule{Description: "CoAP", Protocol: "udp", Ports: []spec.PortRange{{Min: 5683, Max: 5683}}, From: []string{"0.0.0.0/0"}})
	h.env.Databases["main"].Users["reader"] = &spec.DatabaseUser{}
	delete(h.env.Databases["main"].Users, "backend")
	p = h.plan(provision.PlanOptions{})
	check("edits", p)
	h.apply(p)

	st := h.state()
	sg, _ := st.Resource("security_group.app")
	g, err := h.cl.Network.GetSecurityGroup(t.Context(), sg.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range g.Rules {
		if r.Direction == "ingress" && r.PortMin == 22 {
			if err := h.cl.Network.DeleteRule(t.Context(), r.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	check("drift", h.plan(provision.PlanOptions{}))
	refresh := h.plan(provision.PlanOptions{RefreshOnly: true})
	check("refresh-only", refresh)
	// Applying a refresh-only plan records the drift in state: the next
	// plan sees no drift, only the rule to add back.
	h.apply(refresh)
	if p := h.plan(provision.PlanOptions{}); len(p.Drift) != 0 || !equalActions(actions(p), map[string]provision.Action{"security_group.app": provision.Update}) {
		t.Errorf("plan after a refresh-only apply: %v drift %v", actions(p), p.Drift)
	}
	p = h.plan(provision.PlanOptions{Destroy: true})
	check("destroy", p)

	// No password in any rendering or event.
	events, _ := json.Marshal(h.events)
	outputs = append(outputs, string(events))
	st = h.state()
	for _, r := range st.Resources {
		sealed := r.Secrets["password"]
		if sealed == "" {
			continue
		}
		pw, err := h.sealer.For(st.Env, st.Lineage).Open(sealed, r.Address+"/password")
		if err != nil {
			t.Fatal(err)
		}
		for _, out := range outputs {
			if strings.Contains(out, pw) || strings.Contains(out, sealed) {
				t.Errorf("the password of %s shows in an output", r.Address)
			}
		}
	}
}

// checkContract checks a JSON plan against DESIGN.md: format_version "1",
// env, lineage, serial, changes with address/kind/action/reason/before/after,
// drift, and a summary that counts the changes.
func checkContract(t *testing.T, doc []byte, p *provision.Plan) {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"format_version", "env", "lineage", "serial", "changes", "drift", "summary"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON plan has no %q", k)
		}
	}
	var top struct {
		FormatVersion string `json:"format_version"`
		Env           string `json:"env"`
		Changes       []map[string]json.RawMessage
		Drift         []struct{ Address, Message string }
		Summary       map[string]int
	}
	if err := json.Unmarshal(doc, &top); err != nil {
		t.Fatal(err)
	}
	if top.FormatVersion != "1" || top.Env != "test" {
		t.Errorf("format_version %q env %q", top.FormatVersion, top.Env)
	}
	counts := map[string]int{}
	for _, c := range top.Changes {
		for _, k := range []string{"address", "kind", "action", "before", "after"} {
			if _, ok := c[k]; !ok {
				t.Errorf("change %s has no %q", c["address"], k)
			}
		}
		var action string
		_ = json.Unmarshal(c["action"], &action)
		if !slices.Contains([]string{"create", "update", "replace", "delete", "noop", "read"}, action) {
			t.Errorf("action %q is not in the vocabulary", action)
		}
		counts[action]++
		for _, side := range []string{"before", "after"} {
			var attrs map[string]any
			_ = json.Unmarshal(c[side], &attrs)
			if v, ok := attrs["password"]; ok && v != "(sensitive)" {
				t.Errorf("password shown as %v", v)
			}
		}
	}
	for _, k := range []string{"create", "update", "replace", "delete"} {
		if top.Summary[k] != counts[k] {
			t.Errorf("summary %s = %d, changes say %d", k, top.Summary[k], counts[k])
		}
	}
	if len(top.Drift) != len(p.Drift) {
		t.Errorf("drift %d entries, plan has %d", len(top.Drift), len(p.Drift))
	}
}

// TestPlanRenderingAdoptable renders a plan of a project where a keypair, a
// security group, a server and a PostgreSQL cluster were made outside acco:
// the plan still creates everything and lists them as adoptable, with how
// each differs and the acco import command.
func TestPlanRenderingAdoptable(t *testing.T) {
	h := newHarness(t, localcloud.Options{})
	ctx := t.Context()
	obs, err := provision.Observe(ctx, h.cl, h.env.Name)
	if err != nil {
		t.Fatal(err)
	}
	id := func(kind, name string) string {
		switch kind {
		case "flavor":
			for _, f := range obs.Flavors {
				if f.Name == name {
					return f.ID
				}
			}
		case "image":
			for _, i := range obs.Images {
				if i.Name == name {
					return i.ID
				}
			}
		case "network":
			for _, n := range obs.Networks {
				if n.Name == name {
					return n.ID
				}
			}
		}
		t.Fatalf("no %s %s", kind, name)
		return ""
	}
	if _, err := h.cl.Compute.CreateKeypair(ctx, "laptop", testPubKey); err != nil {
		t.Fatal(err)
	}
	g, err := h.cl.Network.CreateSecurityGroup(ctx, "web", "made in the panel", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.cl.Network.CreateRule(ctx, openstack.Rule{GroupID: g.ID, Direction: "ingress", EtherType: "IPv4", Protocol: "tcp", PortMin: 22, PortMax: 22, RemoteIPPrefix: "203.0.113.0/24"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.cl.Compute.CreateServer(ctx, openstack.ServerSpec{Name: "ui-app", FlavorID: id("flavor", "d2-4"), ImageID: id("image", "Debian 12"),
		NetworkID: id("network", "Ext-Net"), KeyName: "laptop", SecurityGroups: []string{"web"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.cl.DB.CreateCluster(ctx, ovhdb.ClusterCreate{Description: "ui-pg", Plan: "essential", Version: "17",
		NodesPattern: ovhdb.NodesPattern{Flavor: "db1-4", Number: 1, Region: "GRA"}}); err != nil {
		t.Fatal(err)
	}
	p := h.plan(provision.PlanOptions{})
	if len(p.Adoptable) != 4 {
		t.Fatalf("adoptable %+v, want the keypair, group, server and cluster", p.Adoptable)
	}
	if s := p.Summary(); s.Create != 9 {
		t.Errorf("summary %+v: listing adoptables changed the plan", s)
	}
	var human bytes.Buffer
	if err := p.Render(&human); err != nil {
		t.Fatal(err)
	}
	doc, err := json.MarshalIndent(p.JSON(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "adoptable.txt", scrub(human.String()))
	golden(t, "adoptable.json", scrub(string(doc))+"\n")
	checkContract(t, doc, p)
}
