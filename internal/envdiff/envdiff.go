// Package envdiff compares two resolved environments (defaults.yaml merged
// with each environment's file, as spec.Load returns them) key by key and
// lists every key whose value differs, grouped by resource.
//
// Keys are YAML key paths: the yaml tag names, map entries by name, items of
// lists of mappings as [i]. A list of scalars is one value. Values are shown
// as they are resolved; files are compared by their paths, never read.
package envdiff

import (
	"fmt"
	"io"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/accoreboot/acco/internal/spec"
)

// IdentityGroup is the group of the environment's own keys: name, project,
// cloud, region, admin_cidrs, state and the other top-level settings.
const IdentityGroup = "environment"

// Absent is how the text output shows a key one environment does not have.
const Absent = "(absent)"

// Hidden replaces a value that Options.Hide asks to keep out of the output.
const Hidden = "(hidden)"

// Difference is one key whose value differs. Env1 or Env2 is nil where that
// environment does not have the key.
//
// A live difference (Live true, only with acco diff --live) is between what
// is deployed in each environment rather than between their YAML.
type Difference struct {
	Key  string  `json:"key"`
	Env1 *string `json:"env1"`
	Env2 *string `json:"env2"`
	Live bool    `json:"live,omitempty"`
}

// Group holds the differences of one resource (instances.app,
// services.emqx, ...) or of the environment's identity.
type Group struct {
	Resource    string       `json:"resource"`
	Differences []Difference `json:"differences"`
}

// Result is the comparison of two environments.
type Result struct {
	Env1   string  `json:"env1"`
	Env2   string  `json:"env2"`
	Equal  bool    `json:"equal"`
	Groups []Group `json:"groups"`
	// Live is set by CompareLive: whether each environment is deployed
	// and the state serial its live facts come from.
	Live *LiveStatus `json:"live,omitempty"`
}

// Options tune Compare.
type Options struct {
	// Hide, when it returns true for a key path and its value, makes the
	// output show Hidden instead of the value (the values are still
	// compared). Nil hides nothing.
	Hide func(key, value string) bool
}

// leaf is one resolved value of an environment.
type leaf struct {
	group string
	value string
	zero  bool // the type's zero value: absent on the other side is no difference
}

// Compare lists the keys whose values differ between e1 and e2.
func Compare(e1, e2 *spec.Environment, opts Options) *Result {
	l1, l2 := flatten(e1), flatten(e2)
	keys := make([]string, 0, len(l1)+len(l2))
	for k := range l1 {
		keys = append(keys, k)
	}
	for k := range l2 {
		if _, ok := l1[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return lessPath(keys[i], keys[j]) })

	res := &Result{Env1: e1.Name, Env2: e2.Name, Groups: []Group{}}
	byGroup := map[string]int{}
	for _, k := range keys {
		a, inA := l1[k]
		b, inB := l2[k]
		switch {
		case inA && inB && a.value == b.value:
			continue
		case inA && !inB && a.zero, inB && !inA && b.zero:
			continue
		}
		d := Difference{Key: k}
		group := a.group
		if inA {
			d.Env1 = show(opts, k, a.value)
		}
		if inB {
			d.Env2 = show(opts, k, b.value)
			group = b.group
		}
		i, ok := byGroup[group]
		if !ok {
			i = len(res.Groups)
			byGroup[group] = i
			res.Groups = append(res.Groups, Group{Resource: group})
		}
		res.Groups[i].Differences = append(res.Groups[i].Differences, d)
	}
	res.sortGroups()
	res.Equal = len(res.Groups) == 0
	return res
}

// sortGroups puts the environment group first, then the resources by path.
func (r *Result) sortGroups() {
	sort.SliceStable(r.Groups, func(i, j int) bool {
		gi, gj := r.Groups[i].Resource, r.Groups[j].Resource
		if (gi == IdentityGroup) != (gj == IdentityGroup) {
			return gi == IdentityGroup
		}
		return lessPath(gi, gj)
	})
}

func show(opts Options, key, v string) *string {
	if opts.Hide != nil && opts.Hide(key, v) {
		v = Hidden
	}
	return &v
}

// LivePrefix marks a live difference's key in the text output.
const LivePrefix = "live: "

