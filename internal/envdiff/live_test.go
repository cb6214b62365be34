package envdiff

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/accoreboot/acco/provision"
	"github.com/accoreboot/acco/provision/openstack"
	"github.com/accoreboot/acco/provision/ovhdb"
	"github.com/accoreboot/acco/state"
)

// deployedState is the state of an applied and configured environment:
// one instance (server srv-1), one database (cluster cl-1) with a user
// whose password is sealed.
func deployedState() *state.State {
	st := state.New("a", "test")
	st.Serial = 7
	st.Resources = []state.Resource{
		{Address: "database.main", Kind: "database", ID: "cl-1", Attributes: map[string]any{"version": "17"}},
		{Address: "database_user.main.emqx", Kind: "database_user", ID: "u-1", Secrets: map[string]string{"password": "sealed:SEALEDVALUE"}},
		{Address: "instance.app", Kind: "instance", ID: "srv-1", Attributes: map[string]any{"flavor": "d2-4"}},
		{Address: "keypair.deploy", Kind: "keypair", ID: "acco-a-deploy"},
	}
	st.Hosts = map[string]state.Host{"app": {Address: "192.0.2.10", HostKeys: []string{"ssh-ed25519 AAAA"}}}
	return st
}

// observed is the cloud of deployedState: the server runs d2-4 on Debian
// 12, the cluster is PostgreSQL 17, essential, one node.
func observed() *provision.Observed {
	return &provision.Observed{
		Flavors: []openstack.Flavor{{ID: "f-d2-4", Name: "d2-4"}, {ID: "f-d2-8", Name: "d2-8"}},
		Images:  []openstack.Image{{ID: "img-12", Name: "Debian 12"}, {ID: "img-13", Name: "Debian 13"}},
		Servers: []openstack.Server{
			{ID: "srv-1", Name: "acco-a-app", Status: "ACTIVE", FlavorID: "f-d2-4", ImageID: "img-12"},
			{ID: "srv-other", Name: "not-ours", Status: "ACTIVE", FlavorID: "f-d2-8", ImageID: "img-13"},
		},
		Clusters:  []ovhdb.Cluster{{ID: "cl-1", Engine: "postgresql", Version: "17", Plan: "essential", Flavor: "db1-4", Status: ovhdb.StatusReady, NodeNumber: 1}},
		Users:     map[string][]ovhdb.User{"cl-1": {{ID: "u-1", Username: "emqx", Password: "NEVER-SHOWN"}, {ID: "u-0", Username: "avnadmin"}}},
		Databases: map[string][]ovhdb.Database{"cl-1": {{ID: "d-1", Name: "acco"}, {ID: "d-0", Name: "defaultdb"}}},
	}
}

