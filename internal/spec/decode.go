package spec

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// scalarDecoder is implemented by types written as one YAML scalar with their
// own syntax (PortRange). decodeScalar returns a problem, or "".
type scalarDecoder interface {
	decodeScalar(n *yaml.Node) string
}

// decoder turns the merged YAML tree into Go values strictly: unknown keys,
// wrong kinds and bad scalars are problems with a position. It records the
// position of every key and value it meets, and expands ${VAR} in the fields
// tagged spec:"env".
type decoder struct {
	origin map[*yaml.Node]string
	lookup func(string) (string, bool)
	pos    *positions
	errs   ErrorList
}

// field is a struct field as the YAML sees it.
type field struct {
	name  string
	index int
	env   bool // accepts ${VAR}
}

func structFields(t reflect.Type) []field {
	var fs []field
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		fs = append(fs, field{name: name, index: i, env: sf.Tag.Get("spec") == "env"})
	}
	return fs
}

func (d *decoder) posOf(n *yaml.Node) position {
	return position{file: d.origin[n], line: n.Line, column: n.Column}
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, newError(d.posOf(n), path, format, args...))
}

// decode stores n into v. env says whether strings in n may use ${VAR}.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string, env bool) {
	d.pos.value[path] = d.posOf(n)
	if isNull(n) {
		return // null leaves the zero value
	}
	if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "${") {
		if !env || v.Kind() != reflect.String {
			d.fail(n, path, "%s: this key does not read environment variables; only these do: %s",
				n.Value, strings.Join(groupPaths(envPaths(reflect.TypeFor[Environment]())), ", "))
			return
		}
	}
	if v.Type() == reflect.TypeFor[time.Duration]() {
		d.duration(n, v, path)
		return
	}
	if sd, ok := v.Addr().Interface().(scalarDecoder); ok {
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "expected a single value, got %s", describe(n))
			return
		}
		if msg := sd.decodeScalar(n); msg != "" {
			d.fail(n, path, "%s", msg)
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path, env)
	case reflect.Struct:
		d.structure(n, v, path)
	case reflect.Map:
		d.mapping(n, v, path, env)
	case reflect.Slice:
		d.sequence(n, v, path, env)
	case reflect.String:
		d.str(n, v, path, env)
	case reflect.Int:
		d.integer(n, v, path)
	case reflect.Bool:
		d.boolean(n, v, path)
	default:
		panic(fmt.Sprintf("spec: cannot decode into %s", v.Type())) // a programming error in types.go
	}
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping (key: value lines), got %s", describe(n))
		return
	}
	fields := structFields(v.Type())
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		p := joinPath(path, k.Value)
		d.pos.key[p] = d.posOf(k)
		f, ok := findField(fields, k.Value)
		if !ok {
			d.fail(k, p, "%s", unknownKey(k.Value, fields))
			continue
		}
		d.decode(val, v.Field(f.index), p, f.env)
	}
}

func findField(fields []field, name string) (field, bool) {
	for _, f := range fields {
		if f.name == name {
			return f, true
		}
	}
	return field{}, false
}

func unknownKey(key string, fields []field) string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	if s := suggest(key, names); s != "" {
		return fmt.Sprintf("unknown key; did you mean %s?", s)
	}
	sort.Strings(names)
	return "unknown key; expected one of: " + strings.Join(names, ", ")
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string, env bool) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping (name: value lines), got %s", describe(n))
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	et := v.Type().Elem()
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		p := joinPath(path, k.Value)
		d.pos.key[p] = d.posOf(k)
		if strings.Contains(k.Value, "${") {
			d.fail(k, p, "keys do not read environment variables")
			continue
		}
		ev := reflect.New(et).Elem()
		if et.Kind() == reflect.Pointer {
			ev.Set(reflect.New(et.Elem())) // "name:" with no value is an entry with no settings
		}
		d.decode(val, ev, p, env)
		v.SetMapIndex(reflect.ValueOf(k.Value), ev)
	}
}

func (d *decoder) sequence(n *yaml.Node, v reflect.Value, path string, env bool) {
	if n.Kind != yaml.SequenceNode {
		hint := ""
		if n.Kind == yaml.ScalarNode {
			hint = fmt.Sprintf("; write [%s], or one \"- item\" line per item", n.Value)
		}
		d.fail(n, path, "expected a list, got %s%s", describe(n), hint)
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.decode(item, s.Index(i), indexPath(path, i), env)
	}
	v.Set(s)
}

