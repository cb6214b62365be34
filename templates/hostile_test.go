package templates

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/accoreboot/acco/internal/spec"
)

// policy is what keeps a string field of the YAML from becoming more than
// a value where it lands.
type policy int

const (
	// grammar: Validate holds the value to a grammar (a name, an
	// identifier, a reference, an address, a version, an image
	// reference, a path or a URL of a fixed shape); any value with a
	// quote, space, shell, systemd, HOCON or YAML metacharacter is
	// refused.
	grammar policy = iota + 1
	// escaped: free text that reaches a host file, quoted for that file;
	// hostile values may be accepted and must read back exactly.
	escaped
	// notRendered: text that no file on the host holds (OpenStack and
	// OVH API values, local paths read on the operator's machine); any
	// value that is one line of text is accepted and the rendered files
	// do not change.
	notRendered
)

// hostilePolicies names the policy of every string field of the spec, by
// pattern: * for a map's values or a list's items, <key> for a map's keys.
// TestHostileValues fails on a string field missing here.
var hostilePolicies = map[string]policy{
	"name":                                         grammar,
	"project":                                      grammar,
	"cloud":                                        notRendered, // clouds.yaml entry, read by gophercloud
	"region":                                       grammar,
	"admin_cidrs[*]":                               grammar,
	"state.bucket":                                 grammar,
	"state.region":                                 grammar,
	"state.endpoint":                               grammar,
	"state.project":                                grammar,
	"keypairs.<key>":                               grammar,
	"keypairs.*.public_key":                        notRendered, // OpenStack keypair; one line, so one authorized key
	"keypairs.*.public_key_file":                   notRendered, // read on the operator's machine
	"security_groups.<key>":                        grammar,
	"security_groups.*.description":                notRendered, // OpenStack API
	"security_groups.*.rules[*].description":       notRendered, // OpenStack API
	"security_groups.*.rules[*].protocol":          grammar,
	"security_groups.*.rules[*].from[*]":           grammar,
	"instances.<key>":                              grammar,
	"instances.*.flavor":                           grammar,
	"instances.*.image":                            notRendered, // OpenStack image name, looked up by the API
	"instances.*.network":                          notRendered, // OpenStack network name, looked up by the API
	"instances.*.keypair":                          grammar,
	"instances.*.security_groups[*]":               grammar,
	"instances.*.ssh_user":                         grammar,
	"databases.<key>":                              grammar,
	"databases.*.engine":                           grammar,
	"databases.*.version":                          grammar,
	"databases.*.plan":                             grammar,
	"databases.*.flavor":                           grammar,
	"databases.*.region":                           grammar,
	"databases.*.extensions[*]":                    grammar,
	"databases.*.logical_databases[*]":             grammar,
	"databases.*.users.<key>":                      grammar,
	"databases.*.users.*.roles[*]":                 grammar,
	"databases.*.users.*.grants[*].database":       grammar,
	"databases.*.users.*.grants[*].schema":         grammar,
	"databases.*.users.*.grants[*].tables[*]":      grammar,
	"databases.*.users.*.grants[*].privileges[*]":  grammar,
	"databases.*.allow_from[*]":                    grammar,
	"databases.*.backup_time":                      grammar,
	"databases.*.maintenance_time":                 grammar,
	"services.host":                                grammar,
	"services.broker":                              grammar,
	"services.emqx.version":                        grammar,
	"services.emqx.edition":                        grammar,
	"services.emqx.apt_key_fingerprint":            grammar, // 40 hex digits, compared on the host
	"services.emqx.listeners.<key>":                grammar,
	"services.emqx.listeners.*.type":               grammar,
	"services.emqx.listeners.*.bind":               grammar,
	"services.emqx.listeners.*.tls.cert_file":      notRendered, // read on the operator's machine
	"services.emqx.listeners.*.tls.key_file":       notRendered,
	"services.emqx.listeners.*.tls.ca_file":        notRendered,
	"services.emqx.dashboard.bind":                 grammar,
	"services.emqx.device_auth.backend":            grammar,
	"services.emqx.device_auth.user_id_type":       grammar,
	"services.emqx.device_auth.password_hash":      grammar,
	"services.emqx.device_auth.acl_no_match":       grammar,
	"services.emqx.device_auth.postgres.cluster":   grammar,
	"services.emqx.device_auth.postgres.database":  grammar,
	"services.emqx.device_auth.postgres.user":      grammar,
	"services.emqx.positions.topic":                grammar,
	"services.emqx.positions.postgres.cluster":     grammar,
	"services.emqx.positions.postgres.database":    grammar,
	"services.emqx.positions.postgres.user":        grammar,
	"services.emqx.positions.table":                grammar,
	"services.emqx.positions.latest_table":         grammar,
	"services.mosquitto.listeners.<key>":           grammar,
	"services.mosquitto.listeners.*.type":          grammar,
	"services.mosquitto.listeners.*.bind":          grammar,
	"services.mosquitto.listeners.*.tls.cert_file": notRendered,
	"services.mosquitto.listeners.*.tls.key_file":  notRendered,
	"services.mosquitto.listeners.*.tls.ca_file":   notRendered,
	"services.powersync.image":                     grammar,
	"services.powersync.tag":                       grammar,
	"services.powersync.source.cluster":            grammar,
	"services.powersync.source.database":           grammar,
	"services.powersync.source.user":               grammar,
	"services.powersync.storage.cluster":           grammar,
	"services.powersync.storage.database":          grammar,
	"services.powersync.storage.user":              grammar,
	"services.powersync.publication":               grammar,
	"services.powersync.tables[*]":                 grammar,
	"services.powersync.sslmode":                   grammar,
	"services.powersync.sync_rules":                notRendered, // read on the operator's machine
	"services.powersync.tls.cert_file":             notRendered, // read on the operator's machine
	"services.powersync.tls.key_file":              notRendered,
	"services.powersync.client_auth.jwks_uri":      escaped,     // an http(s) URL, YAML-quoted
	"services.powersync.client_auth.audience[*]":   escaped,     // YAML-quoted
	"services.backend.artifact":                    notRendered, // read on the operator's machine
	"services.backend.entrypoint":                  grammar,
	"services.backend.bind":                        grammar,
	"services.backend.postgres.cluster":            grammar,
	"services.backend.postgres.database":           grammar,
	"services.backend.postgres.user":               grammar,
	"services.backend.env.<key>":                   grammar,
	"services.backend.env.*":                       escaped, // quoted for the EnvironmentFile
	"services.backend.verify_url_path":             grammar,
}

