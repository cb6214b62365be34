package spec

import (
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// mergeYAML merges over onto base and decodes the result into a plain value,
// to compare merge results without caring about node layout.
func mergeYAML(t *testing.T, base, over string) any {
	t.Helper()
	origin := map[*yaml.Node]string{}
	b, errs := parse([]byte(base), "defaults.yaml")
	if errs != nil {
		t.Fatal(errs)
	}
	o, errs := parse([]byte(over), "test.yaml")
	if errs != nil {
		t.Fatal(errs)
	}
	var out any
	if err := merge(b, o, origin).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMerge(t *testing.T) {
	tests := []struct {
		name, base, over, want string
	}{
		{"maps merge key by key",
			"a: {x: 1, y: 2}\nb: 3\n", "a: {y: 20, z: 30}\n",
			"a: {x: 1, y: 20, z: 30}\nb: 3\n"},
		{"nested maps merge recursively",
			"a: {b: {c: 1, d: 2}}\n", "a: {b: {d: 4}}\n",
			"a: {b: {c: 1, d: 4}}\n"},
		{"lists replace",
			"l: [1, 2, 3]\n", "l: [4]\n",
			"l: [4]\n"},
		{"lists of maps replace whole",
			"rules: [{port: 22}, {port: 80}]\n", "rules: [{port: 443}]\n",
			"rules: [{port: 443}]\n"},
		{"scalars replace",
			"s: one\n", "s: two\n",
			"s: two\n"},
		{"null removes an inherited key",
			"a: {x: 1, y: 2}\n", "a: {y: ~}\n",
			"a: {x: 1}\n"},
		{"null removes an inherited map",
			"a: {x: 1}\nb: 2\n", "a: null\n",
			"b: 2\n"},
		{"null with nothing to remove stays",
			"a: 1\n", "b: ~\n",
			"a: 1\nb: ~\n"},
		{"a list replaces a map",
			"a: {x: 1}\n", "a: [1]\n",
			"a: [1]\n"},
		{"a map replaces a scalar",
			"a: 1\n", "a: {x: 1}\n",
			"a: {x: 1}\n"},
		{"empty base",
			"", "a: 1\n",
			"a: 1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want any
			if err := yaml.Unmarshal([]byte(tt.want), &want); err != nil {
				t.Fatal(err)
			}
			if got := mergeYAML(t, tt.base, tt.over); !reflect.DeepEqual(got, want) {
				t.Errorf("merge =\n%v\nwant\n%v", got, want)
			}
		})
	}
}

// TestMergeKeepsOrigins checks that after a merge every value still reports
// the file and line it was written at, which is what error messages print.
func TestMergeKeepsOrigins(t *testing.T) {
	base := "a:\n  x: 1\n  y: 2\nlist: [1]\n"
	over := "# comment\na:\n  y: 20\nlist: [2, 3]\n"
	d := loadTree(t, base, over)
	tests := []struct {
		path string
		want position
	}{
		{"a.x", position{"environments/defaults.yaml", 2, 6}},
		{"a.y", position{"environments/test.yaml", 3, 6}},
		{"list", position{"environments/test.yaml", 4, 7}},
		{"list[1]", position{"environments/test.yaml", 4, 11}},
	}
	for _, tt := range tests {
		if got := d.pos.at(tt.path); got != tt.want {
			t.Errorf("position of %s = %v, want %v", tt.path, got, tt.want)
		}
	}
}

// loadTree merges and decodes two sources into a generic tree, recording
// positions, without the Environment schema.
func loadTree(t *testing.T, base, over string) *decoder {
	t.Helper()
	origin := map[*yaml.Node]string{}
	b, errs := parse([]byte(base), "environments/defaults.yaml")
	if errs != nil {
		t.Fatal(errs)
	}
	o, errs := parse([]byte(over), "environments/test.yaml")
	if errs != nil {
		t.Fatal(errs)
	}
	prepare(b, "environments/defaults.yaml", origin, "")
	prepare(o, "environments/test.yaml", origin, "")
	type tree struct {
		A    map[string]int `yaml:"a"`
		List []int          `yaml:"list"`
	}
	var out tree
	d := &decoder{origin: origin, pos: newPositions("environments/test.yaml")}
	d.decode(merge(b, o, origin), reflect.ValueOf(&out).Elem(), "", false)
	if len(d.errs) > 0 {
		t.Fatal(d.errs)
	}
	if !reflect.DeepEqual(out, tree{A: map[string]int{"x": 1, "y": 20}, List: []int{2, 3}}) {
		t.Fatalf("decoded %+v", out)
	}
	return d
}

// TestMergeOverShippedDefaults checks the merge through Load on the shipped
// defaults: an environment overrides one key deep inside a map and replaces a
// list, and keeps everything else.
func TestMergeOverShippedDefaults(t *testing.T) {
	env := `name: test
project: "00000000000000000000000000000001"
cloud: acco-test
instances:
  app:
    flavor: d2-4
databases:
  main:
    plan: essential
    flavor: db1-4
    nodes: 1
security_groups:
  app:
    rules:
      - {protocol: tcp, ports: [22], from: [admin_cidrs]}
services:
  emqx:
    listeners:
      mqtt:
        port: 11883
      mqtts:
        tls: {cert_file: a.crt, key_file: a.key}
`
	e := loadString(t, env, nil)
	if got := e.Services.EMQX.Listeners["mqtt"]; got.Port != 11883 || got.Type != "tcp" {
		t.Errorf("listener mqtt = %+v, want port 11883 and type tcp kept from defaults", *got)
	}
	if got := e.Services.EMQX.Listeners["mqtts"].Port; got != 8883 {
		t.Errorf("listener mqtts port = %d, want 8883 from defaults", got)
	}
	if got := len(e.SecurityGroups["app"].Rules); got != 1 {
		t.Errorf("security group app has %d rules, want 1: lists replace", got)
	}
	if got := e.SecurityGroups["app"].Description; !strings.HasPrefix(got, "acco app host") {
		t.Errorf("security group description = %q, want the one from defaults", got)
	}
	if got := e.Databases["main"].Version; got != "17" {
		t.Errorf("database version = %q, want 17 from defaults", got)
	}
	file, line, _ := e.Position("services.emqx.listeners.mqtt.port")
	if file != "environments/test.yaml" || line != 20 {
		t.Errorf("position of the overridden port = %s:%d, want environments/test.yaml:20", file, line)
	}
	file, _, _ = e.Position("services.emqx.listeners.mqtt.type")
	if file != "environments/defaults.yaml" {
		t.Errorf("position of the inherited type is in %s, want environments/defaults.yaml", file)
	}
}
