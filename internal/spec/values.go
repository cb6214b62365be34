package spec

import (
	"fmt"
	"net/netip"
	"path"
	"reflect"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// What a string of the YAML may contain.
//
// Strings of an environment end up in systemd units, configuration files
// (HOCON, YAML, environment files, Mosquitto's configuration), SQL and shell
// commands run as root on the services host, and in OpenStack and OVH API
// calls. Two layers keep a value from becoming more than a value:
//
//   - every string, list item, map key and map value is one line of valid
//     UTF-8 text without control characters (checkText, below): no value can
//     add a line to a file or a command;
//   - values with a grammar are held to it (names, identifiers, image
//     references, paths, addresses, topic filters, URLs; see Validate), and
//     the templates quote what they render for the file it lands in
//     (systemd's quoting in units, HOCON and YAML strings, environment-file
//     quoting), for the free text that remains (descriptions, audiences,
//     environment values).

// textProblem reports a string that is not one line of text: invalid UTF-8,
// a control character (C0 including tab and line feed, DEL, C1), or a Unicode
// line or paragraph separator (which YAML and JavaScript read as line
// breaks). It returns "" for a good string.
func textProblem(s string) string {
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			return fmt.Sprintf("%q is not valid UTF-8 (byte %#02x at offset %d)", s, s[i], i)
		case r == '\n' || r == '\r':
			return fmt.Sprintf("%q holds a line break (%U at offset %d): a value is one line of text", s, r, i)
		case unicode.IsControl(r):
			return fmt.Sprintf("%q holds the control character %U at offset %d: a value is printable text (no tabs or control characters)", s, r, i)
		case r == '\u2028' || r == '\u2029':
			return fmt.Sprintf("%q holds a Unicode line separator (%U at offset %d): a value is one line of text", s, r, i)
		}
	}
	return ""
}

// checkText applies textProblem to every string the environment holds,
// found by reflection over its YAML fields so that a field added later is
// covered too: strings, list items, map keys (as the key's path) and map
// values. Each problem is reported once per path, and the path is marked so
// that the field's own rules do not report the same value again.
func (v *validator) checkText() {
	fields := map[reflect.Type][]field{} // structFields, once per type
	var walk func(rv reflect.Value, p *pathElem)
	walk = func(rv reflect.Value, p *pathElem) {
		switch rv.Kind() {
		case reflect.Pointer:
			if !rv.IsNil() {
				walk(rv.Elem(), p)
			}
		case reflect.Struct:
			fs, ok := fields[rv.Type()]
			if !ok {
				fs = structFields(rv.Type())
				fields[rv.Type()] = fs
			}
			for _, f := range fs {
				walk(rv.Field(f.index), &pathElem{parent: p, key: f.name, index: -1})
			}
		case reflect.Slice:
			for i := range rv.Len() {
				walk(rv.Index(i), &pathElem{parent: p, index: i})
			}
		case reflect.Map:
			if rv.Type().Key().Kind() != reflect.String {
				panic(fmt.Sprintf("spec: map with %s keys at %s", rv.Type().Key(), p)) // a programming error in types.go
			}
			keys := rv.MapKeys()
			slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
			for _, k := range keys {
				kp := &pathElem{parent: p, key: k.String(), index: -1}
				if msg := textProblem(k.String()); msg != "" {
					v.addKey(kp.String(), "the name %s", msg)
					v.refused[kp.String()] = true
					continue
				}
				walk(rv.MapIndex(k), kp)
			}
		case reflect.String:
			if msg := textProblem(rv.String()); msg != "" {
				v.add(p.String(), "%s", msg)
				v.refused[p.String()] = true
			}
		}
	}
	walk(reflect.ValueOf(v.e).Elem(), nil)
}

// pathElem is a key path built as checkText walks, written out only for a
// problem.
type pathElem struct {
	parent *pathElem
	key    string
	index  int // a list index, or -1 for a key
}

// String writes the path as the errors name it (a.b[2].c).
func (p *pathElem) String() string {
	if p == nil {
		return ""
	}
	if p.index >= 0 {
		return indexPath(p.parent.String(), p.index)
	}
	return joinPath(p.parent.String(), p.key)
}

// entrypointProblem checks services.backend.entrypoint: a JavaScript file
// inside the unpacked artifact, written as a relative path whose segments
// are letters, digits and . _ - @ + (it becomes an argument of the unit's
// ExecStart, quoted there too).
func entrypointProblem(s string) string {
	clean := path.Clean(s)
	switch {
	case path.IsAbs(s) || clean == ".." || strings.HasPrefix(clean, "../"):
		return fmt.Sprintf("%q must be a path inside the artifact, such as dist/server.js", s)
	case !strings.HasSuffix(clean, ".js") && !strings.HasSuffix(clean, ".mjs") && !strings.HasSuffix(clean, ".cjs"):
		return fmt.Sprintf("%q is not a JavaScript file (.js, .mjs or .cjs)", s)
	}
	for _, seg := range strings.Split(s, "/") {
		if seg == "" || seg == ".." || strings.Trim(seg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@+-") != "" {
			return fmt.Sprintf("%q is not a relative path of letters, digits and . _ - @ + between single slashes, such as dist/server.js", s)
		}
	}
	return ""
}

// topicTextProblem checks what the levels of services.emqx.positions.topic
// may hold: letters, digits, . _ - (or a whole-level + or #). The filter
// goes into EMQX's rule SQL, its ACL file (Erlang terms) and the backend's
// environment; MQTT allows more, acco's trackers need no more.
func topicTextProblem(t string) string {
	for _, l := range strings.Split(t, "/") {
		if l == "+" || l == "#" {
			continue
		}
		if strings.Trim(l, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
			return fmt.Sprintf("%q is not a topic filter of letters, digits, . _ - and the wildcards + and #, such as trackers/+/position", t)
		}
	}
	return ""
}

// isURLHost reports whether h, the host of a URL (without brackets or
// port), is an IP address without a zone or a DNS name: labels of letters,
// digits and dashes joined by dots. url.Parse lets quotes, $, ; and more
// through in a host name.
func isURLHost(h string) bool {
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Zone() == ""
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for _, l := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' ||
			strings.Trim(l, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != "" {
			return false
		}
	}
	return true
}
