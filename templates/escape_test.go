package templates

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// hostilePayloads are values written to break out of where they land: shell
// metacharacters, systemd specifiers, variables and line continuations,
// environment-file, HOCON, YAML, Erlang and Mosquitto syntax, SQL, path
// traversal, and characters that are not one line of text.
var hostilePayloads = []string{
	`"`, `'`, "`", `\`, `\\`, `\"`, `$(id>/tmp/pwned)`, "${HOME}", "$HOME", "$$", "$",
	";", " ; id", "&& id", "| id", "<x", ">x",
	"%n", "%%", "%", "%%n",
	"\nExecStartPre=+/bin/sh -c 'id>/pwned' #", "\r\n[Service]\r\nUser=root", "\\\nUser=root", "x \\", `\x41\n`,
	"\nNODE_OPTIONS=--require=/tmp/x.js", `" NODE_OPTIONS="--require=/tmp/x.js`, "'\n#",
	"\" }\nnode.cookie = \"x", "${?HOME}", "}", "{", "= x", "# c", "// c", `""" x """`, "[1, 2]",
	"\nkey: value", ": x", "- x", " #c", "&a", "*a", "!!python/object:os.system", "|", ">", "---", "{x: y}", "'x'", "...",
	"\"}.\n{allow, all, subscribe, [\"#\"]}.", `"]}. {allow, all, all, ["#`,
	"\nuser root", " require_certificate false",
	"'; DROP TABLE positions; --", `"; DROP TABLE positions; --`,
	"../../etc/passwd", "/etc/shadow",
	"\x00", "\t", "\x1b[2J", "\x7f", "\u0085", "\u2028", "\xff", "\xc3",
	" x ", "é ✓ 日本", "\ufeff",
}

// hasControl reports whether s is not one line of valid UTF-8 text (what
// spec.Validate and the quoting functions refuse).
func hasControl(s string) bool { return noControl("", s) != nil }

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

// TestQuotingRoundTrips writes every hostile payload with each quoting
// function and reads it back with the parser of the file it is meant for:
// each comes back as exactly the value, in exactly one place, or the
// function refuses it.
func TestQuotingRoundTrips(t *testing.T) {
	for _, p := range hostilePayloads {
		for _, v := range []string{p, "a" + p + "b", p + p} {
			t.Run(strconv.Quote(v), func(t *testing.T) {
				checkSystemdArg(t, v)
				checkUnitValue(t, v)
				checkEnvQuote(t, v)
				checkHOCONString(t, v)
				checkYAMLString(t, v)
				checkErlangString(t, v)
			})
		}
	}
}

func checkSystemdArg(t *testing.T, v string) {
	t.Helper()
	q, err := systemdArg(v)
	if hasControl(v) {
		if err == nil {
			t.Errorf("systemdArg(%q) = %s, want an error", v, q)
		}
		return
	}
	if err != nil {
		t.Fatalf("systemdArg(%q): %v", v, err)
	}
	unit := "[Service]\nExecStart=/usr/bin/node " + q + " --after\n"
	l, err := parseUnit(unit)
	if err != nil {
		t.Fatalf("systemdArg(%q) = %s: the unit does not parse: %v", v, q, err)
	}
	want := []leaf{{"Service.ExecStart prefix", ""}, {"Service.ExecStart[0]", "/usr/bin/node"}, {"Service.ExecStart[1]", v}, {"Service.ExecStart[2]", "--after"}}
	if fmt.Sprint(l) != fmt.Sprint(want) {
		t.Errorf("systemdArg(%q) = %s: parsed as %q", v, q, l)
	}
}