// stringPatterns lists every string reachable in t through its YAML fields:
// strings, list items ([*]), map values (.*) and map keys (.<key>).
func stringPatterns(t reflect.Type) []string {
	var out []string
	var walk func(t reflect.Type, pattern string)
	walk = func(t reflect.Type, pattern string) {
		switch t.Kind() {
		case reflect.Pointer:
			walk(t.Elem(), pattern)
		case reflect.Struct:
			for i := range t.NumField() {
				if name, ok := yamlName(t.Field(i)); ok {
					walk(t.Field(i).Type, join(pattern, name))
				}
			}
		case reflect.Slice:
			walk(t.Elem(), pattern+"[*]")
		case reflect.Map:
			if t.Key().Kind() == reflect.String {
				out = append(out, pattern+".<key>")
			}
			walk(t.Elem(), pattern+".*")
		case reflect.String:
			out = append(out, pattern)
		}
	}
	walk(t, "")
	return out
}

// yamlName is the YAML key of a struct field, as the spec's decoder reads
// it; ok is false for fields the YAML does not set.
func yamlName(f reflect.StructField) (string, bool) {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name, f.IsExported() && name != "" && name != "-"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// location is one string of a loaded environment that the test can set.
type location struct {
	pattern string
	path    string       // the key path Validate names
	key     bool         // a map key: setting it renames the entry
	elem    reflect.Kind // for a key: the kind of the map's values
	benign  string
	// set puts a value in place and returns the key path it is then at;
	// restore puts the benign value back.
	set     func(string) string
	restore func()
}

// locations lists every string of e, by walking its values.
func locations(t *testing.T, e *spec.Environment) []location {
	var out []location
	var walk func(v reflect.Value, pattern, path string)
	walk = func(v reflect.Value, pattern, path string) {
		switch v.Kind() {
		case reflect.Pointer:
			if !v.IsNil() {
				walk(v.Elem(), pattern, path)
			}
		case reflect.Struct:
			for i := range v.NumField() {
				if name, ok := yamlName(v.Type().Field(i)); ok {
					walk(v.Field(i), join(pattern, name), join(path, name))
				}
			}
		case reflect.Slice:
			for i := range v.Len() {
				walk(v.Index(i), pattern+"[*]", fmt.Sprintf("%s[%d]", path, i))
			}
		case reflect.Map:
			keys := v.MapKeys()
			sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
			for _, k := range keys {
				m, k, kp := v, k, join(path, k.String())
				elem := m.MapIndex(k)
				var current reflect.Value // the key set renamed the entry to
				out = append(out, location{
					pattern: pattern + ".<key>", path: kp, key: true, benign: k.String(), elem: elem.Kind(),
					set: func(h string) string {
						current = reflect.ValueOf(h).Convert(k.Type())
						m.SetMapIndex(k, reflect.Value{})
						m.SetMapIndex(current, elem)
						return join(path, h)
					},
					restore: func() {
						m.SetMapIndex(current, reflect.Value{})
						m.SetMapIndex(k, elem)
					},
				})
				switch elem.Kind() {
				case reflect.String:
					out = append(out, location{
						pattern: pattern + ".*", path: kp, benign: elem.String(),
						set: func(h string) string {
							m.SetMapIndex(k, reflect.ValueOf(h).Convert(elem.Type()))
							return kp
						},
						restore: func() { m.SetMapIndex(k, elem) },
					})
				case reflect.Pointer:
					walk(elem, pattern+".*", kp)
				default:
					t.Fatalf("%s: a map of %s: teach locations to set its values", pattern, elem.Type())
				}
			}
		case reflect.String:
			benign := v.String()
			out = append(out, location{
				pattern: pattern, path: path, benign: benign,
				set:     func(h string) string { v.SetString(h); return path },
				restore: func() { v.SetString(benign) },
			})
		}
	}
	walk(reflect.ValueOf(e).Elem(), "", "")
	return out
}

// hostileBase is an environment the test changes one value of at a time,
// with its files rendered as they are.
type hostileBase struct {
	name  string
	env   *spec.Environment
	files []File
}

// hostileDir is an environments directory with the shipped defaults.yaml
// and the fixture testdata/hostile/hostile.yaml.
func hostileDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for src, dst := range map[string]string{
		"../environments/defaults.yaml": spec.DefaultsFile,
		"testdata/hostile/hostile.yaml": "hostile.yaml",
	} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, dst), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// hostileInputs are sampleInputs with a client CA for the mqtts listener.
