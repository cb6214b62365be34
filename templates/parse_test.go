package templates

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Strict parsers for the files acco renders, as the programs that read them
// do, for tests that compare what a file means rather than its bytes. Each
// turns a file into leaves: the values it holds, in order, under a key that
// says where each is (a unit's section and setting, an argument's index, a
// HOCON or YAML path, an environment variable's name, a token of a line).

// leaf is one value of a parsed file and where it is.
type leaf struct{ key, value string }

// Markers stand for what a program would substitute, so that a value that
// reads as a specifier or a variable never equals plain text.
const (
	specifierMark = "\x00specifier:"
	variableMark  = "\x00variable\x00"
	separatorMark = "\x00command separator\x00"
)

// parseFile parses a rendered file with the parser its path calls for.
func parseFile(path, content string) ([]leaf, error) {
	switch {
	case strings.HasSuffix(path, ".service") || strings.HasPrefix(path, "/etc/systemd/"):
		return parseUnit(content)
	case path == "/etc/acco/backend.env":
		return parseSystemdEnv(content)
	case path == "/etc/powersync/powersync.env":
		return parseDockerEnv(content)
	case strings.HasSuffix(path, ".yaml"):
		return parseYAMLLeaves(content)
	case path == "/etc/emqx/emqx.conf":
		m, err := parseHOCON(content)
		if err != nil {
			return nil, err
		}
		var out []leaf
		flattenHOCON(&out, "", m)
		return out, nil
	case path == "/etc/emqx/acl.conf":
		return parseErlangTerms(content)
	case strings.HasSuffix(path, ".pem") || strings.HasSuffix(path, ".crt") || strings.HasSuffix(path, ".key") || strings.HasSuffix(path, ".pass"):
		return []leaf{{"content", content}}, nil
	default: // Mosquitto's files, apt sources and settings, sysusers: lines of words
		return parseWordLines(content), nil
	}
}

