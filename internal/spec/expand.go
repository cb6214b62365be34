package spec

import (
	"fmt"
	"strings"
)

// expand replaces ${VAR} and ${VAR:-default} in s with values from lookup.
// ${VAR} must be set and not empty; ${VAR:-default} takes default when VAR is
// unset or empty. "$${" stands for a literal "${". Any other "$" is kept.
// It returns the expanded string, or a message saying what is wrong.
func expand(s string, lookup func(string) (string, bool)) (string, string) {
	if !strings.Contains(s, "${") {
		return s, ""
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), ""
		}
		if i > 0 && s[i-1] == '$' { // "$${": a literal "${"
			b.WriteString(s[:i-1] + "${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Sprintf("unterminated ${ in %q: write ${NAME} or ${NAME:-default}", s[i:])
		}
		expr := s[i+2 : i+end]
		s = s[i+end+1:]
		name, def, hasDef := strings.Cut(expr, ":-")
		if !validVarName(name) {
			return "", fmt.Sprintf("bad variable reference ${%s}: write ${NAME} or ${NAME:-default}, where NAME is letters, digits and _", expr)
		}
		var val string
		var ok bool
		if lookup != nil {
			val, ok = lookup(name)
		}
		switch {
		case ok && val != "":
			b.WriteString(val)
		case hasDef:
			b.WriteString(def)
		case ok:
			return "", fmt.Sprintf("environment variable %s is set but empty; set it, or write ${%s:-default}", name, name)
		default:
			return "", fmt.Sprintf("environment variable %s is not set; export it, or write ${%s:-default}", name, name)
		}
	}
}

func validVarName(name string) bool {
	if name == "" {
		return false
	}
	for i, c := range name {
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
