package templates

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Quoting for the files the templates write. Validation (spec.Validate)
// already refuses control characters in every string of the YAML and holds
// names, paths and references to their grammar; these functions are the
// second layer: each writes a value so that the file's own parser reads back
// exactly that value, or fails the rendering when the file cannot hold it.

// noControl returns an error when s is not one line of valid UTF-8 text:
// a character that would start a new line, another control character, or
// bytes that are not UTF-8, where a one-line value goes.
func noControl(where, s string) error {
	for i, r := range s {
		if r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD") {
			return fmt.Errorf("%s cannot hold %q: not UTF-8 at offset %d", where, s, i)
		}
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return fmt.Errorf("%s cannot hold %q: control character %U at offset %d", where, s, r, i)
		}
	}
	return nil
}

// systemdSafe reports whether s can be an Exec*= argument as it is: no
// quoting, escape, specifier (%), variable ($) or separator (;) character.
func systemdSafe(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_./:@+,=-", r)) {
			return false
		}
	}
	return true
}

// systemdArg writes s as one argument of a systemd Exec*= command line:
// unchanged when it holds only safe characters, else in double quotes with
// \ and " escaped by a backslash, % written %% (specifiers are expanded in
// command lines) and $ written $$ (systemd substitutes $VAR and ${VAR} in
// arguments). See systemd.service(5), "Command lines".
func systemdArg(s string) (string, error) {
	if err := noControl("a systemd command line", s); err != nil {
		return "", err
	}
	if systemdSafe(s) {
		return s, nil
	}
	return quote(s, map[rune]string{'\\': `\\`, '"': `\"`, '%': `%%`, '$': `$$`}), nil
}

// unitValue writes s as the value of a plain unit setting such as
// Description=: % is written %% (specifiers are expanded); values have no
// quoting, so a value systemd would change (leading or trailing
// whitespace, a trailing backslash, which continues the line) is an error.
func unitValue(s string) (string, error) {
	if err := noControl("a systemd unit setting", s); err != nil {
		return "", err
	}
	if strings.TrimSpace(s) != s || strings.HasSuffix(s, `\`) {
		return "", fmt.Errorf("a systemd unit setting cannot hold %q: leading or trailing whitespace, or a trailing backslash", s)
	}
	return strings.ReplaceAll(s, "%", "%%"), nil
}

// envQuote quotes a value for a systemd EnvironmentFile: double quotes, in
// which systemd reads \" \\ \` and \$ as the character escaped and nothing
// else specially (no variable expansion); the same escapes keep the file
// readable by a shell.
func envQuote(s string) (string, error) {
	if err := noControl("an environment file", s); err != nil {
		return "", err
	}
	return quote(s, map[rune]string{'\\': `\\`, '"': `\"`, '$': `\$`, '`': "\\`"}), nil
}

// erlangString writes s as an Erlang string literal (EMQX's ACL file is
// Erlang terms): double quotes with \ and " escaped.
func erlangString(s string) (string, error) {
	if err := noControl("an Erlang string", s); err != nil {
		return "", err
	}
	return quote(s, map[rune]string{'\\': `\\`, '"': `\"`}), nil
}

// quote writes s in double quotes, each rune in escapes replaced by its
// escape.
func quote(s string, escapes map[rune]string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		if e, ok := escapes[r]; ok {
			b.WriteString(e)
		} else {
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
