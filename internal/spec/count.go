package spec

import (
	"maps"
	"slices"
	"strconv"
	"strings"
)

// MaxCount is the largest count an instances entry may declare.
const MaxCount = 100

// counted reports whether an instances entry stands for several alike
// instances (count above 1).
func counted(in *Instance) bool { return in != nil && in.Count > 1 }

// MemberNames returns the names of the instances an instances entry named
// name declares: name itself without count (or with count: 1), else name-1
// to name-N for count: N. Load expands the entry into these instances.
func MemberNames(name string, count int) []string {
	if count <= 1 {
		return []string{name}
	}
	out := make([]string, count)
	for i := range count {
		out[i] = name + "-" + strconv.Itoa(i+1)
	}
	return out
}

// instanceNames returns every instance name the environment declares once
// counts are expanded, sorted, and the counted entry each member comes from
// (members of entries without count are absent from owner).
func (e *Environment) instanceNames() (names []string, owner map[string]string) {
	owner = map[string]string{}
	for name, in := range e.Instances {
		if !counted(in) {
			names = append(names, name)
			continue
		}
		for _, m := range MemberNames(name, in.Count) {
			names = append(names, m)
			owner[m] = name
		}
	}
	slices.Sort(names)
	return slices.Compact(names), owner
}

// instanceRefs are the names that instance.NAME may refer to in allow_from:
// every instance, and every counted entry (which stands for all of its
// members).
func (v *validator) instanceRefs() []string {
	names, _ := v.e.instanceNames()
	for name, in := range v.e.Instances {
		if counted(in) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// count checks the count of the instances entry at p and that the names of
// its members fit the naming rule and collide with no other instance.
func (v *validator) count(p, name string, in *Instance) {
	cp := p + ".count"
	if v.pos.has(cp) || in.Count != 0 {
		if in.Count < 1 || in.Count > MaxCount {
			v.add(cp, "count %d is out of range: write 1 to %d alike instances (or leave count out for one)", in.Count, MaxCount)
			return
		}
	}
	if !counted(in) || !validResourceName(name) {
		return
	}
	members := MemberNames(name, in.Count)
	if last := members[len(members)-1]; !validResourceName(last) {
		v.addKey(p, "with count: %d the last instance is named %q, longer than 32 characters: shorten the name to at most %d characters", in.Count, last, 32-len(last)+len(name))
		return
	}
	// Members of two counted entries cannot clash (a member's name is its
	// entry's name, a dash and a number), but an entry may be named like a
	// member, and instance.NAME would then mean two things.
	for _, m := range members {
		if _, ok := v.e.Instances[m]; ok {
			v.add(cp, "count: %d names the instances %s-1 to %s-%d, and %s is declared too: rename one of the two entries", in.Count, name, name, in.Count, m)
			return
		}
	}
}

// servicesHost refuses a services host that is several instances, or one of
// several alike instances: the services run on one instance, declared on its
// own. It reports whether the host passed.
func (v *validator) servicesHost(host string) bool {
	if in := v.e.Instances[host]; counted(in) {
		v.add("services.host", "instances.%s declares %d alike instances (count: %d), but the services run on one instance: declare the services host as an instance of its own, without count", host, in.Count, in.Count)
		return false
	}
	if _, owner := v.e.instanceNames(); owner[host] != "" {
		o := owner[host]
		v.add("services.host", "%s is one of the %d alike instances of instances.%s (count: %d); the services run on an instance declared on its own: declare it without count", host, v.e.Instances[o].Count, o, v.e.Instances[o].Count)
		return false
	}
	return true
}

// expandCounts replaces every counted instances entry with its members, each
// a copy of the entry, and every instance.NAME of such an entry in a
// database's allow_from with instance.NAME-1 to instance.NAME-N. The members'
// keys and values keep the positions of the entry, so problems found later
// point at the entry. Every instance has Count 0 afterwards. It expects a
// valid environment.
func (e *Environment) expandCounts() {
	groups := map[string]int{}
	out := make(map[string]*Instance, len(e.Instances))
	for _, name := range sortedKeys(e.Instances) {
		in := e.Instances[name]
		if !counted(in) {
			if in != nil && in.Count != 0 {
				in.Count = 0 // count: 1 is no count
				e.pos.forget(joinPath("instances", name) + ".count")
			}
			out[name] = in
			continue
		}
		groups[name] = in.Count
		for _, m := range MemberNames(name, in.Count) {
			c := *in
			c.Count = 0
			c.SecurityGroups = slices.Clone(in.SecurityGroups)
			out[m] = &c
			e.pos.alias(joinPath("instances", name), joinPath("instances", m))
		}
	}
	e.Instances = out
	if len(groups) == 0 {
		return
	}
	for _, dbName := range sortedKeys(e.Databases) {
		db := e.Databases[dbName]
		if db == nil {
			continue
		}
		ap := joinPath("databases", dbName) + ".allow_from"
		var out []string
		var from []int // the index in the YAML of each entry of out
		for i, a := range db.AllowFrom {
			name, ok := strings.CutPrefix(a, KindInstance+".")
			if n := groups[name]; ok && n > 0 {
				for _, m := range MemberNames(name, n) {
					out = append(out, Address(KindInstance, m))
					from = append(from, i)
				}
				continue
			}
			out = append(out, a)
			from = append(from, i)
		}
		if len(out) == len(db.AllowFrom) {
			continue
		}
		e.pos.reindex(ap, from)
		db.AllowFrom = out
	}
}

// alias gives the paths under to (to itself included) the positions of the
// same paths under from, but for the count, which members do not have.
func (p *positions) alias(from, to string) {
	if p == nil {
		return
	}
	for _, m := range []map[string]position{p.value, p.key} {
		add := map[string]position{}
		for path, pos := range m {
			if rest, ok := strings.CutPrefix(path, from); ok && rest != ".count" && (rest == "" || rest[0] == '.' || rest[0] == '[') {
				add[to+rest] = pos
			}
		}
		maps.Copy(m, add)
	}
}

// forget drops the positions of path (not of the paths under it).
func (p *positions) forget(path string) {
	if p != nil {
		delete(p.value, path)
		delete(p.key, path)
	}
}

// reindex renumbers the positions of the items of the list at path: item k
// takes the positions item from[k] had.
func (p *positions) reindex(path string, from []int) {
	if p == nil {
		return
	}
	for _, m := range []map[string]position{p.value, p.key} {
		old := map[int]position{}
		for i := 0; ; i++ {
			pos, ok := m[indexPath(path, i)]
			if !ok {
				break
			}
			old[i] = pos
			delete(m, indexPath(path, i))
		}
		for k, i := range from {
			if pos, ok := old[i]; ok {
				m[indexPath(path, k)] = pos
			}
		}
	}
}