func (d *decoder) str(n *yaml.Node, v reflect.Value, path string, env bool) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "expected a string, got %s", describe(n))
		return
	}
	switch n.Tag {
	case "!!str", "!!int", "!!float", "!!timestamp":
	case "!!bool":
		d.fail(n, path, "expected a string, got %s; quote it (\"%s\") if you mean the text", describe(n), n.Value)
		return
	default:
		d.fail(n, path, "expected a string, got %s", describe(n))
		return
	}
	s := n.Value
	if env {
		var msg string
		if s, msg = expand(s, d.lookup); msg != "" {
			d.fail(n, path, "%s", msg)
			return
		}
	}
	v.SetString(s)
}

func (d *decoder) integer(n *yaml.Node, v reflect.Value, path string) {
	var i int64
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&i) != nil {
		d.fail(n, path, "expected a whole number, got %s", describe(n))
		return
	}
	v.SetInt(i)
}

func (d *decoder) boolean(n *yaml.Node, v reflect.Value, path string) {
	var b bool
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
		d.fail(n, path, "expected true or false, got %s", describe(n))
		return
	}
	v.SetBool(b)
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "expected a duration such as 90s, 40m or 1h30m, got %s", describe(n))
		return
	}
	if n.Tag == "!!int" {
		d.fail(n, path, "bad duration %s: add a unit, such as %ss or %sm", n.Value, n.Value, n.Value)
		return
	}
	dur, err := time.ParseDuration(n.Value)
	if n.Tag != "!!str" || err != nil {
		d.fail(n, path, "bad duration %q: write a number with a unit, such as 90s, 40m or 1h30m", n.Value)
		return
	}
	v.SetInt(int64(dur))
}

// decodeScalar reads 22 or "8000-8100".
func (r *PortRange) decodeScalar(n *yaml.Node) string {
	bad := fmt.Sprintf("bad port %s: write a port such as 22, or a range such as \"8000-8100\"", describe(n))
	switch n.Tag {
	case "!!int":
		p, err := strconv.Atoi(n.Value)
		if err != nil {
			return bad
		}
		r.Min, r.Max = p, p
	case "!!str":
		lo, hi, isRange := strings.Cut(n.Value, "-")
		a, err1 := strconv.Atoi(strings.TrimSpace(lo))
		b, err2 := a, error(nil)
		if isRange {
			b, err2 = strconv.Atoi(strings.TrimSpace(hi))
		}
		if err1 != nil || err2 != nil {
			return bad
		}
		r.Min, r.Max = a, b
	default:
		return bad
	}
	return ""
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// describe names a node's kind and value for messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!str":
			return strconv.Quote(n.Value)
		case "!!int":
			return "the number " + n.Value
		case "!!float":
			return "the number " + n.Value
		case "!!bool":
			return "the boolean " + n.Value
		case "!!null":
			return "null"
		}
		return n.Value
	}
	return "nothing"
}

// envPaths lists the key paths that accept ${VAR}, with * for map keys.
func envPaths(t reflect.Type) []string {
	var out []string
	var walk func(t reflect.Type, path string, env bool)
	walk = func(t reflect.Type, path string, env bool) {
		if env {
			if t.Kind() == reflect.Map {
				path += ".*"
			}
			out = append(out, path)
			return
		}
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice:
			walk(t.Elem(), path, false)
		case reflect.Map:
			walk(t.Elem(), joinPath(path, "*"), false)
		case reflect.Struct:
			for _, f := range structFields(t) {
				walk(t.Field(f.index).Type, joinPath(path, f.name), f.env)
			}
		}
	}
	walk(t, "", false)
	return out
}

// groupPaths writes consecutive paths with the same parent once, as
// parent.{a,b}.
func groupPaths(paths []string) []string {
	var out []string
	for i := 0; i < len(paths); {
		parent := parentPath(paths[i])
		j := i + 1
		for j < len(paths) && parent != "" && parentPath(paths[j]) == parent && !strings.HasSuffix(paths[j], "*") {
			j++
		}
		if j-i == 1 {
			out = append(out, paths[i])
		} else {
			leaves := make([]string, 0, j-i)
			for _, p := range paths[i:j] {
				leaves = append(leaves, p[len(parent)+1:])
			}
			out = append(out, parent+".{"+strings.Join(leaves, ",")+"}")
		}
		i = j
	}
	return out
}