func TestDeployed(t *testing.T) {
	full := map[string]map[string]string{
		"instances.app": {
			"instances.app.configured": "yes",
			"instances.app.status":     "ACTIVE",
			"instances.app.flavor":     "d2-4",
			"instances.app.image":      "Debian 12",
			"instances.app.image_id":   "img-12",
		},
		"databases.main": {
			"databases.main.status":    "READY",
			"databases.main.engine":    "postgresql",
			"databases.main.version":   "17",
			"databases.main.plan":      "essential",
			"databases.main.flavor":    "db1-4",
			"databases.main.nodes":     "1",
			"databases.main.users":     "[avnadmin, emqx]",
			"databases.main.databases": "[acco, defaultdb]",
		},
	}
	tests := []struct {
		name     string
		st       func() *state.State
		obs      func(o *provision.Observed)
		deployed bool
		change   func(f map[string]map[string]string)
	}{
		{name: "no state", st: func() *state.State { return nil }},
		{name: "empty state (destroyed)", st: func() *state.State { return state.New("a", "test") }},
		{name: "applied and configured", st: deployedState, deployed: true, change: func(map[string]map[string]string) {}},
		{
			name: "server resized and rebuilt outside acco",
			st:   deployedState,
			obs: func(o *provision.Observed) {
				o.Servers[0].FlavorID, o.Servers[0].ImageID = "f-d2-8", "img-13"
			},
			deployed: true,
			change: func(f map[string]map[string]string) {
				f["instances.app"]["instances.app.flavor"] = "d2-8"
				f["instances.app"]["instances.app.image"] = "Debian 13"
				f["instances.app"]["instances.app.image_id"] = "img-13"
			},
		},
		{
			name: "image gone from the catalogue, flavor unknown",
			st:   deployedState,
			obs: func(o *provision.Observed) {
				o.Images, o.Flavors = nil, nil
			},
			deployed: true,
			change: func(f map[string]map[string]string) {
				f["instances.app"]["instances.app.flavor"] = "f-d2-4"
				f["instances.app"]["instances.app.image"] = "(unknown image)"
			},
		},
		{
			name: "not configured yet, restarts owed, tainted",
			st: func() *state.State {
				st := deployedState()
				st.Hosts = map[string]state.Host{}
				st.Resources[2].Status = state.StatusTainted
				st.Pending = []state.Pending{
					{Address: "host.app:unit:emqx.service", Action: "restart"},
					{Address: "host.app:unit:backend.service", Action: "restart"},
					{Address: "host.other:unit:emqx.service", Action: "restart"},
					{Address: "instance.app", Action: "create"},
				}
				return st
			},
			deployed: true,
			change: func(f map[string]map[string]string) {
				f["instances.app"]["instances.app.configured"] = "no"
				f["instances.app"]["instances.app.status"] = "ACTIVE (tainted)"
				f["instances.app"]["instances.app.restarts_owed"] = "[backend.service, emqx.service]"
			},
		},
		{
			name: "deleted outside acco",
			st:   deployedState,
			obs: func(o *provision.Observed) {
				o.Servers = o.Servers[1:]
				o.Clusters[0].Status = ovhdb.StatusDeleting
			},
			deployed: true,
			change: func(f map[string]map[string]string) {
				f["instances.app"] = map[string]string{"instances.app.configured": "yes", "instances.app.status": Missing}
				f["databases.main"] = map[string]string{"databases.main.status": Missing}
			},
		},
		{
			name: "cluster upgraded, scaled and moved to another plan; node count from the nodes",
			st:   deployedState,
			obs: func(o *provision.Observed) {
				c := &o.Clusters[0]
				c.Version, c.Plan, c.Flavor, c.NodeNumber = "18", "business", "db1-15", 0
				c.Nodes = []ovhdb.Node{{ID: "n1"}, {ID: "n2"}}
			},
			deployed: true,
			change: func(f map[string]map[string]string) {
				f["databases.main"]["databases.main.version"] = "18"
				f["databases.main"]["databases.main.plan"] = "business"
				f["databases.main"]["databases.main.flavor"] = "db1-15"
				f["databases.main"]["databases.main.nodes"] = "2"
			},
		},
		{
			name: "on-demand database stopped: only its archive in state",
			st: func() *state.State {
				st := deployedState()
				st.Resources = slicesDelete(st.Resources, "database.main")
				st.OnDemand = map[string]state.DatabaseArchive{"main": {Status: state.ArchiveStopped, Since: time.Date(2026, 12, 6, 4, 15, 0, 0, time.UTC)}}
				return st
			},
			obs:      func(o *provision.Observed) { o.Clusters = nil },
			deployed: true,
			change: func(f map[string]map[string]string) {
				f["databases.main"] = map[string]string{"databases.main.status": "stopped (on demand)"}
			},
		},
		{
			name: "only an on-demand archive left: still deployed",
			st: func() *state.State {
				st := state.New("a", "test")
				st.OnDemand = map[string]state.DatabaseArchive{"main": {Status: state.ArchiveStopped}}
				return st
			},
			deployed: true,
			change: func(f map[string]map[string]string) {
				for k := range f {
					delete(f, k)
				}
				f["databases.main"] = map[string]string{"databases.main.status": "stopped (on demand)"}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obs := observed()
			if tt.obs != nil {
				tt.obs(obs)
			}
			st := tt.st()
			got := Deployed(st, obs)
			if got.Deployed != tt.deployed {
				t.Errorf("Deployed = %v, want %v", got.Deployed, tt.deployed)
			}
			want := map[string]map[string]string{}
			if tt.change != nil {
				want = clone(full)
				tt.change(want)
			}
			if !reflect.DeepEqual(got.Facts, want) {
				t.Errorf("facts:\n got %v\nwant %v", got.Facts, want)
			}
			if st != nil && got.Serial != st.Serial {
				t.Errorf("Serial = %d, want %d", got.Serial, st.Serial)
			}
		})
	}
}

func slicesDelete(rs []state.Resource, addr string) []state.Resource {
	var out []state.Resource
	for _, r := range rs {
		if r.Address != addr {
			out = append(out, r)
		}
	}
	return out
}

func clone(f map[string]map[string]string) map[string]map[string]string {
	out := map[string]map[string]string{}
	for g, m := range f {
		out[g] = map[string]string{}
		for k, v := range m {
			out[g][k] = v
		}
	}
	return out
}