// unitKeyPattern and unitSectionPattern are what systemd's unit files use.
var (
	unitKeyPattern     = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]*$`)
	unitSectionPattern = regexp.MustCompile(`^\[[A-Za-z][A-Za-z0-9-]*\]$`)
)

// parseUnit reads a systemd unit file or drop-in as systemd's config parser
// does: comment lines (# or ;), [Section] lines, Key=Value lines with
// surrounding whitespace stripped, and a line ending in an odd number of
// backslashes continued by the next (the backslash read as a space).
// Specifiers (%x) in values are marked, %% read as %. Exec*= values are
// split into their prefix and arguments (see parseExec).
func parseUnit(src string) ([]leaf, error) {
	var out []leaf
	section := ""
	cont := ""
	continued := false
	lines := strings.Split(src, "\n")
	for n, raw := range lines {
		if continued {
			t := strings.TrimSpace(raw)
			if strings.HasPrefix(t, "#") || strings.HasPrefix(t, ";") {
				continue // systemd skips comments inside a continuation
			}
			raw = cont + raw
		}
		if odd := len(raw) - len(strings.TrimRight(raw, `\`)); odd%2 == 1 {
			cont, continued = raw[:len(raw)-1]+" ", true
			if n == len(lines)-1 {
				return nil, fmt.Errorf("line %d: continuation at the end of the file", n+1)
			}
			continue
		}
		cont, continued = "", false
		l := strings.TrimSpace(raw)
		switch {
		case l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";"):
			continue
		case strings.HasPrefix(l, "["):
			if !unitSectionPattern.MatchString(l) {
				return nil, fmt.Errorf("line %d: bad section header %q", n+1, l)
			}
			section = strings.Trim(l, "[]")
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || !unitKeyPattern.MatchString(k) {
			return nil, fmt.Errorf("line %d: not Key=Value: %q", n+1, l)
		}
		if section == "" {
			return nil, fmt.Errorf("line %d: %s before any section", n+1, k)
		}
		key := section + "." + k
		if !strings.HasPrefix(k, "Exec") {
			s, err := expandSpecifiers(v)
			if err != nil {
				return nil, fmt.Errorf("line %d: %s: %v", n+1, k, err)
			}
			out = append(out, leaf{key, s})
			continue
		}
		prefix, args, err := parseExec(v)
		if err != nil {
			return nil, fmt.Errorf("line %d: %s: %v", n+1, k, err)
		}
		out = append(out, leaf{key + " prefix", prefix})
		for i, a := range args {
			out = append(out, leaf{fmt.Sprintf("%s[%d]", key, i), a})
		}
	}
	return out, nil
}

// expandSpecifiers marks systemd's specifiers: %% is %, %x stands for
// something systemd substitutes.
func expandSpecifiers(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 == len(s) {
			return "", fmt.Errorf("a lone %% at the end of %q", s)
		}
		i++
		if s[i] == '%' {
			b.WriteByte('%')
		} else {
			b.WriteString(specifierMark + string(s[i]) + "\x00")
		}
	}
	return b.String(), nil
}

// expandVariables marks what systemd substitutes in a command's arguments
// when it runs it: $$ is $, any other $ starts a variable.
func expandVariables(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] != '$':
			b.WriteByte(s[i])
		case i+1 < len(s) && s[i+1] == '$':
			b.WriteByte('$')
			i++
		default:
			b.WriteString(variableMark)
		}
	}
	return b.String()
}

// parseExec splits an Exec*= value as systemd does (config_parse_exec in
// systemd 252): words with quotes removed and C escapes read
// (extract_first_word with EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE), the
// executable's prefix characters (-@:+!) taken off the first word, a lone ;
// separating commands and \; a literal semicolon; then specifiers in each
// word, and the variables systemd substitutes at start.
func parseExec(v string) (prefix string, args []string, err error) {
	p := strings.TrimLeft(v, " \t")
	for first := true; p != ""; first = false {
		if !first {
			switch {
			case p[0] == ';' && (len(p) == 1 || strings.ContainsRune(" \t", rune(p[1]))):
				args = append(args, separatorMark)
				p = strings.TrimLeft(p[1:], " \t")
				continue
			case strings.HasPrefix(p, `\;`) && (len(p) == 2 || strings.ContainsRune(" \t", rune(p[2]))):
				args = append(args, ";")
				p = strings.TrimLeft(p[2:], " \t")
				continue
			}
		}
		var w string
		w, p, err = extractWord(p)
		if err != nil {
			return "", nil, err
		}
		if first {
			for w != "" && strings.ContainsRune("-@:+!", rune(w[0])) {
				prefix, w = prefix+w[:1], w[1:]
			}
		}
		if w, err = expandSpecifiers(w); err != nil {
			return "", nil, err
		}
		args = append(args, expandVariables(w))
		p = strings.TrimLeft(p, " \t")
	}
	if len(args) == 0 {
		return "", nil, errors.New("no command")
	}
	return prefix, args, nil
}

// extractWord reads one word of a command line: whitespace ends it outside
// quotes; ' and " quote anywhere in a word; a backslash starts a C escape
// inside and outside quotes.
func extractWord(p string) (word, rest string, err error) {
	var b strings.Builder
	var quote byte
	i := 0
	for i < len(p) {
		c := p[i]
		switch {
		case c == '\\':
			r, n, err := cUnescape(p[i+1:])
			if err != nil {
				return "", "", err
			}
			b.WriteString(r)
			i += 1 + n
			continue
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			b.WriteByte(c)
		case c == '\'' || c == '"':
			quote = c
		case c == ' ' || c == '\t':
			return b.String(), p[i:], nil
		default:
			b.WriteByte(c)
		}
		i++
	}
	if quote != 0 {
		return "", "", fmt.Errorf("unbalanced quoting in %q", p)
	}
	return b.String(), "", nil
}

// cUnescape reads the escape after a backslash as systemd's cunescape_one
// does; it returns what it stands for and how many bytes it took.
func cUnescape(s string) (string, int, error) {
	if s == "" {
		return "", 0, errors.New("a backslash at the end")
	}
	simple := map[byte]string{'a': "\a", 'b': "\b", 'f': "\f", 'n': "\n", 'r': "\r", 't': "\t", 'v': "\v", '\\': `\`, '"': `"`, '\'': "'", 's': " "}
	if r, ok := simple[s[0]]; ok {
		return r, 1, nil
	}
	hex := func(n int) (string, int, error) {
		if len(s) < 1+n {
			return "", 0, fmt.Errorf("short escape \\%s", s)
		}
		v, err := strconv.ParseUint(s[1:1+n], 16, 32)
		if err != nil || v == 0 {
			return "", 0, fmt.Errorf("bad escape \\%s", s[:1+n])
		}
		if n == 2 {
			return string([]byte{byte(v)}), 1 + n, nil
		}
		return string(rune(v)), 1 + n, nil
	}
	switch s[0] {
	case 'x':
		return hex(2)
	case 'u':
		return hex(4)
	case 'U':
		return hex(8)
	}
	if s[0] >= '0' && s[0] <= '7' {
		if len(s) < 3 {
			return "", 0, fmt.Errorf("short octal escape \\%s", s)
		}
		v, err := strconv.ParseUint(s[:3], 8, 8)
		if err != nil || v == 0 {
			return "", 0, fmt.Errorf("bad octal escape \\%s", s[:3])
		}
		return string([]byte{byte(v)}), 3, nil
	}
	return "", 0, fmt.Errorf("invalid escape \\%c", s[0])
}