func checkUnitValue(t *testing.T, v string) {
	t.Helper()
	q, err := unitValue(v)
	if hasControl(v) || strings.TrimSpace(v) != v || strings.HasSuffix(v, `\`) {
		if err == nil {
			t.Errorf("unitValue(%q) = %s, want an error", v, q)
		}
		return
	}
	if err != nil {
		t.Fatalf("unitValue(%q): %v", v, err)
	}
	l, err := parseUnit("[Unit]\nDescription=" + q + "\nAfter=x.service\n")
	want := []leaf{{"Unit.Description", v}, {"Unit.After", "x.service"}}
	if err != nil || fmt.Sprint(l) != fmt.Sprint(want) {
		t.Errorf("unitValue(%q) = %s: parsed as %q, %v", v, q, l, err)
	}
}

func checkEnvQuote(t *testing.T, v string) {
	t.Helper()
	q, err := envQuote(v)
	if hasControl(v) {
		if err == nil {
			t.Errorf("envQuote(%q) = %s, want an error", v, q)
		}
		return
	}
	if err != nil {
		t.Fatalf("envQuote(%q): %v", v, err)
	}
	l, err := parseSystemdEnv("# c\nA=" + q + "\nB=after\n")
	want := []leaf{{"A", v}, {"B", "after"}}
	if err != nil || fmt.Sprint(l) != fmt.Sprint(want) {
		t.Errorf("envQuote(%q) = %s: parsed as %q, %v", v, q, l, err)
	}
}

func checkHOCONString(t *testing.T, v string) {
	t.Helper()
	if !utf8Valid(v) {
		return // refused by validation; HOCON files are UTF-8
	}
	q := hoconString(v)
	m, err := parseHOCON("a {\n  b = " + q + "\n  c = after\n}\n")
	if err != nil {
		t.Fatalf("hoconString(%q) = %s: %v", v, q, err)
	}
	var l []leaf
	flattenHOCON(&l, "", m)
	want := []leaf{{`."a"."b" string`, v}, {`."a"."c" string`, "after"}}
	if fmt.Sprint(l) != fmt.Sprint(want) {
		t.Errorf("hoconString(%q) = %s: parsed as %q", v, q, l)
	}
}

func checkYAMLString(t *testing.T, v string) {
	t.Helper()
	if !utf8Valid(v) {
		return // refused by validation; YAML is UTF-8
	}
	q := yamlString(v)
	l, err := parseYAMLLeaves("a:\n  b: " + q + "\n  c:\n    - " + q + "\n    - after\n")
	want := []leaf{{".a.b !!str", v}, {".a.c[0] !!str", v}, {".a.c[1] !!str", "after"}}
	if err != nil || fmt.Sprint(l) != fmt.Sprint(want) {
		t.Errorf("yamlString(%q) = %s: parsed as %q, %v", v, q, l, err)
	}
}

func checkErlangString(t *testing.T, v string) {
	t.Helper()
	q, err := erlangString(v)
	if hasControl(v) {
		if err == nil {
			t.Errorf("erlangString(%q) = %s, want an error", v, q)
		}
		return
	}
	if err != nil {
		t.Fatalf("erlangString(%q): %v", v, err)
	}
	l, err := parseErlangTerms("{allow, all, publish, [" + q + "]}.\n{deny, all}.\n")
	if err != nil || len(l) != 18 || l[8].value != v {
		t.Errorf("erlangString(%q) = %s: parsed as %q, %v", v, q, l, err)
	}
}

// TestSystemdReadsQuotedArguments has systemd itself (systemd --test, which
// loads units and dumps them without running anything) read a unit whose
// commands carry every hostile payload through systemdArg and unitValue,
// and checks that each argument and the description come back as written
// (with $$ still doubled: systemd substitutes variables when it runs the
// command). It also checks that this file's unit parser reads them alike.
func TestSystemdReadsQuotedArguments(t *testing.T) {
	bin := "/lib/systemd/systemd"
	if _, err := os.Stat(bin); err != nil {
		t.Skip("systemd not installed (Debian package systemd)")
	}
	// A directory the unprivileged user below can read (t.TempDir's
	// parent is private).
	dir, err := os.MkdirTemp("", "acco-quoting-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var unit strings.Builder
	unit.WriteString("[Unit]\nDefaultDependencies=no\n")
	var want []string
	for _, p := range hostilePayloads {
		if hasControl(p) {
			continue
		}
		d, err := unitValue("acco " + p + " x")
		if err != nil {
			t.Fatal(err)
		}
		if len(want) == 0 {
			fmt.Fprintf(&unit, "Description=%s\n[Service]\n", d)
		}
		q, err := systemdArg(p)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&unit, "ExecStartPre=/bin/echo %s end\n", q)
		want = append(want, p)
	}
	unit.WriteString("ExecStart=/bin/true\n")
	if err := os.WriteFile(filepath.Join(dir, "acco-quoting.service"), []byte(unit.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{bin, "--test", "--system", "--no-pager", "--unit=acco-quoting.service"}
	if os.Getuid() == 0 { // systemd --test refuses to run as root
		sp, err := exec.LookPath("setpriv")
		if err != nil {
			t.Skip("running as root without setpriv: cannot run systemd --test as another user")
		}
		args = append([]string{sp, "--reuid=65534", "--regid=65534", "--clear-groups"}, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "SYSTEMD_UNIT_PATH="+dir, "SYSTEMD_LOG_LEVEL=warning")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Skipf("systemd --test did not run here: %v\n%s", err, stderr.String())
	}
	if strings.Contains(stderr.String(), "acco-quoting.service") {
		t.Errorf("systemd warns about the unit:\n%s", stderr.String())
	}
	var got []string
	var desc string
	for _, l := range strings.Split(stdout.String(), "\n") {
		l = strings.TrimSpace(l)
		if d, ok := strings.CutPrefix(l, "Description: acco "); ok {
			desc = d
		}
		cl, ok := strings.CutPrefix(l, "Command Line: /bin/echo ")
		if !ok {
			continue
		}
		words, err := splitDumpedCommand(cl)
		if err != nil || len(words) != 2 || words[1] != "end" {
			t.Errorf("systemd dumped %q (%q, %v), want one argument then end", cl, words, err)
			continue
		}
		got = append(got, words[0])
	}
	if len(got) != len(want) {
		t.Fatalf("systemd dumped %d commands, want %d:\n%s", len(got), len(want), stdout.String())
	}
	for i := range want {
		// At start, systemd reads $$ as $: what the program gets.
		if arg := strings.ReplaceAll(got[i], "$$", "$"); arg != want[i] {
			t.Errorf("systemd reads systemdArg(%q) as %q", want[i], arg)
		}
	}
	if want := hostilePayloads[0] + " x"; desc != want {
		t.Errorf("systemd reads the description as %q, want %q", desc, want)
	}
	// This file's parser agrees with systemd on the same unit.
	l, err := parseUnit(unit.String())
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for _, lf := range l {
		if strings.HasPrefix(lf.key, "Service.ExecStartPre[1]") {
			if lf.value != strings.ReplaceAll(got[i], "$$", "$") {
				t.Errorf("parseUnit reads %q where systemd reads %q", lf.value, got[i])
			}
			i++
		}
	}
}

// splitDumpedCommand splits a command line as systemd dumps it
// (quote_command_line): words separated by spaces, some in double quotes
// with \ escaping " \ ` and $.
func splitDumpedCommand(s string) ([]string, error) {
	var out []string
	for s != "" {
		if s[0] != '"' {
			w, rest, _ := strings.Cut(s, " ")
			out, s = append(out, w), rest
			continue
		}
		var b strings.Builder
		i := 1
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
			}
			b.WriteByte(s[i])
		}
		if i >= len(s) {
			return nil, fmt.Errorf("unterminated quote in %q", s)
		}
		out = append(out, b.String())
		s = strings.TrimPrefix(s[i+1:], " ")
	}
	return out, nil
}

