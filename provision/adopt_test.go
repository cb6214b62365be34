package provision

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/provision/openstack"
	"github.com/accoreboot/acco/provision/ovhdb"
	"github.com/accoreboot/acco/state"
)

const adoptKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBn2Mg6/8LZm6XxJ3yYzyD1vE5qH/9bQkxW6mDaxwCCg"

// adoptEnv loads the shipped test environment (no I/O beyond the YAML).
func adoptEnv(t *testing.T) *spec.Environment {
	t.Helper()
	env, err := spec.Load("../environments", "test", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// adoptObserved is a project with what the test environment names
// (flavors, image, network, offer) and nothing else.
func adoptObserved() *Observed {
	return &Observed{
		Flavors:  []openstack.Flavor{{ID: "fl-d24", Name: "d2-4"}, {ID: "fl-b38", Name: "b3-8"}},
		Images:   []openstack.Image{{ID: "im-deb12", Name: "Debian 12", Status: "active"}},
		Networks: []openstack.NetworkInfo{{ID: "net-ext", Name: "Ext-Net", External: true}},
		Offers:   []ovhdb.Availability{{Engine: "postgresql", Version: "17", Plan: "essential", Region: "GRA", Flavor: "db1-4", MinNodeNumber: 1, MaxNodeNumber: 1}},
		SecurityGroups: []openstack.SecurityGroup{{ID: "sg-default", Name: "default", Rules: []openstack.Rule{
			{Direction: "ingress", EtherType: "IPv4", Protocol: "tcp", PortMin: 22, PortMax: 22, RemoteIPPrefix: "203.0.113.0/24"}}}},
		Users: map[string][]ovhdb.User{}, Databases: map[string][]ovhdb.Database{}, CACerts: map[string]string{},
	}
}

func uiServer(id, name, flavor string) openstack.Server {
	return openstack.Server{ID: id, Name: name, Status: "ACTIVE", FlavorID: flavor, ImageID: "im-deb12", KeyName: "laptop", SecurityGroups: []string{"web"},
		Addresses: map[string][]openstack.Address{"Ext-Net": {{Addr: "198.51.100.7", Version: 4}}}}
}

func uiGroup(id, name string, tags ...string) openstack.SecurityGroup {
	return openstack.SecurityGroup{ID: id, Name: name, Description: "panel", Tags: tags, Rules: []openstack.Rule{
		{Direction: "ingress", EtherType: "IPv4", Protocol: "tcp", PortMin: 22, PortMax: 22, RemoteIPPrefix: "203.0.113.0/24"},
		{Direction: "egress", EtherType: "IPv4"}}}
}

func uiCluster(id, desc, flavor, status string) ovhdb.Cluster {
	return ovhdb.Cluster{ID: id, Description: desc, Engine: "postgresql", Version: "17", Plan: "essential", Flavor: flavor, Status: status,
		NodeNumber: 1, Nodes: []ovhdb.Node{{ID: "n1", Flavor: flavor, Region: "GRA", Status: "READY"}}}
}

// TestAdoptables lists, for project fixtures, what plan offers to import:
// address=id pairs, and the differences said for some.
func TestAdoptables(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(o *Observed)
		state   []state.Resource
		destroy bool
		want    []string
		differs map[string][]string // address=id -> substrings of Differs
	}{
		{name: "an empty project offers nothing", edit: func(*Observed) {}},
		{name: "a server of the YAML's flavor and image, named otherwise",
			edit:    func(o *Observed) { o.Servers = append(o.Servers, uiServer("s1", "ui-app", "fl-d24")) },
			want:    []string{"instance.app=s1"},
			differs: map[string][]string{"instance.app=s1": {`name "ui-app" (apply renames it "acco-test-app" once imported)`, `keypair "laptop" (YAML: "acco-test-deploy")`, `security_groups [web] (YAML: [acco-test-app])`}}},
		{name: "a server of another flavor and name is not one",
			edit: func(o *Observed) { o.Servers = append(o.Servers, uiServer("s1", "ui-app", "fl-b38")) }},
		{name: "a server named as the YAML's key is one, whatever its flavor",
			edit:    func(o *Observed) { o.Servers = append(o.Servers, uiServer("s1", "app", "fl-b38")) },
			want:    []string{"instance.app=s1"},
			differs: map[string][]string{"instance.app=s1": {`flavor "b3-8" (YAML: "d2-4")`}}},
		{name: "a server with another environment's metadata is that environment's",
			edit: func(o *Observed) {
				s := uiServer("s1", "acco-prod-app", "fl-d24")
				s.Metadata = map[string]string{MetaEnv: "prod", MetaName: "app"}
				o.Servers = append(o.Servers, s)
			}},
		{name: "a server in state at another address is managed",
			edit:  func(o *Observed) { o.Servers = append(o.Servers, uiServer("s1", "ui-app", "fl-d24")) },
			state: []state.Resource{{Address: "instance.old", Kind: spec.KindInstance, ID: "s1"}},
			want:  nil},
		{name: "acco's own server is adopted by the plan, not offered",
			edit: func(o *Observed) {
				s := uiServer("s1", "acco-test-app", "fl-d24")
				s.Metadata = map[string]string{MetaEnv: "test", MetaName: "app"}
				o.Servers = append(o.Servers, s)
			}},
		{name: "a group sharing a rule is one; the default group never",
			edit:    func(o *Observed) { o.SecurityGroups = append(o.SecurityGroups, uiGroup("g1", "web")) },
			want:    []string{"security_group.app=g1"},
			differs: map[string][]string{"security_group.app=g1": {"lacks rule(s) IPv4 tcp 1883-1883 0.0.0.0/0", `description "panel"`}}},
		{name: "a group tagged for another environment is not one",
			edit: func(o *Observed) {
				o.SecurityGroups = append(o.SecurityGroups, uiGroup("g1", "acco-prod-app", "acco", "acco-env=prod"))
			}},
		{name: "a keypair with the YAML's public key",
			edit: func(o *Observed) {
				o.Keypairs = append(o.Keypairs, openstack.Keypair{Name: "laptop", PublicKey: adoptKey + " me@laptop"}, openstack.Keypair{Name: "other", PublicKey: "ssh-ed25519 AAAAother"})
			},
			want: []string{"keypair.deploy=laptop"}},
		{name: "a keypair named acco-* is some environment's",
			edit: func(o *Observed) {
				o.Keypairs = append(o.Keypairs, openstack.Keypair{Name: "acco-prod-deploy", PublicKey: adoptKey})
			}},
		{name: "a cluster of the YAML's offer; not one being deleted nor another flavor",
			edit: func(o *Observed) {
				o.Clusters = append(o.Clusters, uiCluster("c1", "ui-pg", "db1-4", ovhdb.StatusReady), uiCluster("c2", "old", "db1-4", ovhdb.StatusDeleting), uiCluster("c3", "big", "db1-15", ovhdb.StatusReady))
			},
			want:    []string{"database.main=c1"},
			differs: map[string][]string{"database.main=c1": {`description "ui-pg" (YAML: "acco-test-main")`}}},
		{name: "another environment's cluster (acco-*) is not one",
			edit: func(o *Observed) {
				o.Clusters = append(o.Clusters, uiCluster("c1", "acco-prod-main", "db1-4", ovhdb.StatusReady))
			}},
		{name: "a destroy plan offers nothing",
			edit:    func(o *Observed) { o.Servers = append(o.Servers, uiServer("s1", "ui-app", "fl-d24")) },
			destroy: true},
	}
	env := adoptEnv(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := adoptObserved()
			tt.edit(o)
			st := state.New("test", "")
			for _, r := range tt.state {
				st.SetResource(r)
			}
			plan, err := PlanChanges(Inputs{Env: env, PublicKeys: map[string]string{"deploy": adoptKey}, State: st, Observed: o}, PlanOptions{Destroy: tt.destroy})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range plan.Adoptable {
				key := a.Address + "=" + a.ID
				got = append(got, key)
				if !strings.HasPrefix(a.Command, "acco import test "+a.Address+" "+a.ID) {
					t.Errorf("%s: command %q", key, a.Command)
				}
				for _, want := range tt.differs[key] {
					if !slices.ContainsFunc(a.Differs, func(d string) bool { return strings.Contains(d, want) }) {
						t.Errorf("%s: differs %q lacks %q", key, a.Differs, want)
					}
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("adoptable %v, want %v", got, tt.want)
			}
			// Listed, not adopted: the plan still creates them.
			for _, a := range plan.Adoptable {
				if c := plan.Change(a.Address); c == nil || c.Action != Create {
					t.Errorf("%s: the plan's change is %+v, not a create", a.Address, c)
				}
			}
		})
	}
}

