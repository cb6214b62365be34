package provision

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/provision/openstack"
	"github.com/accoreboot/acco/provision/ovhdb"
	"github.com/accoreboot/acco/state"
)

// Adoptable is a resource of the environment's project that acco does not
// manage and that could be what the YAML declares at Address: a server, a
// security group, a keypair or a PostgreSQL cluster made in the OVH control
// panel (or with another tool). A plan only lists it: nothing is adopted
// until the operator runs Command (acco import).
type Adoptable struct {
	// Address is the YAML's resource it could be (it has no resource yet:
	// the plan creates one).
	Address string `json:"address"`
	// Kind is the address's kind.
	Kind string `json:"kind"`
	// What is the cloud's word for it: server, security group, keypair,
	// PostgreSQL cluster.
	What string `json:"what"`
	// ID and Name are the cloud's (a keypair's ID is its name; a cluster's
	// name is its description).
	ID   string `json:"id"`
	Name string `json:"name"`
	// Matches lists the properties fixed by the YAML that it has.
	Matches []string `json:"matches"`
	// Differs says how it differs from the YAML, one property each
	// ("flavor \"d2-2\" (YAML: \"d2-4\")"); after an import, the plan shows
	// these as ordinary changes.
	Differs []string `json:"differs"`
	// Command brings it under management at Address.
	Command string `json:"command"`
}

// adoptableKinds are the kinds acco import takes, with the cloud's word.
var adoptableKinds = map[string]string{
	spec.KindKeypair:       "keypair",
	spec.KindSecurityGroup: "security group",
	spec.KindInstance:      "server",
	spec.KindDatabase:      "PostgreSQL cluster",
}

