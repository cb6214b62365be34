package configure

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

// Facts is what one probe learnt about a host.
type Facts struct {
	Files    map[string]FileFact
	Units    map[string]UnitFact
	Packages map[string]string // name -> installed version ("" when not installed)
	Markers  map[string]string // path -> first line of the file ("" when missing)
}

// FileFact describes a file on the host.
type FileFact struct {
	Exists       bool
	SHA256       string
	Owner, Group string
	Mode         fs.FileMode
}

// UnitFact is a unit's state as systemctl reports it.
type UnitFact struct {
	Active  string // active, inactive, failed, activating, ...
	Enabled string // enabled, disabled, static, not-found, ...
}

// probeScript builds the one command that gathers every fact the plan
// needs. Its output has one tab-separated line per fact.
func probeScript(d Desired) string {
	var b strings.Builder
	b.WriteString(`f() { if [ -f "$1" ]; then h=$(sha256sum < "$1") || h=unreadable; printf 'F\t%s\t%s\t%s\n' "$1" "${h%% *}" "$(stat -c '%U:%G:%a' "$1")"; else printf 'F\t%s\t-\t-\n' "$1"; fi; }
u() { printf 'U\t%s\t%s\t%s\n' "$1" "$(systemctl is-active "$1" 2>/dev/null || true)" "$(systemctl is-enabled "$1" 2>/dev/null || true)"; }
p() { printf 'P\t%s\t%s\n' "$1" "$(dpkg-query -W -f='${db:Status-Status} ${Version}' "$1" 2>/dev/null || true)"; }
m() { printf 'M\t%s\t%s\n' "$1" "$(head -n 1 "$1" 2>/dev/null | tr -d '\t')"; }
`)
	seen := map[string]bool{}
	emit := func(fn, arg string) {
		if seen[fn+arg] {
			return
		}
		seen[fn+arg] = true
		b.WriteString(fn + " " + shellQuote(arg) + "\n")
	}
	for _, f := range d.Files {
		emit("f", f.Path)
	}
	for _, c := range d.Commands {
		emit("f", c.Creates)
	}
	for _, u := range d.Units {
		emit("u", u.Name)
	}
	for _, p := range d.Packages {
		emit("p", p.Name)
	}
	for _, a := range d.Artifacts {
		emit("m", a.marker())
		emit("m", a.lockMarker())
	}
	b.WriteString("exit 0\n")
	return b.String()
}

// Probe gathers the facts of a host in one round trip.
func Probe(ctx context.Context, r Runner, d Desired) (*Facts, error) {
	out, err := r.Run(ctx, probeScript(d), nil)
	if err != nil {
		return nil, fmt.Errorf("probing facts: %w", err)
	}
	return parseFacts(out)
}

func parseFacts(out []byte) (*Facts, error) {
	f := &Facts{Files: map[string]FileFact{}, Units: map[string]UnitFact{}, Packages: map[string]string{}, Markers: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		parts := strings.Split(sc.Text(), "\t")
		switch {
		case parts[0] == "F" && len(parts) == 4:
			if parts[2] == "-" {
				f.Files[parts[1]] = FileFact{}
				continue
			}
			ff := FileFact{Exists: true, SHA256: parts[2]}
			og := strings.SplitN(parts[3], ":", 3)
			if len(og) == 3 {
				ff.Owner, ff.Group = og[0], og[1]
				m, err := strconv.ParseUint(og[2], 8, 32)
				if err != nil {
					return nil, fmt.Errorf("probing facts: bad mode in %q", sc.Text())
				}
				ff.Mode = fs.FileMode(m)
			}
			f.Files[parts[1]] = ff
		case parts[0] == "U" && len(parts) == 4:
			f.Units[parts[1]] = UnitFact{Active: parts[2], Enabled: parts[3]}
		case parts[0] == "P" && len(parts) == 3:
			st, ver, _ := strings.Cut(parts[2], " ")
			if st == "installed" {
				f.Packages[parts[1]] = ver
			} else {
				f.Packages[parts[1]] = ""
			}
		case parts[0] == "M" && len(parts) == 3:
			f.Markers[parts[1]] = strings.TrimSpace(parts[2])
		default:
			return nil, fmt.Errorf("probing facts: unexpected line %q", sc.Text())
		}
	}
	return f, sc.Err()
}

// sortedKeys returns the keys of a set, sorted.
func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
