package templates

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"path"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/accoreboot/acco/internal/devicecred"
)

// hoconParser parses the subset of HOCON acco renders: objects (key { } and
// key = { }), dotted keys, = and : separators, quoted strings with JSON
// escapes, unquoted words and numbers, arrays, # and // comments, and comma
// or newline separators. Objects merge as HOCON merges them. It exists to
// catch unbalanced braces, bad quoting and duplicate scalar keys.
type hoconParser struct {
	s   []rune
	pos int
}

func parseHOCON(src string) (map[string]any, error) {
	p := &hoconParser{s: []rune(src)}
	obj := map[string]any{}
	if err := p.members(obj, false); err != nil {
		return nil, err
	}
	return obj, nil
}

func (p *hoconParser) errf(format string, a ...any) error {
	line := 1 + strings.Count(string(p.s[:p.pos]), "\n")
	return fmt.Errorf("line %d: %s", line, fmt.Sprintf(format, a...))
}

func (p *hoconParser) skip(newlines bool) {
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		switch {
		case c == '#' || (c == '/' && p.pos+1 < len(p.s) && p.s[p.pos+1] == '/'):
			for p.pos < len(p.s) && p.s[p.pos] != '\n' {
				p.pos++
			}
		case c == '\n' && newlines, c == ',' && newlines, c == ' ', c == '\t', c == '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *hoconParser) members(obj map[string]any, braced bool) error {
	for {
		p.skip(true)
		if p.pos >= len(p.s) {
			if braced {
				return p.errf("unclosed {")
			}
			return nil
		}
		if p.s[p.pos] == '}' {
			if !braced {
				return p.errf("unexpected }")
			}
			p.pos++
			return nil
		}
		path, err := p.key()
		if err != nil {
			return err
		}
		p.skip(false)
		if p.pos < len(p.s) && (p.s[p.pos] == '=' || p.s[p.pos] == ':') {
			p.pos++
			p.skip(false)
		} else if p.pos >= len(p.s) || p.s[p.pos] != '{' {
			return p.errf("expected = or { after key %q", strings.Join(path, "."))
		}
		v, err := p.value()
		if err != nil {
			return err
		}
		if err := set(obj, path, v); err != nil {
			return p.errf("%v", err)
		}
	}
}

func set(obj map[string]any, path []string, v any) error {
	for _, k := range path[:len(path)-1] {
		next, ok := obj[k].(map[string]any)
		if !ok {
			if _, exists := obj[k]; exists {
				return fmt.Errorf("key %q is both a value and an object", k)
			}
			next = map[string]any{}
			obj[k] = next
		}
		obj = next
	}
	last := path[len(path)-1]
	old, exists := obj[last]
	if om, ok := old.(map[string]any); ok {
		if nm, ok := v.(map[string]any); ok {
			for k, x := range nm {
				if err := set(om, []string{k}, x); err != nil {
					return err
				}
			}
			return nil
		}
	}
	if exists {
		return fmt.Errorf("key %q set twice", last)
	}
	obj[last] = v
	return nil
}

func (p *hoconParser) key() ([]string, error) {
	var parts []string
	for {
		if p.pos < len(p.s) && p.s[p.pos] == '"' {
			s, err := p.quoted()
			if err != nil {
				return nil, err
			}
			parts = append(parts, s)
		} else {
			start := p.pos
			for p.pos < len(p.s) && (unicode.IsLetter(p.s[p.pos]) || unicode.IsDigit(p.s[p.pos]) || p.s[p.pos] == '_' || p.s[p.pos] == '-') {
				p.pos++
			}
			if start == p.pos {
				return nil, p.errf("expected a key, found %q", string(p.s[p.pos:min(p.pos+10, len(p.s))]))
			}
			parts = append(parts, string(p.s[start:p.pos]))
		}
		if p.pos < len(p.s) && p.s[p.pos] == '.' {
			p.pos++
			continue
		}
		return parts, nil
	}
}

func (p *hoconParser) quoted() (string, error) {
	start := p.pos
	p.pos++
	for p.pos < len(p.s) {
		switch p.s[p.pos] {
		case '\\':
			p.pos += 2
		case '\n':
			return "", p.errf("newline in a quoted string")
		case '"':
			p.pos++
			s, err := strconv.Unquote(string(p.s[start:p.pos]))
			if err != nil {
				return "", p.errf("bad string %s: %v", string(p.s[start:p.pos]), err)
			}
			return s, nil
		default:
			p.pos++
		}
	}
	return "", p.errf("unterminated string")
}

func (p *hoconParser) value() (any, error) {
	if p.pos >= len(p.s) {
		return nil, p.errf("missing value")
	}
	switch c := p.s[p.pos]; c {
	case '{':
		p.pos++
		m := map[string]any{}
		return m, p.members(m, true)
	case '[':
		p.pos++
		var arr []any
		for {
			p.skip(true)
			if p.pos >= len(p.s) {
				return nil, p.errf("unclosed [")
			}
			if p.s[p.pos] == ']' {
				p.pos++
				return arr, nil
			}
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
	case '"':
		return p.quoted()
	default:
		start := p.pos
		for p.pos < len(p.s) && !strings.ContainsRune(",]}\n#", p.s[p.pos]) {
			p.pos++
		}
		w := strings.TrimSpace(string(p.s[start:p.pos]))
		if w == "" || strings.ContainsAny(w, "{[\"=") {
			return nil, p.errf("bad unquoted value %q", w)
		}
		switch w {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		if n, err := strconv.ParseFloat(w, 64); err == nil {
			return n, nil
		}
		return w, nil
	}
}

func lookup(m map[string]any, dotted string) any {
	var v any = m
	for _, k := range strings.Split(dotted, ".") {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

func TestHOCONParserRejects(t *testing.T) {
	for _, bad := range []string{
		"a { b = 1",
		"a = \"x",
		"a = 1\na = 2",
		"a = 1 }",
		"a b",
	} {
		if _, err := parseHOCON(bad); err == nil {
			t.Errorf("parseHOCON(%q) accepted", bad)
		}
	}
}

// TestEMQXConfigParses parses every rendered emqx.conf and checks what acco
// promises in it: device authentication on, ACL no_match deny, dashboard
// password and cookie from the inputs, the dashboard on loopback, and the
// positions rule wired to actions that exist on a connector that exists.
func TestEMQXConfigParses(t *testing.T) {
	in := sampleInputs()
	n := 0
	for name, e := range envs(t) {
		for _, f := range render(t, e) {
			if path.Base(f.Path) != "emqx.conf" {
				continue
			}
			n++
			c, err := parseHOCON(string(f.Content))
			if err != nil {
				t.Fatalf("%s: emqx.conf does not parse: %v\n%s", name, err, f.Content)
			}
			want := map[string]any{
				"node.cookie":                   "cookie-S3CRET",
				"dashboard.default_password":    in.EMQXDashboardPassword,
				"dashboard.listeners.http.bind": "127.0.0.1:18083",
				"authorization.no_match":        "deny",
				"listeners.tcp.default.enable":  false,
				"listeners.tcp.mqtt.bind":       "0.0.0.0:1883",
			}
			if name == "preprod" || name == "prod" {
				// the backend's, on the host; trackers use mqtts
				want["listeners.tcp.mqtt.bind"] = "127.0.0.1:1883"
			}
			for k, w := range want {
				if got := lookup(c, k); got != w {
					t.Errorf("%s: %s = %v, want %v", name, k, got, w)
				}
			}
			authn, _ := c["authentication"].([]any)
			if len(authn) != 1 {
				t.Fatalf("%s: authentication = %v, want one authenticator", name, c["authentication"])
			}
			a := authn[0].(map[string]any)
			if a["enable"] != true || a["mechanism"] != "password_based" || a["backend"] != "postgresql" {
				t.Errorf("%s: authenticator = %v", name, a)
			}
			checkEMQXVerifiesDeviceRows(t, name, a)
			rule, _ := lookup(c, "rule_engine.rules.positions").(map[string]any)
			if rule == nil {
				t.Fatalf("%s: no positions rule", name)
			}
			acts, _ := rule["actions"].([]any)
			if len(acts) == 0 {
				t.Errorf("%s: the positions rule has no action", name)
			}
			for _, a := range acts {
				typ, an, _ := strings.Cut(a.(string), ":")
				act, _ := lookup(c, "actions."+typ+"."+an).(map[string]any)
				if act == nil {
					t.Errorf("%s: rule action %s is not defined", name, a)
					continue
				}
				conn, _ := act["connector"].(string)
				if lookup(c, "connectors."+typ+"."+conn) == nil {
					t.Errorf("%s: action %s uses undefined connector %s", name, a, conn)
				}
				sql, _ := lookup(act, "parameters.sql").(string)
				if !strings.HasPrefix(sql, "INSERT INTO ") || strings.HasSuffix(sql, ";") {
					t.Errorf("%s: action %s sql = %q", name, a, sql)
				}
			}
			if pw, _ := lookup(c, "connectors.pgsql.positions.password").(string); !strings.HasPrefix(pw, "file:///etc/emqx/secrets/") {
				t.Errorf("%s: the connector password is not read from a file: %q", name, pw)
			}
		}
	}
	if n == 0 {
		t.Fatal("no emqx.conf rendered")
	}
}

// checkEMQXVerifiesDeviceRows hashes a password the way the rendered
// authenticator is configured to (its password_hash_algorithm block, read
// back from the parsed HOCON) and checks that a row stored by acco device
// add (devicecred.New) verifies, and a wrong password does not.
func checkEMQXVerifiesDeviceRows(t *testing.T, name string, a map[string]any) {
	t.Helper()
	alg, _ := a["password_hash_algorithm"].(map[string]any)
	if alg["name"] != "pbkdf2" {
		t.Fatalf("%s: password_hash_algorithm = %v, want pbkdf2", name, alg)
	}
	macs := map[string]func() hash.Hash{"sha256": sha256.New, "sha512": sha512.New}
	mac := macs[fmt.Sprint(alg["mac_fun"])]
	iter, _ := strconv.Atoi(fmt.Sprint(alg["iterations"]))
	dk, _ := strconv.Atoi(fmt.Sprint(alg["dk_length"]))
	if mac == nil || iter <= 0 || dk <= 0 {
		t.Fatalf("%s: password_hash_algorithm = %v", name, alg)
	}
	if q := fmt.Sprint(a["query"]); !strings.Contains(q, "password_hash, salt") || !strings.Contains(q, devicecred.Table) {
		t.Errorf("%s: query %q does not read password_hash and salt from %s", name, q, devicecred.Table)
	}
	emqx := func(password, salt string) string { // emqx_passwd:hash({pbkdf2, ...})
		k, err := pbkdf2.Key(mac, password, []byte(salt), iter, dk)
		if err != nil {
			t.Fatal(err)
		}
		return hex.EncodeToString(k)
	}
	pw, _ := devicecred.NewPassword()
	row, err := devicecred.New(pw)
	if err != nil {
		t.Fatal(err)
	}
	if emqx(pw, row.Salt) != row.PasswordHash {
		t.Errorf("%s: a credential from acco device add does not verify with the authenticator's algorithm %v", name, alg)
	}
	if emqx(pw+"x", row.Salt) == row.PasswordHash {
		t.Errorf("%s: a wrong password verifies", name)
	}
}
