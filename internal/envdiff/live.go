package envdiff

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/accoreboot/acco/configure"
	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/provision"
	"github.com/accoreboot/acco/provision/openstack"
	"github.com/accoreboot/acco/provision/ovhdb"
	"github.com/accoreboot/acco/state"
)

// NotDeployed is the value of an environment's deployed key when it has no
// state, or a state that holds nothing.
const NotDeployed = "not deployed"

// Missing is the live status of a resource recorded in state that the cloud
// does not have.
const Missing = "missing (in state, not in the cloud)"

// Live is what is deployed in one environment: facts read from its state
// and from a refresh of its cloud, by group (instances.app,
// databases.main) and key path (instances.app.flavor). It holds no secret.
type Live struct {
	// Deployed is false when the environment has no state, or a state that
	// records no resource.
	Deployed bool `json:"deployed"`
	// Serial is the serial of the state read (0 without state).
	Serial uint64 `json:"serial"`
	// Facts are the live values by group, then by key path.
	Facts map[string]map[string]string `json:"-"`
}

// Deployed describes what is deployed in an environment from its state st
// (nil when it has none) and what Observe saw in its cloud (nil when st is
// nil: an environment without state is not looked at).
//
// For each instance in state: the flavor and image (name and ID) of the
// server actually running and its status; whether configure reached it
// since it was created (its host keys are pinned in state) and the
// restarts configure still owes on it. For each database in state: the
// engine, version, plan, flavor, node count and status of the live
// cluster, its users and logical databases by name; an on-demand database
// stopped by acco db stop is "stopped (on demand)". A resource recorded in
// state that the cloud does not have is Missing.
func Deployed(st *state.State, obs *provision.Observed) *Live {
	l := &Live{Facts: map[string]map[string]string{}}
	if st == nil {
		return l
	}
	l.Serial = st.Serial
	l.Deployed = len(st.Resources) > 0 || len(st.OnDemand) > 0
	if obs == nil {
		obs = &provision.Observed{}
	}
	servers := map[string]openstack.Server{}
	for _, s := range obs.Servers {
		servers[s.ID] = s
	}
	clusters := map[string]ovhdb.Cluster{}
	for _, c := range obs.Clusters {
		if c.Status != ovhdb.StatusDeleting {
			clusters[c.ID] = c
		}
	}
	for _, r := range st.Resources {
		switch r.Kind {
		case spec.KindInstance:
			name := strings.TrimPrefix(r.Address, spec.KindInstance+".")
			l.instance(name, r, servers, obs, st)
		case spec.KindDatabase:
			name := strings.TrimPrefix(r.Address, spec.KindDatabase+".")
			l.database(name, r, clusters, obs)
		}
	}
	for name, a := range st.OnDemand {
		if _, ok := st.Resource(spec.Address(spec.KindDatabase, name)); ok && a.Status == state.ArchiveStarting {
			continue // being restored: what the cloud has is shown
		}
		l.set("databases."+name, "status", a.Status+" (on demand)")
	}
	return l
}

// set records a fact of group under the key path group.key.
func (l *Live) set(group, key, value string) {
	g := l.Facts[group]
	if g == nil {
		g = map[string]string{}
		l.Facts[group] = g
	}
	g[group+"."+key] = value
}

func (l *Live) instance(name string, r state.Resource, servers map[string]openstack.Server, obs *provision.Observed, st *state.State) {
	group := "instances." + name
	if _, pinned := st.Hosts[name]; pinned {
		l.set(group, "configured", "yes")
	} else {
		l.set(group, "configured", "no")
	}
	var owed []string
	prefix := configure.Address(name, configure.KindUnit, "")
	for _, p := range st.Pending {
		if u, ok := strings.CutPrefix(p.Address, prefix); ok && p.Action == configure.ActionRestart {
			owed = append(owed, u)
		}
	}
	if len(owed) > 0 {
		slices.Sort(owed)
		l.set(group, "restarts_owed", "["+strings.Join(slices.Compact(owed), ", ")+"]")
	}
	s, ok := servers[r.ID]
	if !ok || r.ID == "" {
		l.set(group, "status", Missing)
		return
	}
	status := s.Status
	if r.Status == state.StatusTainted {
		status += " (tainted)"
	}
	l.set(group, "status", status)
	flavor := s.FlavorID
	for _, f := range obs.Flavors {
		if f.ID == s.FlavorID {
			flavor = f.Name
		}
	}
	image := "(unknown image)"
	for _, i := range obs.Images {
		if i.ID == s.ImageID {
			image = i.Name
		}
	}
	l.set(group, "flavor", flavor)
	l.set(group, "image", image)
	l.set(group, "image_id", s.ImageID)
}