// TestEnvQuoteReadByShell sources an environment file written with
// envQuote in /bin/sh, whose double-quote rules for \" \\ \` and \$ are
// systemd's, and checks each value arrives intact.
func TestEnvQuoteReadByShell(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	var file, script strings.Builder
	var want []string
	for i, p := range hostilePayloads {
		q, err := envQuote(p)
		if err != nil {
			continue
		}
		fmt.Fprintf(&file, "V%d=%s\n", i, q)
		fmt.Fprintf(&script, "printf '%%s\\0' \"$V%d\"\n", i)
		want = append(want, p)
	}
	f := filepath.Join(t.TempDir(), "x.env")
	if err := os.WriteFile(f, []byte(file.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sh, "-c", ". "+f+"\n"+script.String()).Output()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if fmt.Sprint(got) != fmt.Sprint(want) {
		for i := range want {
			if i >= len(got) || got[i] != want[i] {
				t.Errorf("sh reads envQuote(%q) as %q", want[i], got[min(i, len(got)-1)])
			}
		}
	}
	l, err := parseSystemdEnv(file.String())
	if err != nil {
		t.Fatal(err)
	}
	for i, lf := range l {
		if lf.value != want[i] {
			t.Errorf("parseSystemdEnv reads envQuote(%q) as %q", want[i], lf.value)
		}
	}
}

// TestParsersRefuse proves the parsers above can fail: what an injection
// produces is an error or a different set of leaves.
func TestParsersRefuse(t *testing.T) {
	bad := []struct {
		name string
		f    func() error
	}{
		{"unit: text outside Key=Value", func() error { _, err := parseUnit("[Service]\nExecStart=/bin/true\nid>/pwned\n"); return err }},
		{"unit: unbalanced quote", func() error { _, err := parseUnit("[Service]\nExecStart=/bin/echo \"x\n"); return err }},
		{"unit: invalid escape", func() error { _, err := parseUnit("[Service]\nExecStart=/bin/echo \\q\n"); return err }},
		{"unit: lone %", func() error { _, err := parseUnit("[Unit]\nDescription=100%\n"); return err }},
		{"unit: key before a section", func() error { _, err := parseUnit("User=root\n"); return err }},
		{"env: line without =", func() error { _, err := parseSystemdEnv("A=1\nrm -rf /\n"); return err }},
		{"env: unterminated quote", func() error { _, err := parseSystemdEnv("A=\"1\n"); return err }},
		{"docker env: line without =", func() error { _, err := parseDockerEnv("A=1\nHOME\n"); return err }},
		{"yaml: second document", func() error { _, err := parseYAMLLeaves("a: 1\n---\nb: 2\n"); return err }},
		{"yaml: alias", func() error { _, err := parseYAMLLeaves("a: &x 1\nb: *x\n"); return err }},
		{"erlang: unterminated string", func() error { _, err := parseErlangTerms("{allow, all, publish, [\"x]}.\n"); return err }},
	}
	for _, b := range bad {
		if b.f() == nil {
			t.Errorf("%s: parsed", b.name)
		}
	}
	// What systemd would substitute never reads as the text written.
	l, err := parseUnit("[Service]\nExecStart=/bin/echo %n $HOME ${X} ; /bin/id\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, lf := range l[2:6] {
		if !strings.Contains(lf.value, "\x00") {
			t.Errorf("%s = %q: a specifier, variable or separator read as text", lf.key, lf.value)
		}
	}
	// A continuation joins lines: the unit has one setting, not two.
	if l, err := parseUnit("[Service]\nExecStart=/bin/echo x \\\nUser=root\n"); err != nil || len(l) != 4 {
		t.Errorf("continuation: %q, %v", l, err)
	}
}
