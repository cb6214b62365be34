package configure

import (
	"bufio"
	"bytes"
	"context"
	"errors"
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
// needs, in one round trip and few processes: the per-item functions only
// collect names (shell builtins), then one sha256sum, one stat, one
// systemctl show and one dpkg-query cover every file, unit and package.
// Markers are read with the shell's read builtin.
//
// Its output has tab-separated lines for missing files (F) and markers
// (M), then one section per batched command, each opened by a line
// "#sha256", "#stat", "#units" or "#packages" and holding that command's
// own output.
func probeScript(d Desired) string {
	var b strings.Builder
	b.WriteString(`FS=; US=; PS=
f() { if [ -f "$1" ]; then FS="$FS$1
"; else printf 'F\t%s\t-\t-\n' "$1"; fi; }
u() { US="$US$1
"; }
p() { PS="$PS$1
"; }
m() { l=; { IFS= read -r l < "$1"; } 2>/dev/null; printf 'M\t%s\t%s\n' "$1" "$l"; }
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
	asked := probeList(d)
	for _, u := range asked.units {
		emit("u", u)
	}
	for _, p := range asked.packages {
		emit("p", p)
	}
	for _, a := range d.Artifacts {
		emit("m", a.marker())
		emit("m", a.lockMarker())
	}
	b.WriteString(`IFS='
'
set -f
if [ -n "$FS" ]; then
echo '#sha256'; sha256sum -- $FS 2>/dev/null
echo '#stat'; stat -c '%U:%G:%a %n' -- $FS 2>/dev/null
fi
if [ -n "$US" ]; then echo '#units'; systemctl show -p ActiveState -p UnitFileState -- $US 2>/dev/null; fi
if [ -n "$PS" ]; then echo '#packages'; dpkg-query -W -f='${Package}\t${db:Status-Status} ${Version}\n' -- $PS 2>/dev/null; fi
exit 0
`)
	return b.String()
}

// probed are the units and packages a probe asks about, in order, each
// once: systemctl show answers with one block per unit in this order.
type probed struct{ units, packages []string }

func probeList(d Desired) probed {
	var p probed
	seen := map[string]bool{}
	for _, u := range d.Units {
		if !seen["u"+u.Name] {
			seen["u"+u.Name] = true
			p.units = append(p.units, u.Name)
		}
	}
	for _, pk := range d.Packages {
		if !seen["p"+pk.Name] {
			seen["p"+pk.Name] = true
			p.packages = append(p.packages, pk.Name)
		}
	}
	return p
}

// Probe gathers the facts of a host in one round trip.
func Probe(ctx context.Context, r Runner, d Desired) (*Facts, error) {
	out, err := r.Run(ctx, probeScript(d), nil)
	if err != nil {
		return nil, fmt.Errorf("probing facts: %w", err)
	}
	return parseFacts(out, probeList(d))
}

// parseFacts reads the probe's output; asked are the units and packages it
// asked about, each of which gets a fact (empty when the host told nothing:
// not installed, no such unit). Lines "U\tNAME\tACTIVE\tENABLED" and
// "P\tNAME\tSTATUS VERSION" are read too (one fact per line).
func parseFacts(out []byte, asked probed) (*Facts, error) {
	f := &Facts{Files: map[string]FileFact{}, Units: map[string]UnitFact{}, Packages: map[string]string{}, Markers: map[string]string{}}
	for _, u := range asked.units {
		f.Units[u] = UnitFact{}
	}
	for _, p := range asked.packages {
		f.Packages[p] = ""
	}
	units := asked.units
	hashes := map[string]string{}
	section := ""
	unit := 0
	block := UnitFact{}
	inBlock := false
	endBlock := func() error {
		if !inBlock {
			return nil
		}
		if unit >= len(units) {
			return errors.New("probing facts: systemctl show answered for more units than asked")
		}
		f.Units[units[unit]] = block
		unit++
		block, inBlock = UnitFact{}, false
		return nil
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			if err := endBlock(); err != nil {
				return nil, err
			}
			section = line
			continue
		}
		switch section {
		case "#sha256":
			// "HASH  PATH" (text mode) or "HASH *PATH" (binary mode)
			h, path, ok := strings.Cut(line, " ")
			if !ok || len(path) < 2 {
				return nil, fmt.Errorf("probing facts: unexpected sha256sum line %q", line)
			}
			hashes[path[1:]] = h
			continue
		case "#stat":
			perm, path, ok := strings.Cut(line, " ")
			if !ok {
				return nil, fmt.Errorf("probing facts: unexpected stat line %q", line)
			}
			ff, err := fileFact(path, perm)
			if err != nil {
				return nil, err
			}
			ff.SHA256 = hashes[path]
			if ff.SHA256 == "" {
				ff.SHA256 = "unreadable"
			}
			f.Files[path] = ff
			continue
		case "#units":
			if line == "" {
				if err := endBlock(); err != nil {
					return nil, err
				}
				continue
			}
			k, v, _ := strings.Cut(line, "=")
			switch k {
			case "ActiveState":
				block.Active, inBlock = v, true
			case "UnitFileState":
				block.Enabled, inBlock = v, true
			}
			continue
		case "#packages":
			name, status, ok := strings.Cut(line, "\t")
			if !ok {
				return nil, fmt.Errorf("probing facts: unexpected dpkg-query line %q", line)
			}
			f.Packages[name] = installedVersion(status)
			continue
		}
		parts := strings.Split(line, "\t")
		switch {
		case parts[0] == "F" && len(parts) == 4:
			if parts[2] == "-" {
				f.Files[parts[1]] = FileFact{}
				continue
			}
			ff, err := fileFact(parts[1], parts[3])
			if err != nil {
				return nil, err
			}
			ff.SHA256 = parts[2]
			f.Files[parts[1]] = ff
		case parts[0] == "U" && len(parts) == 4:
			f.Units[parts[1]] = UnitFact{Active: parts[2], Enabled: parts[3]}
		case parts[0] == "P" && len(parts) == 3:
			f.Packages[parts[1]] = installedVersion(parts[2])
		case parts[0] == "M" && len(parts) >= 3:
			f.Markers[parts[1]] = strings.TrimSpace(strings.Join(parts[2:], ""))
		default:
			return nil, fmt.Errorf("probing facts: unexpected line %q", line)
		}
	}
	if err := endBlock(); err != nil {
		return nil, err
	}
	return f, sc.Err()
}

// fileFact reads "OWNER:GROUP:MODE" (stat -c %U:%G:%a) of an existing file.
func fileFact(path, perm string) (FileFact, error) {
	ff := FileFact{Exists: true}
	og := strings.SplitN(perm, ":", 3)
	if len(og) != 3 {
		return ff, fmt.Errorf("probing facts: bad owner and mode %q of %s", perm, path)
	}
	ff.Owner, ff.Group = og[0], og[1]
	m, err := strconv.ParseUint(og[2], 8, 32)
	if err != nil {
		return ff, fmt.Errorf("probing facts: bad mode %q of %s", og[2], path)
	}
	ff.Mode = fs.FileMode(m)
	return ff, nil
}

// installedVersion reads dpkg's "STATUS VERSION": the version when the
// package is installed, else "".
func installedVersion(status string) string {
	st, ver, _ := strings.Cut(status, " ")
	if st == "installed" {
		return ver
	}
	return ""
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
