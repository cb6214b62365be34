package envgraph_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/accoreboot/acco/internal/envgraph"
	"github.com/accoreboot/acco/internal/spec"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// load loads a shipped environment with every variable unset.
func load(t *testing.T, name string) *spec.Environment {
	t.Helper()
	env, err := spec.Load("../../environments", name, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func TestGolden(t *testing.T) {
	g := envgraph.Build(load(t, "test"))
	for _, tc := range []struct {
		file string
		got  []byte
	}{
		{"test.dot", envgraph.Dot(g)},
		{"test.mmd", envgraph.Mermaid(g)},
	} {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("testdata", tc.file)
			if *update {
				if err := os.WriteFile(path, tc.got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(tc.got, want) {
				t.Errorf("%s differs from the golden file (go test -update rewrites it):\n%s", tc.file, tc.got)
			}
		})
	}
}

// edges returns the graph's edges as "from -> to" of addresses.
func edges(g envgraph.Graph) []string {
	addr := map[string]string{}
	for _, n := range g.Nodes {
		addr[n.ID] = n.Address
	}
	var out []string
	for _, e := range g.Edges {
		out = append(out, addr[e.From]+" -> "+addr[e.To])
	}
	return out
}

func TestBuild(t *testing.T) {
	for _, tc := range []struct {
		name   string
		env    string
		modify func(*spec.Environment)
		want   []string // edges that must be there
		absent []string // edges or node addresses that must not
	}{
		{
			name: "test",
			env:  "test",
			want: []string{
				"keypair.deploy -> instance.app",
				"security_group.app -> instance.app",
				"instance.app -> database.main",
				"database.main -> database_db.main.acco",
				"database.main -> database_user.main.powersync",
				"database_user.main.emqx -> service.emqx",
				"database_user.main.powersync -> service.powersync",
				"database_user.main.backend -> service.backend",
				"instance.app -> service.emqx",
			},
			absent: []string{"service.nginx", "service.mosquitto"},
		},
		{
			name:   "mosquitto logs in to no database; no PowerSync offline",
			env:    "local",
			want:   []string{"instance.app -> service.mosquitto", "database_user.main.backend -> service.backend"},
			absent: []string{"service.emqx", "service.powersync"},
		},
		{
			name: "nginx in front of PowerSync with TLS",
			env:  "test",
			modify: func(e *spec.Environment) {
				e.Services.PowerSync.TLS = &spec.ProxyTLS{Port: 443}
			},
			want: []string{"service.powersync -> service.nginx", "instance.app -> service.nginx"},
		},
		{
			name: "a CIDR in the allow-list is no edge",
			env:  "test",
			modify: func(e *spec.Environment) {
				e.Databases["main"].AllowFrom = []string{"192.0.2.0/24"}
			},
			absent: []string{"instance.app -> database.main"},
		},
		{
			name: "no services host",
			env:  "test",
			modify: func(e *spec.Environment) {
				e.Services.Host = ""
			},
			absent: []string{"service.emqx", "service.backend"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := load(t, tc.env)
			if tc.modify != nil {
				tc.modify(env)
			}
			g := envgraph.Build(env)
			got := edges(g)
			var addrs []string
			for _, n := range g.Nodes {
				addrs = append(addrs, n.Address)
			}
			for _, a := range env.Addresses() {
				if !slices.Contains(addrs, a) {
					t.Errorf("resource %s is no node", a)
				}
			}
			for _, w := range tc.want {
				if !slices.Contains(got, w) {
					t.Errorf("edge %s missing; edges: %q", w, got)
				}
			}
			for _, a := range tc.absent {
				if slices.Contains(got, a) || slices.Contains(addrs, a) {
					t.Errorf("%s should not be in the graph", a)
				}
			}
			checkMermaid(t, envgraph.Mermaid(g), len(g.Nodes))
		})
	}
}

func TestMark(t *testing.T) {
	g := envgraph.Build(load(t, "test"))
	g.Mark(map[string]string{
		"instance.app":            envgraph.ActionReplace,
		"database.main":           envgraph.ActionUpdate,
		"keypair.deploy":          "noop",
		"database_user.main.emqx": envgraph.ActionCreate,
		"keypair.old":             envgraph.ActionDelete,
		"keypair.other":           envgraph.ActionCreate, // not in the YAML: left out
	})
	got := map[string]string{}
	for _, n := range g.Nodes {
		got[n.Address] = n.Action
	}
	want := map[string]string{
		"instance.app": "replace", "database.main": "update", "keypair.deploy": "",
		"database_user.main.emqx": "create", "keypair.old": "delete", "service.emqx": "",
	}
	for addr, act := range want {
		if a, ok := got[addr]; !ok || a != act {
			t.Errorf("%s: action %q (node %v), want %q", addr, a, ok, act)
		}
	}
	if _, ok := got["keypair.other"]; ok {
		t.Error("keypair.other, created but not in the YAML, became a node")
	}
	mmd := envgraph.Mermaid(g)
	checkMermaid(t, mmd, len(g.Nodes))
	for _, w := range []string{"  class instance_app plan_replace\n", "  class keypair_old plan_delete\n", "  classDef plan_create fill:#c8e6c9\n"} {
		if !strings.Contains(string(mmd), w) {
			t.Errorf("mermaid lacks %q:\n%s", w, mmd)
		}
	}
	dot := string(envgraph.Dot(g))
	if w := `instance_app [shape=box, label="instance.app\nd2-4, Debian 12\nplan: replace", style=filled, fillcolor="#ffcc80"];`; !strings.Contains(dot, w) {
		t.Errorf("dot lacks %s:\n%s", w, dot)
	}
}

func TestIDsAreUnique(t *testing.T) {
	env := load(t, "test")
	// database.db-main-acco maps to the ID of database_db.main.acco.
	env.Databases["db-main-acco"] = &spec.Database{}
	g := envgraph.Build(env)
	seen := map[string]bool{}
	for _, n := range g.Nodes {
		if seen[n.ID] {
			t.Errorf("ID %s twice", n.ID)
		}
		seen[n.ID] = true
	}
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// checkMermaid checks a flowchart's structure: its first line, that every
// node is declared once with a quoted label and an identifier ID, and that
// every edge joins declared nodes.
func checkMermaid(t *testing.T, text []byte, nodes int) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(string(text), "\n"), "\n")
	if lines[0] != "flowchart LR" {
		t.Fatalf("first line %q, want flowchart LR", lines[0])
	}
	declRE := regexp.MustCompile(`^(\S+?)(\[\(|\(\[|\{\{|\[)"([^"]*)"(\)\]|\]\)|\}\}|\])$`)
	edgeRE := regexp.MustCompile(`^(\S+) -->(\|[a-z]+\|)? (\S+)$`)
	declared := map[string]bool{}
	var edgeLines [][]string
	for _, l := range lines[1:] {
		l = strings.TrimSpace(l)
		switch {
		case l == "end" || strings.HasPrefix(l, "subgraph "):
		case strings.HasPrefix(l, "classDef "):
		case strings.HasPrefix(l, "class "):
			f := strings.Fields(l)
			if len(f) != 3 {
				t.Errorf("class line %q", l)
				continue
			}
			for _, id := range strings.Split(f[1], ",") {
				if !declared[id] {
					t.Errorf("class line %q names the undeclared node %s", l, id)
				}
			}
		case edgeRE.MatchString(l):
			edgeLines = append(edgeLines, edgeRE.FindStringSubmatch(l))
		case declRE.MatchString(l):
			id := declRE.FindStringSubmatch(l)[1]
			if !idRE.MatchString(id) || declared[id] {
				t.Errorf("node ID %q invalid or declared twice", id)
			}
			declared[id] = true
		default:
			t.Errorf("unexpected line %q", l)
		}
	}
	if len(declared) != nodes {
		t.Errorf("%d nodes declared, want %d", len(declared), nodes)
	}
	for _, m := range edgeLines {
		if !declared[m[1]] || !declared[m[3]] {
			t.Errorf("edge %s -> %s joins an undeclared node", m[1], m[3])
		}
	}
}

func TestLabelsEscaped(t *testing.T) {
	g := envgraph.Graph{Env: `x"y`, Host: "instance.h", Nodes: []envgraph.Node{
		{ID: "a", Address: "instance.a", Kind: spec.KindInstance, Detail: `say "hi" \N <b>#1</b> & more` + "\nline"},
		{ID: "b", Address: "service.b", Kind: envgraph.KindService, OnHost: true},
	}, Edges: []envgraph.Edge{{From: "a", To: "b", Label: envgraph.LabelLogin}}}
	mmd := envgraph.Mermaid(g)
	checkMermaid(t, mmd, 2)
	if want := `a["instance.a<br>say #quot;hi#quot; \N #lt;b#gt;#35;1#lt;/b#gt; #amp; more line"]`; !strings.Contains(string(mmd), want) {
		t.Errorf("mermaid label not escaped:\n%s\nwant %s", mmd, want)
	}
	dot := string(envgraph.Dot(g))
	if want := `label="instance.a\nsay \"hi\" \\N <b>#1</b> & more\nline"`; !strings.Contains(dot, want) {
		t.Errorf("dot label not escaped:\n%s\nwant %s", dot, want)
	}
	if !strings.HasPrefix(dot, `digraph "acco x\"y" {`) {
		t.Errorf("dot graph name not quoted:\n%s", dot)
	}
}

// svgDoc is what TestSVG reads of Graphviz's SVG.
type svgDoc struct {
	XMLName xml.Name
	Groups  []svgGroup `xml:"g"`
}

type svgGroup struct {
	Class  string     `xml:"class,attr"`
	Title  string     `xml:"title"`
	Groups []svgGroup `xml:"g"`
}

func TestSVG(t *testing.T) {
	g := envgraph.Build(load(t, "test"))
	svg, err := envgraph.SVG(context.Background(), envgraph.Dot(g))
	if errors.Is(err, envgraph.ErrNoGraphviz) {
		t.Skip("Graphviz's dot is not installed (Debian package graphviz; scripts/ensure-deps.sh installs it)")
	}
	if err != nil {
		t.Fatal(err)
	}
	var doc svgDoc
	dec := xml.NewDecoder(bytes.NewReader(svg))
	dec.Strict = true
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("the SVG does not parse: %v", err)
	}
	if doc.XMLName.Local != "svg" {
		t.Fatalf("root element %s, want svg", doc.XMLName.Local)
	}
	titles := map[string]int{}
	var walk func([]svgGroup)
	walk = func(gs []svgGroup) {
		for _, x := range gs {
			if x.Class == "node" {
				titles[x.Title]++
			}
			walk(x.Groups)
		}
	}
	walk(doc.Groups)
	for _, n := range g.Nodes {
		if titles[n.ID] != 1 {
			t.Errorf("node %s: %d <g class=\"node\"> with its title, want 1", n.ID, titles[n.ID])
		}
	}
	if len(titles) != len(g.Nodes) {
		t.Errorf("%d nodes in the SVG, want %d", len(titles), len(g.Nodes))
	}
}

func TestSVGCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := envgraph.SVG(ctx, []byte("digraph { a -> b }"))
	if err == nil {
		t.Fatal("a cancelled context rendered")
	}
}