// envNamePattern is a variable name systemd accepts in an EnvironmentFile.
var envNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// parseSystemdEnv reads an EnvironmentFile as systemd 252 does
// (parse_env_file_internal): KEY=VALUE lines; # and ; start comment lines;
// unquoted values lose trailing whitespace and take \x as x; in single
// quotes everything is literal; in double quotes \" \\ \` \$ are the
// character escaped, a backslash before a line break continues the value,
// any other backslash stays. Quoted and unquoted parts concatenate. A line
// without = or with an invalid name is an error here (systemd ignores it).
func parseSystemdEnv(src string) ([]leaf, error) {
	const (
		preKey = iota
		key
		preValue
		value
		valueEscape
		singleQuote
		doubleQuote
		doubleQuoteEscape
		comment
		commentEscape
	)
	var out []leaf
	var k, v strings.Builder
	trailing := 0 // trailing whitespace bytes of an unquoted value
	state := preKey
	push := func() error {
		name := strings.TrimRight(k.String(), " \t")
		val := v.String()
		val = val[:len(val)-trailing]
		if !envNamePattern.MatchString(name) {
			return fmt.Errorf("invalid variable name %q", name)
		}
		if !utf8.ValidString(val) {
			return fmt.Errorf("%s: value is not UTF-8", name)
		}
		out = append(out, leaf{name, val})
		k.Reset()
		v.Reset()
		trailing = 0
		return nil
	}
	for i := 0; i < len(src); i++ {
		c := src[i]
		nl := c == '\n' || c == '\r'
		ws := c == ' ' || c == '\t'
		switch state {
		case preKey:
			switch {
			case c == '#' || c == ';':
				state = comment
			case !ws && !nl:
				state = key
				k.WriteByte(c)
			}
		case key:
			switch {
			case nl:
				return nil, fmt.Errorf("line without =: %q", k.String())
			case c == '=':
				state = preValue
			default:
				k.WriteByte(c)
			}
		case preValue:
			switch {
			case nl:
				if err := push(); err != nil {
					return nil, err
				}
				state = preKey
			case c == '\'':
				state = singleQuote
			case c == '"':
				state = doubleQuote
			case c == '\\':
				state = valueEscape
			case !ws:
				state = value
				v.WriteByte(c)
			}
		case value:
			switch {
			case nl:
				if err := push(); err != nil {
					return nil, err
				}
				state = preKey
			case c == '\\':
				state = valueEscape
				trailing = 0
			default:
				v.WriteByte(c)
				if ws {
					trailing++
				} else {
					trailing = 0
				}
			}
		case valueEscape:
			state = value
			if c != '\n' {
				v.WriteByte(c)
			}
		case singleQuote:
			if c == '\'' {
				state = preValue
			} else {
				v.WriteByte(c)
			}
		case doubleQuote:
			switch c {
			case '"':
				state = preValue
			case '\\':
				state = doubleQuoteEscape
			default:
				v.WriteByte(c)
			}
		case doubleQuoteEscape:
			state = doubleQuote
			switch {
			case strings.IndexByte("\"\\`$", c) >= 0:
				v.WriteByte(c)
			case c != '\n':
				v.WriteByte('\\')
				v.WriteByte(c)
			}
		case comment:
			switch {
			case c == '\\':
				state = commentEscape
			case nl:
				state = preKey
			}
		case commentEscape:
			state = comment
		}
	}
	switch state {
	case preValue, value, valueEscape:
		if err := push(); err != nil {
			return nil, err
		}
	case key:
		return nil, fmt.Errorf("line without =: %q", k.String())
	case singleQuote, doubleQuote, doubleQuoteEscape:
		return nil, errors.New("unterminated quote at the end of the file")
	}
	return out, nil
}

