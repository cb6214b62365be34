package spec

import (
	"maps"
	"net/netip"
	"slices"
	"strings"
)

// Naming rules, as messages say them.
const (
	envNameRule      = "use 1 to 20 lowercase letters, digits and dashes, starting with a letter and not ending with a dash"
	resourceNameRule = "use 1 to 32 lowercase letters, digits and dashes, starting with a letter and not ending with a dash"
	identRule        = "use 1 to 63 lowercase letters, digits and underscores, not starting with a digit (a PostgreSQL identifier that needs no quoting)"
)

func validEnvName(s string) bool { return isDashName(s, 20) }

func validResourceName(s string) bool { return isDashName(s, 32) }

// isDashName reports whether s is lowercase letters, digits and dashes,
// starts with a letter, does not end with a dash and has at most maxLen bytes.
func isDashName(s string, maxLen int) bool {
	if s == "" || len(s) > maxLen || !isLower(s[0]) || s[len(s)-1] == '-' {
		return false
	}
	for i := range len(s) {
		if c := s[i]; !isLower(c) && !isDigit(c) && c != '-' {
			return false
		}
	}
	return true
}

// isIdent reports whether s is a PostgreSQL identifier that needs no quoting.
func isIdent(s string) bool {
	if s == "" || len(s) > 63 || isDigit(s[0]) {
		return false
	}
	for i := range len(s) {
		if c := s[i]; !isLower(c) && !isDigit(c) && c != '_' {
			return false
		}
	}
	return true
}

// isProjectID reports whether s is 32 lowercase hexadecimal digits.
func isProjectID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := range len(s) {
		if c := s[i]; !isDigit(c) && !('a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// isUpperName reports whether s is upper-case words of letters and digits
// joined by dashes, starting with a letter (GRA11, EU-WEST-PAR,
// US-EAST-VA-1); digits are refused when !digits (GRA).
func isUpperName(s string, digits bool) bool {
	if s == "" || !isUpper(s[0]) {
		return false
	}
	for _, part := range strings.Split(s, "-") {
		if part == "" {
			return false
		}
		for i := range len(part) {
			if c := part[i]; !isUpper(c) && !(digits && isDigit(c)) {
				return false
			}
		}
	}
	return true
}

// isLowerName is isUpperName in lower case with digits allowed (gra,
// eu-west-par).
func isLowerName(s string) bool {
	return s == strings.ToLower(s) && isUpperName(strings.ToUpper(s), true)
}

func isLower(c byte) bool { return 'a' <= c && c <= 'z' }
func isUpper(c byte) bool { return 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// splitTable splits table or schema.table; the schema defaults to public.
// ok is false when either part is not an identifier (* is allowed as the
// table when star is true).
func splitTable(s string, star bool) (schema, table string, ok bool) {
	schema, table, qualified := strings.Cut(s, ".")
	if !qualified {
		schema, table = "public", s
	}
	ok = isIdent(schema) && (isIdent(table) || (star && table == "*"))
	return schema, table, ok
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// listOrNone joins names for a message.
func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// parseCIDR parses a network in CIDR notation, returning a message when s is
// not one.
func parseCIDR(s string) (netip.Prefix, string) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		if a, err := netip.ParseAddr(s); err == nil {
			return netip.Prefix{}, "\"" + s + "\" is an address, not a CIDR; write " + netip.PrefixFrom(a, a.BitLen()).String()
		}
		return netip.Prefix{}, "\"" + s + "\" is not a CIDR such as 203.0.113.0/24 or 2001:db8::/32"
	}
	if p != p.Masked() {
		return netip.Prefix{}, s + " has host bits set; write " + p.Masked().String()
	}
	return p, ""
}