func hostileInputs() Inputs {
	in := sampleInputs()
	t := in.TLS["mqtts"]
	t.CA = fakeCA
	in.TLS = map[string]TLS{"mqtts": t}
	if in.PowerSyncTLS.Cert == "" {
		in.PowerSyncTLS = TLS{Cert: fakeCA, Key: "-----BEGIN PRIVATE KEY-----\nhostile\n-----END PRIVATE KEY-----\n"}
	}
	in.SyncRules = &SyncRules{File: "rules/sync-rules.yaml", Content: []byte("bucket_definitions:\n  mine:\n    parameters: SELECT request.user_id() AS user_id\n    data:\n      - SELECT * FROM devices WHERE owner = bucket.user_id\n")}
	return in
}

// hostileBases loads the fixture twice, with broker emqx and with broker
// mosquitto, and renders each (every file must parse).
func hostileBases(t *testing.T) []hostileBase {
	t.Helper()
	dir := hostileDir(t)
	var out []hostileBase
	for _, broker := range []string{spec.BrokerEMQX, spec.BrokerMosquitto} {
		e, err := spec.Load(dir, "hostile", nil)
		if err != nil {
			t.Fatalf("the fixture does not load: %v", err)
		}
		e.Services.Broker = broker
		if err := e.Validate(); err != nil {
			t.Fatalf("the fixture with broker %s is not valid: %v", broker, err)
		}
		files, err := Files(e, hostileInputs())
		if err != nil {
			t.Fatalf("the fixture with broker %s does not render: %v", broker, err)
		}
		for _, f := range files {
			if _, err := parseFile(f.Path, string(f.Content)); err != nil {
				t.Fatalf("broker %s: %s does not parse: %v\n%s", broker, f.Path, err, f.Content)
			}
		}
		out = append(out, hostileBase{name: broker, env: e, files: files})
	}
	return out
}