// parseDockerEnv reads a docker --env-file: # comment lines, blank lines,
// and KEY=VALUE lines taken literally (no quoting); a line without = would
// import the variable from docker's own environment and is an error here.
func parseDockerEnv(src string) ([]leaf, error) {
	var out []leaf
	for n, l := range strings.Split(src, "\n") {
		t := strings.TrimLeft(l, " \t")
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		k, v, ok := strings.Cut(t, "=")
		if !ok || !envNamePattern.MatchString(k) {
			return nil, fmt.Errorf("line %d: not KEY=VALUE: %q", n+1, l)
		}
		out = append(out, leaf{k, v})
	}
	return out, nil
}

// parseYAMLLeaves reads one YAML document (a second document, an anchor or
// an alias is an error) into its scalar leaves, keyed by path and tag.
func parseYAMLLeaves(src string) ([]leaf, error) {
	dec := yaml.NewDecoder(strings.NewReader(src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("more than one YAML document (%v)", err)
	}
	var out []leaf
	var walk func(n *yaml.Node, path string) error
	walk = func(n *yaml.Node, path string) error {
		if n.Anchor != "" || n.Kind == yaml.AliasNode {
			return fmt.Errorf("%s: anchor or alias", path)
		}
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				if err := walk(c, path); err != nil {
					return err
				}
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i]
				if k.Kind != yaml.ScalarNode || k.Tag != "!!str" {
					return fmt.Errorf("%s: key %q is not a string", path, k.Value)
				}
				if err := walk(n.Content[i+1], path+"."+k.Value); err != nil {
					return err
				}
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				if err := walk(c, fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
		case yaml.ScalarNode:
			out = append(out, leaf{path + " " + n.Tag, n.Value})
		}
		return nil
	}
	return out, walk(&doc, "")
}

// flattenHOCON lists the leaves of a parsed HOCON object, by sorted path.
func flattenHOCON(out *[]leaf, path string, v any) {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			flattenHOCON(out, path+"."+strconv.Quote(k), x[k])
		}
	case []any:
		for i, e := range x {
			flattenHOCON(out, fmt.Sprintf("%s[%d]", path, i), e)
		}
	case string:
		*out = append(*out, leaf{path + " string", x})
	default:
		*out = append(*out, leaf{fmt.Sprintf("%s %T", path, x), fmt.Sprint(x)})
	}
}

// parseErlangTerms tokenizes Erlang terms (EMQX's acl.conf): % comments,
// strings in double quotes (\\ \" and the other escapes read as Erlang
// does), atoms and words, and punctuation.
func parseErlangTerms(src string) ([]leaf, error) {
	var out []leaf
	s := []byte(src)
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '%':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '"':
			var b bytes.Buffer
			i++
			for {
				if i >= len(s) {
					return nil, errors.New("unterminated string")
				}
				if s[i] == '"' {
					i++
					break
				}
				if s[i] == '\\' {
					if i+1 >= len(s) {
						return nil, errors.New("a backslash at the end")
					}
					e := map[byte]byte{'n': '\n', 't': '\t', 'r': '\r', 's': ' ', 'e': 27, 'b': 8, 'f': 12, 'v': 11, 'd': 127}
					if r, ok := e[s[i+1]]; ok {
						b.WriteByte(r)
					} else {
						b.WriteByte(s[i+1]) // \\ \" \' and the rest: the character
					}
					i += 2
					continue
				}
				b.WriteByte(s[i])
				i++
			}
			out = append(out, leaf{fmt.Sprintf("token %d string", len(out)), b.String()})
		case strings.IndexByte("{}[],.", c) >= 0:
			out = append(out, leaf{fmt.Sprintf("token %d punctuation", len(out)), string(c)})
			i++
		default:
			j := i
			for j < len(s) && (s[j] == '_' || s[j] == '@' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			if j == i {
				return nil, fmt.Errorf("unexpected %q", c)
			}
			out = append(out, leaf{fmt.Sprintf("token %d word", len(out)), string(s[i:j])})
			i = j
		}
	}
	return out, nil
}

// parseWordLines splits a line-based configuration (Mosquitto, apt,
// sysusers) into the words of each line.
func parseWordLines(src string) []leaf {
	var out []leaf
	for n, l := range strings.Split(src, "\n") {
		for i, w := range strings.Fields(l) {
			out = append(out, leaf{fmt.Sprintf("line %d word %d", n+1, i), w})
		}
	}
	return out
}
