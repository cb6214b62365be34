package spec

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// withInstances is minimalEnv with more instances entries (indented by two
// spaces) after app, whose first line is line 7 of test.yaml, and with
// allowFrom, when set, as the main database's allow_from.
func withInstances(entries, allowFrom string) string {
	env := strings.Replace(minimalEnv, "    flavor: d2-4\n", "    flavor: d2-4\n"+entries, 1)
	if allowFrom != "" {
		env = strings.Replace(env, "    nodes: 1\n", "    nodes: 1\n    allow_from: "+allowFrom+"\n", 1)
	}
	return env
}

// workers is an instances entry named worker with the given count line
// (line 8 when placed by withInstances).
func workers(count string) string {
	return "  worker:\n" +
		"    " + count + "\n" +
		"    flavor: b3-8\n" +
		"    image: Debian 12\n" +
		"    keypair: deploy\n" +
		"    security_groups: [app]\n"
}

func TestCountExpands(t *testing.T) {
	tests := []struct {
		name      string
		env       string
		instances []string // the instance names after Load
		allowFrom []string // databases.main.allow_from after Load; nil: [instance.app]
	}{
		{name: "no count", env: withInstances(workers("ssh_user: debian"), ""),
			instances: []string{"app", "worker"}},
		{name: "count 1 is no count", env: withInstances(workers("count: 1"), ""),
			instances: []string{"app", "worker"}},
		{name: "count 3", env: withInstances(workers("count: 3"), ""),
			instances: []string{"app", "worker-1", "worker-2", "worker-3"}},
		{name: "count 12 sorts as names", env: withInstances(workers("count: 12"), ""),
			instances: []string{"app", "worker-1", "worker-10", "worker-11", "worker-12", "worker-2", "worker-3", "worker-4", "worker-5", "worker-6", "worker-7", "worker-8", "worker-9"}},
		{name: "count 100", env: withInstances(workers("count: 100"), ""),
			instances: append([]string{"app"}, sortedNames("worker", 100)...)},
		{name: "a name ending in a digit", env: withInstances(strings.Replace(workers("count: 2"), "worker:", "w2:", 1), ""),
			instances: []string{"app", "w2-1", "w2-2"}},
		{name: "allow_from a counted entry admits its members", env: withInstances(workers("count: 2"), "[instance.app, instance.worker, 192.0.2.0/24]"),
			instances: []string{"app", "worker-1", "worker-2"},
			allowFrom: []string{"instance.app", "instance.worker-1", "instance.worker-2", "192.0.2.0/24"}},
		{name: "allow_from one member", env: withInstances(workers("count: 2"), "[instance.app, instance.worker-2]"),
			instances: []string{"app", "worker-1", "worker-2"},
			allowFrom: []string{"instance.app", "instance.worker-2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := loadString(t, tt.env, nil)
			if got := sortedKeys(e.Instances); !slices.Equal(got, tt.instances) {
				t.Fatalf("instances = %v, want %v", got, tt.instances)
			}
			for name, in := range e.Instances {
				if in.Count != 0 {
					t.Errorf("instances.%s.count = %d after Load, want 0", name, in.Count)
				}
				if name == "app" {
					continue
				}
				want := Instance{Flavor: "b3-8", Image: "Debian 12", Network: DefaultNetwork, Keypair: "deploy", SecurityGroups: []string{"app"}, SSHUser: DefaultSSHUser}
				if in.Flavor != want.Flavor || in.Image != want.Image || in.Network != want.Network || in.Keypair != want.Keypair ||
					!slices.Equal(in.SecurityGroups, want.SecurityGroups) || in.SSHUser != want.SSHUser {
					t.Errorf("instances.%s = %+v, want %+v", name, *in, want)
				}
			}
			want := tt.allowFrom
			if want == nil {
				want = []string{"instance.app"}
			}
			if got := e.Databases["main"].AllowFrom; !slices.Equal(got, want) {
				t.Errorf("allow_from = %v, want %v", got, want)
			}
			if err := e.Validate(); err != nil {
				t.Errorf("Validate after Load: %v", err)
			}
		})
	}
}

func sortedNames(prefix string, n int) []string {
	out := MemberNames(prefix, n)
	slices.Sort(out)
	return out
}

// TestCountMembersShareTheEntry checks that members are copies (changing one
// leaves the others) that keep the positions of the entry they come from.
func TestCountMembersShareTheEntry(t *testing.T) {
	e := loadString(t, withInstances(workers("count: 3"), "[instance.app, instance.worker]"), nil)
	e.Instances["worker-1"].SecurityGroups[0] = "changed"
	if got := e.Instances["worker-2"].SecurityGroups[0]; got != "app" {
		t.Errorf("worker-2's security group = %q after changing worker-1's; members must not share lists", got)
	}
	for _, path := range []string{"instances.worker-1.flavor", "instances.worker-3.flavor"} {
		if f, l, c := e.Position(path); !strings.HasSuffix(f, "test.yaml") || l != 9 || c != 13 {
			t.Errorf("Position(%s) = %s:%d:%d, want test.yaml:9:13 (the entry's flavor)", path, f, l, c)
		}
	}
	// allow_from[1] and [2] come from the YAML's [1]; [3] from its [1] too.
	_, l0, c0 := e.Position("databases.main.allow_from[0]")
	_, l1, c1 := e.Position("databases.main.allow_from[1]")
	_, l3, c3 := e.Position("databases.main.allow_from[3]")
	if l0 == 0 || l1 != l0 || c1 <= c0 || l3 != l1 || c3 != c1 {
		t.Errorf("allow_from positions [0] %d:%d, [1] %d:%d, [3] %d:%d: want [1] and [3] at instance.worker", l0, c0, l1, c1, l3, c3)
	}
	if got := e.Addresses(); !slices.Contains(got, "instance.worker-3") || slices.Contains(got, "instance.worker") {
		t.Errorf("Addresses() = %v, want instance.worker-1..3 and no instance.worker", got)
	}
}