// variant is a hostile value tried at a location, and the payload in it.
type variant struct{ value, payload string }

// shortPayloads are the payloads tried with -short: one or two of each kind.
var shortPayloads = []string{
	`"`, `'`, "`", `\`, `$(id>/tmp/pwned)`, "${HOME}", ";", "%n",
	"\nExecStartPre=+/bin/sh -c 'id>/pwned' #", "\\\nUser=root", "x \\",
	"\" }\nnode.cookie = \"x", "\nkey: value", ": x", "\"}.\n{allow, all, subscribe, [\"#\"]}.",
	" x ", "\x00", "\xff", "\u2028",
}

// variants are the hostile values tried at a location whose benign value
// is v: each payload after v (past a prefix check), before v (past a
// suffix check such as .js or .pub), inside v before its last dot (past
// both) and alone; with -short, fewer payloads and not alone.
func variants(v string) []variant {
	i := strings.LastIndexByte(v, '.')
	if i <= 0 {
		i = len(v) / 2
	}
	payloads := hostilePayloads
	if testing.Short() {
		payloads = shortPayloads
	}
	out := make([]variant, 0, 4*len(payloads))
	for _, p := range payloads {
		out = append(out, variant{v + p, p}, variant{p + v, p}, variant{v[:i] + p + v[i:], p})
		if !testing.Short() {
			out = append(out, variant{p, p})
		}
	}
	return out
}

// plainText is what a payload that a grammar refuses may be made of and
// still be accepted: letters, digits and . _ / : + @ - (with these a value
// can still be a name, a version, a path, an address or a topic).
func plainText(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._/:+@-", r)) {
			return false
		}
	}
	return true
}

// TestHostileValues puts every hostile payload in every string field of the
// YAML (found by reflection over spec.Environment, map keys included) and
// proves, for each, that Validate refuses it with a problem at the field's
// key path, or that every rendered file still means what it meant, with the
// value in its place: the same files, the same settings, lines, keys and
// command arguments, and each changed value exactly the benign one with
// the field's value replaced by the hostile one (units, environment files,
// HOCON, YAML and Erlang terms parsed as their programs parse them).
func TestHostileValues(t *testing.T) {
	patterns := stringPatterns(reflect.TypeFor[spec.Environment]())
	for _, p := range patterns {
		if hostilePolicies[p] == 0 {
			t.Errorf("%s: a string field of the YAML without a policy in hostilePolicies; add one: grammar (Validate holds it to a grammar), escaped (free text quoted where it is rendered) or notRendered (no host file holds it)", p)
		}
	}
	for p := range hostilePolicies {
		if !slices.Contains(patterns, p) {
			t.Errorf("hostilePolicies names %s, which is no longer a string field of the YAML", p)
		}
	}

	in := hostileInputs()
	seen := map[string]bool{}
	// refused[pattern][value] is set when Validate refused value somewhere;
	// accepted[pattern] lists the values it accepted that are not plain.
	refused := map[string]map[string]bool{}
	accepted := map[string][]string{}
	for _, b := range hostileBases(t) {
		tried := map[string]int{}
		for _, loc := range locations(t, b.env) {
			if loc.benign == "" {
				continue
			}
			// With -short, one place of each field (grants, rules and
			// listeners have many).
			if tried[loc.pattern]++; testing.Short() && tried[loc.pattern] > 1 {
				continue
			}
			// Only the services render differently with the other broker.
			if b.name != spec.BrokerEMQX && !strings.HasPrefix(loc.pattern, "services.") {
				continue
			}
			seen[loc.pattern] = true
			if refused[loc.pattern] == nil {
				refused[loc.pattern] = map[string]bool{}
			}
			t.Run(b.name+"/"+loc.path, func(t *testing.T) {
				for _, vr := range variants(loc.benign) {
					h := vr.value
					if h == loc.benign {
						continue
					}
					// A plain payload may make another valid value (a
					// renamed cluster, whose references then fail): it is
					// not held to name its own path.
					plain := plainText(vr.payload)
					path := loc.set(h)
					err := b.env.Validate()
					if err != nil {
						refused[loc.pattern][h] = true
						if msg := namesPath(err, path); msg != "" && !plain {
							t.Errorf("%s = %q refused, but %s:\n%v", loc.path, h, msg, err)
						}
						loc.restore()
						continue
					}
					if hasControl(h) {
						t.Errorf("%s = %q accepted: a value that is not one line of text", loc.path, h)
					}
					if !plain {
						accepted[loc.pattern] = append(accepted[loc.pattern], h)
					}
					files, err := Files(b.env, in)
					loc.restore()
					if err != nil && plain && loc.key {
						continue // a renamed listener has no certificate among the inputs
					}
					if err != nil {
						t.Errorf("%s = %q accepted by Validate, but the rendering fails: %v", loc.path, h, err)
						continue
					}
					changed, err := sameMeaning(b.files, files, loc.benign, h, plain)
					switch {
					case err != nil:
						t.Errorf("%s = %q accepted, and %v", loc.path, h, err)
					case changed != "" && hostilePolicies[loc.pattern] == notRendered:
						t.Errorf("%s = %q (policy notRendered) changes %s", loc.path, h, changed)
					case changed == "" && hostilePolicies[loc.pattern] == escaped && !plain && b.name == spec.BrokerEMQX:
						t.Errorf("%s = %q (policy escaped) changes no file: where does it land?", loc.path, h)
					}
				}
			})
		}
	}
	for _, p := range patterns {
		if !seen[p] {
			t.Errorf("%s: no value of it in the fixture (testdata/hostile/hostile.yaml over environments/defaults.yaml); set one so that the field is tested", p)
		}
	}
	// A grammar refuses every value that is not plain text, where the
	// field is in use (a broker's section is checked while it is the
	// broker).
	for _, p := range patterns {
		if hostilePolicies[p] != grammar {
			continue
		}
		var bad []string
		for _, h := range accepted[p] {
			if !refused[p][h] && !slices.Contains(bad, h) {
				bad = append(bad, h)
			}
		}
		if len(bad) > 0 {
			t.Errorf("%s (policy grammar) accepts %q", p, bad)
		}
	}
}

// namesPath returns "" when err is an ErrorList with a problem at path,
// else what is wrong.
func namesPath(err error, path string) string {
	var list spec.ErrorList
	if !errors.As(err, &list) {
		return "the error is not a spec.ErrorList"
	}
	for _, e := range list {
		if e.Path == path {
			return ""
		}
	}
	return "no problem names " + strconv.Quote(path)
}

// sameMeaning compares the files rendered with the benign value v and with
// the hostile value h: the same paths in the same order, and for each file
// whose bytes differ, the same leaves (keys, lines, arguments) where each
// key and value is the benign one, or the benign one with v replaced by h.
// With derived, a value may also differ otherwise (a template derives
// values from the field, such as a topic's ACL pattern; h is then plain
// text, which no file reads as syntax), its key not. It returns the paths
// of the files that changed.
func sameMeaning(benign, hostile []File, v, h string, derived bool) (string, error) {
	if len(benign) != len(hostile) {
		return "", fmt.Errorf("%d files are rendered instead of %d", len(hostile), len(benign))
	}
	var changed []string
	for i, bf := range benign {
		hf := hostile[i]
		if hf.Path != bf.Path || hf.Owner != bf.Owner || hf.Group != bf.Group || hf.Mode != bf.Mode {
			return "", fmt.Errorf("file %d is %s %s:%s %o instead of %s %s:%s %o", i, hf.Path, hf.Owner, hf.Group, hf.Mode, bf.Path, bf.Owner, bf.Group, bf.Mode)
		}
		if bytes.Equal(bf.Content, hf.Content) {
			continue
		}
		changed = append(changed, hf.Path)
		bl, err := parseFile(bf.Path, string(bf.Content))
		if err != nil {
			return "", fmt.Errorf("%s: the benign file does not parse: %v", bf.Path, err)
		}
		hl, err := parseFile(hf.Path, string(hf.Content))
		if err != nil {
			return "", fmt.Errorf("%s no longer parses: %v\n%s", hf.Path, err, hf.Content)
		}
		if len(hl) != len(bl) {
			return "", fmt.Errorf("%s holds %d values instead of %d:\n%s", hf.Path, len(hl), len(bl), hf.Content)
		}
		for j := range bl {
			bk, bv, hk, hv := bl[j].key, bl[j].value, hl[j].key, hl[j].value
			if hk != bk && hk != strings.ReplaceAll(bk, v, h) {
				return "", fmt.Errorf("%s: %q is where %q was:\n%s", hf.Path, hk, bk, hf.Content)
			}
			if hv != bv && hv != strings.ReplaceAll(bv, v, h) && !derived {
				return "", fmt.Errorf("%s: %s reads %q, want %q:\n%s", hf.Path, hk, hv, strings.ReplaceAll(bv, v, h), hf.Content)
			}
		}
	}
	return strings.Join(changed, ", "), nil
}

// TestHostileValuesThroughYAML writes a value with a line break in every
// string field of the fixture that is not a list item (and as a new key of
// every map) in the YAML itself, loads it, and checks that the error names
// the file, the line and column of the value (of the key, for a key) and
// the key path.
func TestHostileValuesThroughYAML(t *testing.T) {
	dir := hostileDir(t)
	src, err := os.ReadFile(filepath.Join(dir, "hostile.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	base, err := spec.Load(dir, "hostile", nil)
	if err != nil {
		t.Fatal(err)
	}
	const payload = "\nExecStartPre=+/bin/sh -c 'id>/pwned' #"
	n := 0
	for _, loc := range locations(t, base) {
		if strings.Contains(loc.path, "[") || loc.benign == "" {
			continue
		}
		n++
		t.Run(loc.path, func(t *testing.T) {
			var doc yaml.Node
			if err := yaml.Unmarshal(src, &doc); err != nil {
				t.Fatal(err)
			}
			keys := splitPath(loc.path)
			h := loc.benign + payload
			if loc.key {
				keys[len(keys)-1] = h
			}
			setYAML(doc.Content[0], keys, h, loc.key, loc.elem)
			out, err := yaml.Marshal(&doc)
			if err != nil {
				t.Fatal(err)
			}
			line, col := positionOf(t, out, keys, loc.key)
			if err := os.WriteFile(filepath.Join(dir, "hostile.yaml"), out, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.WriteFile(filepath.Join(dir, "hostile.yaml"), src, 0o644) })
			_, err = spec.Load(dir, "hostile", nil)
			if err == nil {
				t.Fatalf("loaded with %q", h)
			}
			want := fmt.Sprintf("%s:%d:%d: %s: ", filepath.Join(dir, "hostile.yaml"), line, col, join(strings.Join(keys[:len(keys)-1], "."), keys[len(keys)-1]))
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the error does not name %q:\n%v", want, err)
			}
		})
	}
	if n == 0 {
		t.Fatal("no location tried")
	}
}

// splitPath splits a key path whose keys hold no dot.
func splitPath(p string) []string { return strings.Split(p, ".") }

// setYAML sets the scalar at keys in the mapping n, adding the mappings on
// the way (merged over defaults.yaml key by key); with key, the last key
// is a new entry instead, a string or an empty mapping by elem.
func setYAML(n *yaml.Node, keys []string, value string, key bool, elem reflect.Kind) {
	for i, k := range keys {
		last := i == len(keys)-1
		var next *yaml.Node
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == k {
				next = n.Content[j+1]
			}
		}
		if next == nil || last {
			v := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			if last && !key {
				v = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value, Style: yaml.DoubleQuotedStyle}
			}
			if last && key && elem == reflect.String {
				v = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "x"}
			}
			if next != nil { // replace the value in place
				*next = *v
			} else {
				n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k, Style: yaml.DoubleQuotedStyle}, v)
				next = v
			}
		}
		if next.Kind == yaml.ScalarNode && !last { // null in the fixture: make it a mapping
			*next = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		}
		n = next
	}
}

// positionOf finds the line and column of the value (or key) at keys in the
// YAML document src.
func positionOf(t *testing.T, src []byte, keys []string, key bool) (int, int) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		t.Fatal(err)
	}
	n := doc.Content[0]
	for i, k := range keys {
		found := false
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == k {
				if i == len(keys)-1 && key {
					return n.Content[j].Line, n.Content[j].Column
				}
				n, found = n.Content[j+1], true
				break
			}
		}
		if !found {
			t.Fatalf("%q not in the written YAML:\n%s", keys, src)
		}
	}
	return n.Line, n.Column
}