// Adoptables lists the resources of the project that acco does not manage
// and that could be what plan creates: for each create of a keypair,
// security group, instance or database, the resources of that kind that
// match it by name or by the properties the YAML fixes (a server's flavor
// and image, a cluster's version, plan, flavor and region, a group's rules,
// a keypair's public key). It leaves out what any state resource or any
// change of plan acts on (a resource acco finds by its own name is adopted
// by the plan itself), the project's "default" security group, and what
// carries acco's marks (an acco_env metadata, an acco-env tag, an acco-
// name) since another environment may own it. It does no I/O.
func Adoptables(in Inputs, plan *Plan) []Adoptable {
	if in.Observed == nil || plan == nil || plan.Destroy || plan.RefreshOnly {
		return nil
	}
	taken := map[string]bool{}
	if in.State != nil {
		for _, r := range in.State.Resources {
			taken[r.Kind+"\x00"+r.ID] = true
		}
	}
	for _, c := range plan.Changes {
		if c.ID != "" {
			taken[c.Kind+"\x00"+c.ID] = true
		}
	}
	free := func(kind, id string) bool { return !taken[kind+"\x00"+id] }
	o := in.Observed
	var out []Adoptable
	for _, c := range plan.Changes {
		if c.Action != Create {
			continue
		}
		name := strings.TrimPrefix(c.Address, c.Kind+".")
		var found []Adoptable
		switch c.Kind {
		case spec.KindInstance:
			for _, s := range o.Servers {
				if free(c.Kind, s.ID) && s.Status != "DELETED" && s.Metadata[MetaEnv] == "" {
					if a, ok := matchServer(o, s, name, c.After); ok {
						found = append(found, a)
					}
				}
			}
		case spec.KindSecurityGroup:
			for _, g := range o.SecurityGroups {
				if free(c.Kind, g.ID) && g.Name != "default" && envTag(g.Tags) == "" && !slices.Contains(g.Tags, "acco") {
					if a, ok := matchGroup(g, name, c.After); ok {
						found = append(found, a)
					}
				}
			}
		case spec.KindKeypair:
			for _, k := range o.Keypairs {
				if free(c.Kind, k.Name) && !strings.HasPrefix(k.Name, "acco-") {
					if a, ok := matchKeypair(k, name, c.After); ok {
						found = append(found, a)
					}
				}
			}
		case spec.KindDatabase:
			for _, cl := range o.Clusters {
				if free(c.Kind, cl.ID) && cl.Status != ovhdb.StatusDeleting && !strings.HasPrefix(cl.Description, "acco-") {
					if a, ok := matchCluster(cl, name, c.After); ok {
						found = append(found, a)
					}
				}
			}
		}
		for _, a := range found {
			a.Address, a.Kind, a.What = c.Address, c.Kind, adoptableKinds[c.Kind]
			a.Command = fmt.Sprintf("acco import %s %s %s", plan.Env, c.Address, a.ID)
			out = append(out, a)
		}
	}
	slices.SortStableFunc(out, func(a, b Adoptable) int {
		if d := kindRank(a.Kind) - kindRank(b.Kind); d != 0 {
			return d
		}
		if d := strings.Compare(a.Address, b.Address); d != 0 {
			return d
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// cmp records one property of a candidate: equal to the YAML's, or how it
// differs.
type cmp struct{ a *Adoptable }

// name records a name: apply renames an imported server or group to
// acco's; a keypair keeps its name (Nova cannot rename one).
func (m cmp) name(have, want string, renamed bool) {
	switch {
	case have == want:
		m.a.Matches = append(m.a.Matches, "name")
	case renamed:
		m.a.Differs = append(m.a.Differs, fmt.Sprintf("name %s (apply renames it %s once imported)", show(have), show(want)))
	default:
		m.a.Differs = append(m.a.Differs, fmt.Sprintf("name %s (acco's would be %s; an imported keypair keeps its name)", show(have), show(want)))
	}
}

func (m cmp) prop(key string, have, want any) bool {
	if equalValue(have, want) {
		m.a.Matches = append(m.a.Matches, key)
		return true
	}
	m.a.Differs = append(m.a.Differs, fmt.Sprintf("%s %s (YAML: %s)", key, show(have), show(want)))
	return false
}

// named reports whether a cloud name is acco's for the address or the
// YAML's own key.
func named(cloud, key string, after map[string]any) bool {
	return cloud == attrString(after, "name") || cloud == attrString(after, "description") || cloud == key
}

func matchServer(o *Observed, s openstack.Server, key string, after map[string]any) (Adoptable, bool) {
	a := Adoptable{ID: s.ID, Name: s.Name, Matches: []string{}, Differs: []string{}}
	m := cmp{&a}
	flavor, image := s.FlavorID, s.ImageID
	for _, f := range o.Flavors {
		if f.ID == s.FlavorID {
			flavor = f.Name
		}
	}
	for _, i := range o.Images {
		if i.ID == s.ImageID {
			image = i.Name
		}
	}
	byName := named(s.Name, key, after)
	m.name(s.Name, attrString(after, "name"), true)
	sameFlavor := m.prop("flavor", flavor, attrString(after, "flavor"))
	sameImage := m.prop("image", image, attrString(after, "image"))
	network := attrString(after, "network")
	if len(s.Addresses[network]) > 0 {
		a.Matches = append(a.Matches, "network")
	} else {
		a.Differs = append(a.Differs, fmt.Sprintf("no address on network %q", network))
	}
	m.prop("keypair", s.KeyName, attrString(after, "keypair"))
	m.prop("security_groups", slices.Compact(sortedCopy(s.SecurityGroups)), attrStrings(after, "security_groups"))
	return a, byName || (sameFlavor && sameImage)
}

func matchGroup(g openstack.SecurityGroup, key string, after map[string]any) (Adoptable, bool) {
	a := Adoptable{ID: g.ID, Name: g.Name, Matches: []string{}, Differs: []string{}}
	m := cmp{&a}
	byName := named(g.Name, key, after)
	m.name(g.Name, attrString(after, "name"), true)
	m.prop("description", g.Description, attrString(after, "description"))
	have, want := observedRules(g), attrStrings(after, "rules")
	var common, missing, extra []string
	for _, k := range want {
		if slices.Contains(have, k) {
			common = append(common, k)
		} else {
			missing = append(missing, k)
		}
	}
	for _, k := range have {
		if !slices.Contains(want, k) {
			extra = append(extra, k)
		}
	}
	if len(missing) == 0 && len(extra) == 0 {
		a.Matches = append(a.Matches, "rules")
	} else {
		if len(common) > 0 {
			a.Matches = append(a.Matches, fmt.Sprintf("%d of %d rules", len(common), len(want)))
		}
		if len(missing) > 0 {
			a.Differs = append(a.Differs, "lacks rule(s) "+strings.Join(missing, ", "))
		}
		if len(extra) > 0 {
			a.Differs = append(a.Differs, "has rule(s) the YAML does not: "+strings.Join(extra, ", "))
		}
	}
	return a, byName || len(common) > 0
}

func matchKeypair(k openstack.Keypair, key string, after map[string]any) (Adoptable, bool) {
	a := Adoptable{ID: k.Name, Name: k.Name, Matches: []string{}, Differs: []string{}}
	m := cmp{&a}
	byName := named(k.Name, key, after)
	m.name(k.Name, attrString(after, "name"), false)
	sameKey := normalizeKey(k.PublicKey) == attrString(after, "public_key")
	if sameKey {
		a.Matches = append(a.Matches, "public_key")
	} else {
		a.Differs = append(a.Differs, "another public key")
	}
	return a, byName || sameKey
}

func matchCluster(c ovhdb.Cluster, key string, after map[string]any) (Adoptable, bool) {
	a := Adoptable{ID: c.ID, Name: c.Description, Matches: []string{}, Differs: []string{}}
	m := cmp{&a}
	have := clusterAttrs(c)
	byName := named(c.Description, key, after)
	m.prop("description", c.Description, attrString(after, "description"))
	same := c.Engine == "" || c.Engine == attrString(after, "engine")
	if c.Engine != "" {
		same = m.prop("engine", c.Engine, attrString(after, "engine"))
	}
	for _, k := range []string{"version", "plan", "flavor", "region"} {
		same = m.prop(k, have[k], after[k]) && same
	}
	m.prop("nodes", have["nodes"], after["nodes"])
	if ips := attrStrings(after, "ip_restrictions"); ips != nil {
		m.prop("ip_restrictions", have["ip_restrictions"], ips)
	}
	return a, byName || same
}

// Import is what acco import records in state.
type Import struct {
	// Resources are recorded in state: the resource at the address, as
	// observed, and for a cluster the logical databases the YAML declares
	// that it already holds.
	Resources []state.Resource
	// What says what the resource is, for people ("server ui-app").
	What string
	// UnknownUsers are the database users the YAML declares that the
	// cluster already has: acco does not know their passwords, so they are
	// not recorded; apply adopts them only with --reset-unknown-users.
	UnknownUsers []string
}

// ErrImport marks a refused import: the message says why and what to do.
var ErrImport = errors.New("cannot import")

// ImportResource checks that id is a resource of addr's kind in the
// project that acco can take over at addr, and returns what to record in
// state: the resource as observed (the next plan shows how it differs from
// the YAML as ordinary changes). addr must be declared and not in state; id
// must exist, not be in state at another address, and carry no other
// environment's marks. For a database, in.Observed must hold the cluster's
// users and databases (ObserveClusters). It does no I/O.
func ImportResource(in Inputs, addr, id string) (*Import, error) {
	if in.Env == nil || in.Observed == nil {
		return nil, errors.New("importing: no environment or no observation")
	}
	env := in.Env.Name
	kind := kindOf(addr)
	hint := fmt.Sprintf("acco plan %s lists the resources that could be adopted, with their IDs", env)
	what, ok := adoptableKinds[kind]
	if !ok {
		return nil, fmt.Errorf("%w %s: acco import takes keypair.NAME, security_group.NAME, instance.NAME or database.NAME (a cluster's users and databases come with it); %s", ErrImport, addr, hint)
	}
	if !slices.Contains(in.Env.Addresses(), addr) {
		return nil, fmt.Errorf("%w %s: environment %s declares no such resource (its file: environments/%s.yaml); declare it first, then import; %s", ErrImport, addr, env, env, hint)
	}
	st := in.State
	if st == nil {
		st = &state.State{Env: env}
	}
	if r, ok := st.Resource(addr); ok {
		return nil, fmt.Errorf("%w %s: it is already in the state of %s (id %s); acco manages it", ErrImport, addr, env, r.ID)
	}
	for _, r := range st.Resources {
		if r.Kind == kind && r.ID == id {
			return nil, fmt.Errorf("%w %s %s: it is already managed as %s", ErrImport, what, id, r.Address)
		}
	}
	name, err := findForImport(in.Observed, env, kind, id)
	if err == nil && (kind == spec.KindKeypair || kind == spec.KindDatabase) && strings.HasPrefix(name, "acco-") && name != CloudName(env, strings.TrimPrefix(addr, kind+".")) {
		// Keypairs and clusters carry no tag: acco's name is the mark.
		err = fmt.Errorf("it is named %s, as acco names what it makes (acco-ENV-NAME): another environment's, most likely", name)
	}
	if err != nil {
		return nil, fmt.Errorf("%w %s %s into %s: %w; %s", ErrImport, what, id, addr, err, hint)
	}
	// Plan as if state held the resource at addr: the plan finds it by
	// its ID and describes it as observed, and finds the cluster's users
	// and databases.
	tmp := *st
	tmp.Resources = slices.Clone(st.Resources)
	tmp.SetResource(state.Resource{Address: addr, Kind: kind, ID: id})
	in2 := in
	in2.State = &tmp
	plan, err := PlanChanges(in2, PlanOptions{})
	if err != nil {
		return nil, fmt.Errorf("importing %s: planning with it: %w", addr, err)
	}
	c := plan.Change(addr)
	if c == nil || c.ID != id || c.Before == nil {
		return nil, fmt.Errorf("%w %s %s into %s: the plan does not find it there", ErrImport, what, id, addr)
	}
	imp := &Import{What: fmt.Sprintf("%s %s", what, name)}
	imp.Resources = append(imp.Resources, state.Resource{Address: addr, Kind: kind, ID: id, Attributes: withoutSensitive(c.Before), DependsOn: c.DependsOn})
	if kind == spec.KindDatabase {
		for _, ch := range plan.Changes {
			if attrString(ch.After, "cluster") != addr {
				continue
			}
			switch {
			case ch.Kind == spec.KindDatabaseDB && ch.Adopt && ch.Before != nil:
				imp.Resources = append(imp.Resources, state.Resource{Address: ch.Address, Kind: ch.Kind, ID: ch.ID, Attributes: withoutSensitive(knownFrom(ch.After, ch.Before)), DependsOn: ch.DependsOn})
			case ch.Kind == spec.KindDatabaseUser && ch.Before == nil && ch.Action == NoOp:
				imp.UnknownUsers = append(imp.UnknownUsers, attrString(ch.After, "username"))
			}
		}
	}
	return imp, nil
}

// findForImport finds id among the observed resources of kind and returns
// its name, or says what id is instead.
func findForImport(o *Observed, env, kind, id string) (string, error) {
	other := func() error {
		for _, s := range o.Servers {
			if s.ID == id {
				return fmt.Errorf("%s is a server (instance.NAME), not a %s", id, adoptableKinds[kind])
			}
		}
		for _, g := range o.SecurityGroups {
			if g.ID == id {
				return fmt.Errorf("%s is a security group (security_group.NAME), not a %s", id, adoptableKinds[kind])
			}
		}
		for _, k := range o.Keypairs {
			if k.Name == id {
				return fmt.Errorf("%s is a keypair (keypair.NAME), not a %s", id, adoptableKinds[kind])
			}
		}
		for _, c := range o.Clusters {
			if c.ID == id {
				return fmt.Errorf("%s is a PostgreSQL cluster (database.NAME), not a %s", id, adoptableKinds[kind])
			}
		}
		return fmt.Errorf("the project has no %s %s", adoptableKinds[kind], id)
	}
	switch kind {
	case spec.KindInstance:
		for _, s := range o.Servers {
			if s.ID != id || s.Status == "DELETED" {
				continue
			}
			if e := s.Metadata[MetaEnv]; e != "" && e != env {
				return "", fmt.Errorf("server %s carries acco's metadata of environment %s: it is that environment's", s.Name, e)
			}
			return s.Name, nil
		}
	case spec.KindSecurityGroup:
		for _, g := range o.SecurityGroups {
			if g.ID != id {
				continue
			}
			if e := envTag(g.Tags); e != "" && e != env {
				return "", fmt.Errorf("security group %s is tagged for acco environment %s: it is that environment's", g.Name, e)
			}
			if g.Name == "default" {
				return "", errors.New("it is the project's default security group, which OpenStack manages")
			}
			return g.Name, nil
		}
	case spec.KindKeypair:
		for _, k := range o.Keypairs {
			if k.Name == id {
				return k.Name, nil
			}
		}
	case spec.KindDatabase:
		for _, c := range o.Clusters {
			if c.ID != id {
				continue
			}
			if c.Status == ovhdb.StatusDeleting {
				return "", fmt.Errorf("cluster %s is being deleted", c.Description)
			}
			return c.Description, nil
		}
	}
	return "", other()
}