func TestCompareLive(t *testing.T) {
	applied := func() *Live { return Deployed(deployedState(), observed()) }
	tests := []struct {
		name   string
		yaml   []Group // the YAML differences found before
		l1, l2 func() *Live
		want   []Group
	}{
		{name: "neither deployed", l1: func() *Live { return Deployed(nil, nil) }, l2: func() *Live { return Deployed(state.New("b", "t"), nil) }, want: []Group{}},
		{name: "both deployed alike (other serials)", l1: applied, l2: func() *Live {
			st := deployedState()
			st.Serial = 40
			return Deployed(st, observed())
		}, want: []Group{}},
		{
			name: "one not deployed: one difference, first",
			yaml: []Group{{Resource: "instances.app", Differences: []Difference{{Key: "instances.app.flavor", Env1: str("d2-4"), Env2: str("d2-8")}}}},
			l1:   applied,
			l2:   func() *Live { return Deployed(nil, nil) },
			want: []Group{
				{Resource: "environment", Differences: []Difference{{Key: "deployed", Env1: str("yes"), Env2: str(NotDeployed), Live: true}}},
				{Resource: "instances.app", Differences: []Difference{{Key: "instances.app.flavor", Env1: str("d2-4"), Env2: str("d2-8")}}},
			},
		},
		{
			name: "live-only differences join their resource's group after the YAML ones",
			yaml: []Group{
				{Resource: "environment", Differences: []Difference{{Key: "name", Env1: str("a"), Env2: str("b")}}},
				{Resource: "instances.app", Differences: []Difference{{Key: "instances.app.keypair", Env1: str("deploy"), Env2: str("ops")}}},
			},
			l1: applied,
			l2: func() *Live {
				st := deployedState()
				st.Hosts = nil
				o := observed()
				o.Servers[0].FlavorID = "f-d2-8"
				o.Clusters[0].Version = "16"
				o.Users["cl-1"] = o.Users["cl-1"][1:]
				return Deployed(st, o)
			},
			want: []Group{
				{Resource: "environment", Differences: []Difference{{Key: "name", Env1: str("a"), Env2: str("b")}}},
				{Resource: "databases.main", Differences: []Difference{
					{Key: "databases.main.users", Env1: str("[avnadmin, emqx]"), Env2: str("[avnadmin]"), Live: true},
					{Key: "databases.main.version", Env1: str("17"), Env2: str("16"), Live: true},
				}},
				{Resource: "instances.app", Differences: []Difference{
					{Key: "instances.app.keypair", Env1: str("deploy"), Env2: str("ops")},
					{Key: "instances.app.configured", Env1: str("yes"), Env2: str("no"), Live: true},
					{Key: "instances.app.flavor", Env1: str("d2-4"), Env2: str("d2-8"), Live: true},
				}},
			},
		},
		{
			name: "a resource one side lacks: its facts absent there",
			l1:   applied,
			l2: func() *Live {
				st := deployedState()
				st.Resources = slicesDelete(st.Resources, "database.main")
				return Deployed(st, observed())
			},
			want: []Group{{Resource: "databases.main", Differences: []Difference{
				{Key: "databases.main.databases", Env1: str("[acco, defaultdb]"), Live: true},
				{Key: "databases.main.engine", Env1: str("postgresql"), Live: true},
				{Key: "databases.main.flavor", Env1: str("db1-4"), Live: true},
				{Key: "databases.main.nodes", Env1: str("1"), Live: true},
				{Key: "databases.main.plan", Env1: str("essential"), Live: true},
				{Key: "databases.main.status", Env1: str("READY"), Live: true},
				{Key: "databases.main.users", Env1: str("[avnadmin, emqx]"), Live: true},
				{Key: "databases.main.version", Env1: str("17"), Live: true},
			}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Result{Env1: "a", Env2: "b", Groups: append([]Group{}, tt.yaml...)}
			r.Equal = len(r.Groups) == 0
			r.CompareLive(tt.l1(), tt.l2())
			if !reflect.DeepEqual(r.Groups, tt.want) {
				t.Errorf("groups:\n got %s\nwant %s", asJSON(r.Groups), asJSON(tt.want))
			}
			if r.Equal != (len(tt.want) == 0) {
				t.Errorf("Equal = %v with %d group(s)", r.Equal, len(tt.want))
			}
		})
	}
}

// TestRenderLive checks the text and JSON a person and a script see: live
// keys marked, where the facts come from, and no secret.
func TestRenderLive(t *testing.T) {
	o := observed()
	o.Servers[0].FlavorID = "f-d2-8"
	r := &Result{Env1: "test", Env2: "copy", Groups: []Group{}, Equal: true}
	r.CompareLive(Deployed(deployedState(), observed()), Deployed(deployedState(), o))
	var buf bytes.Buffer
	if err := r.Render(&buf); err != nil {
		t.Fatal(err)
	}
	want := `test and copy differ in 1 key(s), 1 of them live (resolved with defaults.yaml; live: test from state serial 7, copy from state serial 7, and a refresh of the cloud):

instances.app
  KEY                         TEST  COPY
  live: instances.app.flavor  d2-4  d2-8
`
	if buf.String() != want {
		t.Errorf("text:\n%s\nwant:\n%s", buf.String(), want)
	}
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`"live":true`, `"live":{"env1":{"deployed":true,"serial":7},"env2":{"deployed":true,"serial":7}}`} {
		if !strings.Contains(string(js), w) {
			t.Errorf("JSON lacks %s: %s", w, js)
		}
	}
	for _, out := range []string{buf.String(), string(js)} {
		for _, secret := range []string{"SEALEDVALUE", "NEVER-SHOWN", "sealed:"} {
			if strings.Contains(out, secret) {
				t.Errorf("output shows %q:\n%s", secret, out)
			}
		}
	}

	buf.Reset()
	same := &Result{Env1: "test", Env2: "test", Groups: []Group{}, Equal: true}
	same.CompareLive(Deployed(nil, nil), Deployed(nil, nil))
	if err := same.Render(&buf); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String(), "test and test are the same (resolved with defaults.yaml; live: test not deployed, test not deployed).\n"; got != want {
		t.Errorf("text:\n%s\nwant:\n%s", got, want)
	}
}

func asJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