// TestImportResource checks what acco import records, and what it refuses
// with a message that says what to do.
func TestImportResource(t *testing.T) {
	env := adoptEnv(t)
	project := func() *Observed {
		o := adoptObserved()
		o.Servers = append(o.Servers, uiServer("s1", "ui-app", "fl-d24"))
		other := uiServer("s2", "acco-prod-app", "fl-d24")
		other.Metadata = map[string]string{MetaEnv: "prod", MetaName: "app"}
		o.Servers = append(o.Servers, other)
		o.SecurityGroups = append(o.SecurityGroups, uiGroup("g1", "web"), uiGroup("g2", "acco-prod-app", "acco", "acco-env=prod"))
		o.Keypairs = append(o.Keypairs, openstack.Keypair{Name: "laptop", PublicKey: adoptKey}, openstack.Keypair{Name: "acco-prod-deploy", PublicKey: adoptKey})
		o.Clusters = append(o.Clusters, uiCluster("c1", "ui-pg", "db1-4", ovhdb.StatusReady))
		o.Users["c1"] = []ovhdb.User{{ID: "u1", Username: "emqx", Status: "READY"}, {ID: "u2", Username: "avnadmin", Status: "READY"}}
		o.Databases["c1"] = []ovhdb.Database{{ID: "d1", Name: "acco"}, {ID: "d0", Name: "defaultdb", Default: true}}
		return o
	}
	managed := state.New("test", "")
	managed.SetResource(state.Resource{Address: "instance.app", Kind: spec.KindInstance, ID: "s9"})
	managed.SetResource(state.Resource{Address: "security_group.app", Kind: spec.KindSecurityGroup, ID: "g1"})
	tests := []struct {
		name, addr, id string
		st             *state.State
		err            string // substring; "" succeeds
		recorded       []string
		unknownUsers   []string
		check          func(t *testing.T, rs []state.Resource)
	}{
		{name: "server", addr: "instance.app", id: "s1", recorded: []string{"instance.app"},
			check: func(t *testing.T, rs []state.Resource) {
				a := rs[0].Attributes
				if a["name"] != "ui-app" || a["keypair"] != "laptop" || a["ipv4"] != "198.51.100.7" || a["flavor_id"] != "fl-d24" {
					t.Errorf("attributes as observed: %v", a)
				}
				if !slices.Contains(rs[0].DependsOn, "keypair.deploy") {
					t.Errorf("depends on %v", rs[0].DependsOn)
				}
			}},
		{name: "security group", addr: "security_group.app", id: "g1", recorded: []string{"security_group.app"}},
		{name: "keypair by its name", addr: "keypair.deploy", id: "laptop", recorded: []string{"keypair.deploy"}},
		{name: "cluster with its databases; users with unknown passwords are named", addr: "database.main", id: "c1",
			recorded: []string{"database.main", "database_db.main.acco"}, unknownUsers: []string{"emqx"},
			check: func(t *testing.T, rs []state.Resource) {
				if rs[0].Attributes["description"] != "ui-pg" || rs[1].ID != "d1" {
					t.Errorf("recorded %+v", rs)
				}
			}},
		{name: "a user is not imported alone", addr: "database_user.main.emqx", id: "u1", err: "acco import takes keypair.NAME"},
		{name: "an undeclared address", addr: "instance.nope", id: "s1", err: "environment test declares no such resource"},
		{name: "an address in state", addr: "instance.app", id: "s1", st: managed, err: "already in the state of test (id s9)"},
		{name: "an ID managed at another address", addr: "security_group.app", id: "g1", st: func() *state.State {
			st := state.New("test", "")
			st.SetResource(state.Resource{Address: "security_group.old", Kind: spec.KindSecurityGroup, ID: "g1"})
			return st
		}(), err: "already managed as security_group.old"},
		{name: "an unknown ID", addr: "instance.app", id: "nope", err: "the project has no server nope; acco plan test lists"},
		{name: "an ID of another kind", addr: "instance.app", id: "g1", err: "g1 is a security group (security_group.NAME), not a server"},
		{name: "another environment's server", addr: "instance.app", id: "s2", err: "carries acco's metadata of environment prod"},
		{name: "another environment's group", addr: "security_group.app", id: "g2", err: "tagged for acco environment prod"},
		{name: "another environment's keypair", addr: "keypair.deploy", id: "acco-prod-deploy", err: "as acco names what it makes"},
		{name: "the default group", addr: "security_group.app", id: "sg-default", err: "default security group"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			imp, err := ImportResource(Inputs{Env: env, PublicKeys: map[string]string{"deploy": adoptKey}, State: tt.st, Observed: project()}, tt.addr, tt.id)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				if !errors.Is(err, ErrImport) {
					t.Errorf("error %v is not ErrImport", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range imp.Resources {
				got = append(got, r.Address)
				if r.ID == "" || r.Attributes["password"] != nil {
					t.Errorf("%s recorded as %+v", r.Address, r)
				}
			}
			if !slices.Equal(got, tt.recorded) || !slices.Equal(imp.UnknownUsers, tt.unknownUsers) {
				t.Errorf("recorded %v unknown users %v, want %v %v", got, imp.UnknownUsers, tt.recorded, tt.unknownUsers)
			}
			if tt.check != nil {
				tt.check(t, imp.Resources)
			}
		})
	}
}

// TestPlanAfterImport plans once a keypair, a group, a server and a
// cluster made outside acco are imported: only the differences, as
// ordinary changes; the server and group renamed to acco's names, the
// keypair kept under its own, the user with an unknown password left alone.
func TestPlanAfterImport(t *testing.T) {
	env := adoptEnv(t)
	o := adoptObserved()
	o.Servers = append(o.Servers, uiServer("s1", "ui-app", "fl-d24"))
	o.SecurityGroups = append(o.SecurityGroups, uiGroup("g1", "web"))
	o.Keypairs = append(o.Keypairs, openstack.Keypair{Name: "laptop", PublicKey: adoptKey})
	o.Clusters = append(o.Clusters, uiCluster("c1", "ui-pg", "db1-4", ovhdb.StatusReady))
	o.Users["c1"] = []ovhdb.User{{ID: "u1", Username: "emqx", Status: "READY"}}
	o.Databases["c1"] = []ovhdb.Database{{ID: "d1", Name: "acco"}}
	st := state.New("test", "")
	for _, x := range [][2]string{{"keypair.deploy", "laptop"}, {"security_group.app", "g1"}, {"instance.app", "s1"}, {"database.main", "c1"}} {
		in := Inputs{Env: env, PublicKeys: map[string]string{"deploy": adoptKey}, State: st, Observed: o}
		imp, err := ImportResource(in, x[0], x[1])
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range imp.Resources {
			st.SetResource(r)
		}
	}
	plan, err := PlanChanges(Inputs{Env: env, PublicKeys: map[string]string{"deploy": adoptKey}, State: st, Observed: o}, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Adoptable) != 0 {
		t.Errorf("adoptable after the imports: %+v", plan.Adoptable)
	}
	want := map[string]Action{"keypair.deploy": NoOp, "security_group.app": Update, "instance.app": Update, "database.main": Update,
		"database_db.main.acco": NoOp, "database_db.main.powersync_storage": Create, "database_user.main.emqx": NoOp,
		"database_user.main.backend": Create, "database_user.main.powersync": Create}
	for _, c := range plan.Changes {
		if want[c.Address] != c.Action {
			t.Errorf("%s: %s (%s), want %s", c.Address, c.Action, c.Reason, want[c.Address])
		}
	}
	checks := []struct{ addr, key, want string }{
		{"instance.app", "name", "acco-test-app"},
		{"instance.app", "keypair", "laptop"},
		{"security_group.app", "name", "acco-test-app"},
		{"database.main", "description", "acco-test-main"},
	}
	for _, ck := range checks {
		if c := plan.Change(ck.addr); c == nil || attrString(c.After, ck.key) != ck.want {
			t.Errorf("%s.%s: want %q in %+v", ck.addr, ck.key, ck.want, c)
		}
	}
	if c := plan.Change("security_group.app"); c == nil || !strings.Contains(c.Reason, "rename it to acco's name") {
		t.Errorf("security_group.app: %+v", c)
	}
	if !slices.ContainsFunc(plan.Drift, func(d Drift) bool {
		return d.Address == "database_user.main.emqx" && strings.Contains(d.Message, "--reset-unknown-users")
	}) {
		t.Errorf("drift %+v does not say the user's password is to be reset on request", plan.Drift)
	}
}