func TestCountErrors(t *testing.T) {
	const f = "environments/test.yaml"
	long := strings.Repeat("w", 30)
	tests := []struct {
		name string
		env  string
		want string // the whole error
	}{
		{"count 0", withInstances(workers("count: 0"), ""),
			f + ":8:12: instances.worker.count: count 0 is out of range: write 1 to 100 alike instances (or leave count out for one)"},
		{"count negative", withInstances(workers("count: -2"), ""),
			f + ":8:12: instances.worker.count: count -2 is out of range: write 1 to 100 alike instances (or leave count out for one)"},
		{"count 101", withInstances(workers("count: 101"), ""),
			f + ":8:12: instances.worker.count: count 101 is out of range: write 1 to 100 alike instances (or leave count out for one)"},
		{"count a string", withInstances(workers(`count: "3"`), ""),
			f + `:8:12: instances.worker.count: expected a whole number, got "3"`},
		{"count a list", withInstances(workers(`count: [3]`), ""),
			f + `:8:12: instances.worker.count: expected a whole number, got a list`},
		{"member names too long", withInstances(strings.Replace(workers("count: 10"), "worker:", long+":", 1), ""),
			fmt.Sprintf("%s:7:3: instances.%s: with count: 10 the last instance is named %q, longer than 32 characters: shorten the name to at most 29 characters", f, long, long+"-10")},
		{"a member declared on its own", withInstances(workers("count: 3")+strings.Replace(workers("ssh_user: debian"), "worker:", "worker-2:", 1), ""),
			f + ":8:12: instances.worker.count: count: 3 names the instances worker-1 to worker-3, and worker-2 is declared too: rename one of the two entries"},
		{"a counted entry named like a member", withInstances(workers("count: 3")+strings.Replace(workers("count: 2"), "worker:", "worker-1:", 1), ""),
			f + ":8:12: instances.worker.count: count: 3 names the instances worker-1 to worker-3, and worker-1 is declared too: rename one of the two entries"},
		{"services host counted", strings.Replace(withInstances(workers("count: 2"), ""), "services:\n", "services:\n  host: worker\n", 1),
			f + ":19:9: services.host: instances.worker declares 2 alike instances (count: 2), but the services run on one instance: declare the services host as an instance of its own, without count"},
		{"services host a member", strings.Replace(withInstances(workers("count: 2"), ""), "services:\n", "services:\n  host: worker-2\n", 1),
			f + ":19:9: services.host: worker-2 is one of the 2 alike instances of instances.worker (count: 2); the services run on an instance declared on its own: declare it without count"},
		{"allow_from a member beyond count", withInstances(workers("count: 2"), "[instance.app, instance.worker-3]"),
			f + ":18:32: databases.main.allow_from[1]: no instance \"worker-3\"; did you mean worker-1?"},
		{"a bad value is reported once, on the entry", withInstances(strings.Replace(workers("count: 50"), "b3-8", "big", 1), ""),
			f + `:9:13: instances.worker.flavor: "big" is not a flavor name such as d2-4 or b3-8`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(shippedFS(t, map[string]string{"test.yaml": tt.env}), "environments", "test", noEnv)
			if err == nil {
				t.Fatalf("load succeeded; want %s", tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestMemberNames(t *testing.T) {
	tests := []struct {
		count int
		want  []string
	}{
		{0, []string{"w"}},
		{1, []string{"w"}},
		{2, []string{"w-1", "w-2"}},
	}
	for _, tt := range tests {
		if got := MemberNames("w", tt.count); !slices.Equal(got, tt.want) {
			t.Errorf("MemberNames(w, %d) = %v, want %v", tt.count, got, tt.want)
		}
	}
}

// TestCountBuiltInCode validates an Environment built in code, whose counts
// Load has not expanded: the same rules hold.
func TestCountBuiltInCode(t *testing.T) {
	e := builtEnv(t)
	e.Instances["worker"] = &Instance{Count: 3, Flavor: "b3-8", Image: "Debian 12", Network: DefaultNetwork, Keypair: "deploy", SecurityGroups: []string{"app"}, SSHUser: DefaultSSHUser}
	e.Databases["main"].AllowFrom = append(e.Databases["main"].AllowFrom, "instance.worker")
	if err := e.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	e.Instances["worker"].Count = MaxCount + 1
	if err := e.Validate(); err == nil || !strings.HasPrefix(err.Error(), "instances.worker.count: count 101 is out of range") {
		t.Errorf("Validate with count 101 = %v", err)
	}
}