func (l *Live) database(name string, r state.Resource, clusters map[string]ovhdb.Cluster, obs *provision.Observed) {
	group := "databases." + name
	c, ok := clusters[r.ID]
	if !ok || r.ID == "" {
		l.set(group, "status", Missing)
		return
	}
	nodes := c.NodeNumber
	if nodes == 0 {
		nodes = len(c.Nodes)
	}
	l.set(group, "status", c.Status)
	l.set(group, "engine", c.Engine)
	l.set(group, "version", c.Version)
	l.set(group, "plan", c.Plan)
	l.set(group, "flavor", c.Flavor)
	l.set(group, "nodes", strconv.Itoa(nodes))
	if users, ok := obs.Users[c.ID]; ok {
		names := make([]string, 0, len(users))
		for _, u := range users {
			names = append(names, u.Username)
		}
		slices.Sort(names)
		l.set(group, "users", "["+strings.Join(names, ", ")+"]")
	}
	if dbs, ok := obs.Databases[c.ID]; ok {
		names := make([]string, 0, len(dbs))
		for _, d := range dbs {
			names = append(names, d.Name)
		}
		slices.Sort(names)
		l.set(group, "databases", "["+strings.Join(names, ", ")+"]")
	}
}

// LiveStatus says, in a Result compared with CompareLive, whether each
// environment is deployed and which state serial was read.
type LiveStatus struct {
	Env1 *Live `json:"env1"`
	Env2 *Live `json:"env2"`
}

// deployedKey is the key of the difference between a deployed environment
// and one that is not.
const deployedKey = "deployed"

// CompareLive adds to r (the comparison of the environments' YAML) the
// differences between what is deployed in each: l1 and l2 as Deployed
// returns them. Live differences are marked Live; they join the group of
// their resource. When one environment is deployed and the other is not,
// that is the one difference (deployed, in the environment group). r.Equal
// is updated.
func (r *Result) CompareLive(l1, l2 *Live) {
	r.Live = &LiveStatus{Env1: l1, Env2: l2}
	byGroup := map[string]int{}
	for i, g := range r.Groups {
		byGroup[g.Resource] = i
	}
	add := func(group string, d Difference) {
		d.Live = true
		i, ok := byGroup[group]
		if !ok {
			i = len(r.Groups)
			byGroup[group] = i
			r.Groups = append(r.Groups, Group{Resource: group})
		}
		r.Groups[i].Differences = append(r.Groups[i].Differences, d)
	}
	switch {
	case l1.Deployed != l2.Deployed:
		add(IdentityGroup, Difference{Key: deployedKey, Env1: ptr(deployedText(l1)), Env2: ptr(deployedText(l2))})
	case l1.Deployed:
		groups := map[string]bool{}
		for g := range l1.Facts {
			groups[g] = true
		}
		for g := range l2.Facts {
			groups[g] = true
		}
		for _, g := range sortedPaths(groups) {
			f1, f2 := l1.Facts[g], l2.Facts[g]
			keys := map[string]bool{}
			for k := range f1 {
				keys[k] = true
			}
			for k := range f2 {
				keys[k] = true
			}
			for _, k := range sortedPaths(keys) {
				a, inA := f1[k]
				b, inB := f2[k]
				if inA == inB && a == b {
					continue
				}
				d := Difference{Key: k}
				if inA {
					d.Env1 = ptr(a)
				}
				if inB {
					d.Env2 = ptr(b)
				}
				add(g, d)
			}
		}
	}
	r.sortGroups()
	r.Equal = len(r.Groups) == 0
}

func deployedText(l *Live) string {
	if !l.Deployed {
		return NotDeployed
	}
	return "yes"
}

func ptr(s string) *string { return &s }

func sortedPaths(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b string) int {
		switch {
		case lessPath(a, b):
			return -1
		case lessPath(b, a):
			return 1
		}
		return 0
	})
	return out
}

// liveSummary says in one line where each environment's live facts come
// from.
func (r *Result) liveSummary() string {
	side := func(name string, l *Live) string {
		if !l.Deployed {
			return name + " " + NotDeployed
		}
		return fmt.Sprintf("%s from state serial %d", name, l.Serial)
	}
	s := "live: " + side(r.Env1, r.Live.Env1) + ", " + side(r.Env2, r.Live.Env2)
	if r.Live.Env1.Deployed || r.Live.Env2.Deployed {
		s += ", and a refresh of the cloud"
	}
	return s
}