// Render writes the result as text: one block per group, each difference
// as key path, env1's value and env2's value; live differences have their
// key marked with LivePrefix.
func (r *Result) Render(w io.Writer) error {
	from := "resolved with defaults.yaml"
	if r.Live != nil {
		from += "; " + r.liveSummary()
	}
	if r.Equal {
		_, err := fmt.Fprintf(w, "%s and %s are the same (%s).\n", r.Env1, r.Env2, from)
		return err
	}
	n, live := 0, 0
	for _, g := range r.Groups {
		n += len(g.Differences)
		for _, d := range g.Differences {
			if d.Live {
				live++
			}
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if r.Live != nil {
		fmt.Fprintf(tw, "%s and %s differ in %d key(s), %d of them live (%s):\n", r.Env1, r.Env2, n, live, from)
	} else {
		fmt.Fprintf(tw, "%s and %s differ in %d key(s) (%s):\n", r.Env1, r.Env2, n, from)
	}
	for _, g := range r.Groups {
		fmt.Fprintf(tw, "\n%s\n", g.Resource)
		fmt.Fprintf(tw, "  KEY\t%s\t%s\n", strings.ToUpper(r.Env1), strings.ToUpper(r.Env2))
		for _, d := range g.Differences {
			key := d.Key
			if d.Live {
				key = LivePrefix + key
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", key, text(d.Env1), text(d.Env2))
		}
	}
	return tw.Flush()
}

func text(v *string) string {
	switch {
	case v == nil:
		return Absent
	case *v == "", strings.IndexFunc(*v, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		// No control character reaches the terminal.
		return strconv.Quote(*v)
	}
	return *v
}

// flatten returns every leaf value of e by key path.
func flatten(e *spec.Environment) map[string]leaf {
	out := map[string]leaf{}
	walk(out, reflect.ValueOf(e).Elem(), "", IdentityGroup, 0)
	return out
}

var (
	durationType = reflect.TypeOf(time.Duration(0))
	portType     = reflect.TypeOf(spec.PortRange{})
	stringerType = reflect.TypeOf((*fmt.Stringer)(nil)).Elem()
)

// walk records the leaves under v at path. depth is the number of keys in
// path; group is the resource the leaves belong to.
func walk(out map[string]leaf, v reflect.Value, path, group string, depth int) {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return
		}
		v = v.Elem()
	}
	if scalar(v.Type()) {
		out[path] = leaf{group: group, value: format(v), zero: v.IsZero()}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || name == "" || name == "-" {
				continue
			}
			g := group
			// The services' own sections are resources of their own.
			if depth == 1 && path == "services" && f.Type.Kind() == reflect.Pointer {
				g = join(path, name)
			}
			if depth == 0 && f.Type.Kind() == reflect.Struct && name == "services" {
				g = "services"
			}
			walk(out, v.Field(i), join(path, name), g, depth+1)
		}
	case reflect.Map:
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
		if len(keys) == 0 {
			out[path] = leaf{group: group, value: "{}", zero: true}
		}
		for _, k := range keys {
			g := group
			// instances.app, databases.main, security_groups.app, ...
			if depth == 1 {
				g = join(path, k.String())
			}
			walk(out, v.MapIndex(k), join(path, k.String()), g, depth+1)
		}
	case reflect.Slice:
		if v.Len() == 0 {
			out[path] = leaf{group: group, value: "[]", zero: true}
		}
		for i := range v.Len() {
			walk(out, v.Index(i), path+"["+strconv.Itoa(i)+"]", group, depth+1)
		}
	}
}

// scalar reports whether values of t are shown as one value: plain values,
// and lists of plain values.
func scalar(t reflect.Type) bool {
	if t == durationType || t == portType {
		return true
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64:
		return true
	case reflect.Slice:
		return scalar(t.Elem()) && t.Elem().Kind() != reflect.Slice
	}
	return false
}

// format shows a scalar as YAML would: lists in flow style.
func format(v reflect.Value) string {
	if v.Kind() == reflect.Slice {
		items := make([]string, v.Len())
		for i := range items {
			items[i] = format(v.Index(i))
		}
		return "[" + strings.Join(items, ", ") + "]"
	}
	if v.Type() == durationType {
		return formatDuration(time.Duration(v.Int()))
	}
	if v.Type().Implements(stringerType) {
		return v.Interface().(fmt.Stringer).String()
	}
	return fmt.Sprint(v.Interface())
}

// formatDuration writes 40m rather than 40m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// lessPath orders key paths by their parts, list indexes by number.
func lessPath(a, b string) bool {
	pa, pb := splitPath(a), splitPath(b)
	for i := 0; i < len(pa) && i < len(pb); i++ {
		if pa[i] == pb[i] {
			continue
		}
		na, errA := strconv.Atoi(pa[i])
		nb, errB := strconv.Atoi(pb[i])
		if errA == nil && errB == nil {
			return na < nb
		}
		return pa[i] < pb[i]
	}
	return len(pa) < len(pb)
}

func splitPath(p string) []string {
	return strings.FieldsFunc(p, func(r rune) bool { return r == '.' || r == '[' || r == ']' })
}
