package configure

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// fakeHost is an in-memory host that understands the scripts the engine
// sends (probe, write, install, systemctl, health, artifact, diff read).
// It records each mutating command in log, in order, with the journal's
// writes interleaved, so tests can check what happened before what.
type fakeHost struct {
	mu        sync.Mutex
	files     map[string]fakeFile
	units     map[string]UnitFact
	packages  map[string]string
	markers   map[string]string
	log       []string
	runs      int
	failOn    string // a script containing this fails
	failErr   string // its stderr
	unhealthy map[string]bool
}

type fakeFile struct {
	content      string
	owner, group string
	mode         fs.FileMode
}

func newFakeHost() *fakeHost {
	return &fakeHost{files: map[string]fakeFile{}, units: map[string]UnitFact{}, packages: map[string]string{}, markers: map[string]string{}, unhealthy: map[string]bool{}}
}

func (h *fakeHost) record(s string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.log = append(h.log, s)
}

func (h *fakeHost) mutations() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.log...)
}

type fakeConnector struct {
	hosts    map[string]*fakeHost
	connects int
	mu       sync.Mutex
}

func (c *fakeConnector) Connect(_ context.Context, h Host) (Runner, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.connects++
	fh, ok := c.hosts[h.Name]
	if !ok {
		return nil, fmt.Errorf("no such host %s", h.Name)
	}
	return &fakeRunner{h: fh}, nil
}

type fakeRunner struct{ h *fakeHost }

func (r *fakeRunner) DialContext(context.Context, string, string) (net.Conn, error) {
	return nil, fmt.Errorf("fake: no dialing")
}
func (r *fakeRunner) Close() error { return nil }

var (
	reArg   = `('(?:[^']|'\\'')*'|\S+)`
	reCall  = regexp.MustCompile(`(?m)^([fupm]) ` + reArg + `$`)
	reDst   = regexp.MustCompile(`(?m)^dst=` + reArg + `$`)
	reChown = regexp.MustCompile(`(?m)^chown (\S+) "\$t"$`)
	reChmod = regexp.MustCompile(`(?m)^chmod ([0-7]+) "\$t"$`)
	reMark  = regexp.MustCompile(`(?m)printf '%s\\n' ` + reArg + ` > ` + reArg + `$`)
	reUnit  = regexp.MustCompile(`(?m)^u=` + reArg + `$`)
	reTouch = regexp.MustCompile(`touch ` + reArg)
	reRead  = regexp.MustCompile(`wc -c < ` + reArg + `\)`)
)

func unquote(s string) string {
	if strings.HasPrefix(s, "'") {
		return strings.ReplaceAll(s[1:len(s)-1], `'\''`, "'")
	}
	return s
}

func (r *fakeRunner) Run(_ context.Context, script string, stdin io.Reader) ([]byte, error) {
	h := r.h
	h.mu.Lock()
	h.runs++
	fail := h.failOn != "" && strings.Contains(script, h.failOn)
	h.mu.Unlock()
	if fail {
		return nil, &ExitError{Code: 1, Stderr: h.failErr}
	}
	switch {
	case strings.HasPrefix(script, "FS=; US=; PS="):
		return h.probe(script), nil
	case strings.Contains(script, "wc -c <"):
		var b strings.Builder
		h.mu.Lock()
		for _, m := range reRead.FindAllStringSubmatch(script, -1) {
			c := h.files[unquote(m[1])].content
			fmt.Fprintf(&b, "%d\n%s", len(c), c)
		}
		h.mu.Unlock()
		return []byte(b.String()), nil
	case reDst.MatchString(script):
		dst := unquote(reDst.FindStringSubmatch(script)[1])
		b, _ := io.ReadAll(stdin)
		og := strings.SplitN(unquote(reChown.FindStringSubmatch(script)[1]), ":", 2)
		mode, _ := strconv.ParseUint(reChmod.FindStringSubmatch(script)[1], 8, 32)
		h.mu.Lock()
		h.files[dst] = fakeFile{content: string(b), owner: og[0], group: og[1], mode: fs.FileMode(mode)}
		h.mu.Unlock()
		h.record("write " + dst)
		return nil, nil
	case strings.Contains(script, "tar -xzf"):
		if stdin != nil {
			io.Copy(io.Discard, stdin)
		}
		h.mu.Lock()
		for _, m := range reMark.FindAllStringSubmatch(script, -1) {
			h.markers[unquote(m[2])] = unquote(m[1])
		}
		h.mu.Unlock()
		h.record("artifact")
		return nil, nil
	case strings.Contains(script, "apt-get install"):
		line := script[strings.Index(script, "--force-confold ")+len("--force-confold "):]
		line = strings.TrimSpace(line)
		h.mu.Lock()
		for _, w := range strings.Fields(line) {
			name, ver, _ := strings.Cut(unquote(w), "=")
			if ver == "" || strings.Contains(ver, "*") {
				ver = strings.ReplaceAll(ver, "*", "0") + "1.0"
			}
			h.packages[name] = ver
		}
		h.mu.Unlock()
		h.record("install " + line)
		return nil, nil
	case script == "systemctl daemon-reload":
		h.record("daemon-reload")
		return nil, nil
	case strings.HasPrefix(script, "systemctl enable --quiet "):
		h.mu.Lock()
		for _, u := range strings.Fields(strings.TrimPrefix(script, "systemctl enable --quiet ")) {
			uf := h.units[u]
			uf.Enabled = "enabled"
			h.units[u] = uf
		}
		h.mu.Unlock()
		h.record(script[len("systemctl "):])
		return nil, nil
	case strings.HasPrefix(script, "systemctl restart "), strings.HasPrefix(script, "systemctl start "):
		f := strings.Fields(script)
		h.mu.Lock()
		uf := h.units[f[2]]
		uf.Active = "active"
		h.units[f[2]] = uf
		h.mu.Unlock()
		h.record(f[1] + " " + f[2])
		return nil, nil
	case strings.HasPrefix(script, "u="):
		u := unquote(reUnit.FindStringSubmatch(script)[1])
		h.mu.Lock()
		bad := h.unhealthy[u] || h.units[u].Active != "active"
		h.mu.Unlock()
		if bad {
			return []byte(u + " is failed"), &ExitError{Code: 1}
		}
		return nil, nil
	case strings.HasPrefix(script, "journalctl"):
		return []byte("the last lines of the journal"), nil
	case reTouch.MatchString(script):
		p := unquote(reTouch.FindStringSubmatch(script)[1])
		h.mu.Lock()
		h.files[p] = fakeFile{owner: "root", group: "root", mode: 0o644}
		h.mu.Unlock()
		h.record("command " + p)
		return nil, nil
	}
	return nil, fmt.Errorf("fake host: unknown script:\n%s", script)
}

func (h *fakeHost) probe(script string) []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	var b strings.Builder
	for _, m := range reCall.FindAllStringSubmatch(script, -1) {
		arg := unquote(m[2])
		switch m[1] {
		case "f":
			if f, ok := h.files[arg]; ok {
				fmt.Fprintf(&b, "F\t%s\t%s\t%s:%s:%o\n", arg, sha([]byte(f.content)), f.owner, f.group, f.mode)
			} else {
				fmt.Fprintf(&b, "F\t%s\t-\t-\n", arg)
			}
		case "u":
			uf, ok := h.units[arg]
			if !ok {
				uf = UnitFact{Active: "inactive", Enabled: "not-found"}
			}
			fmt.Fprintf(&b, "U\t%s\t%s\t%s\n", arg, uf.Active, uf.Enabled)
		case "p":
			if v, ok := h.packages[arg]; ok {
				fmt.Fprintf(&b, "P\t%s\tinstalled %s\n", arg, v)
			} else {
				fmt.Fprintf(&b, "P\t%s\t\n", arg)
			}
		case "m":
			fmt.Fprintf(&b, "M\t%s\t%s\n", arg, h.markers[arg])
		}
	}
	return []byte(b.String())
}

// memJournal is a Journal in memory that also writes its calls into a
// fakeHost's log, so order against remote commands can be checked.
type memJournal struct {
	mu   sync.Mutex
	owed map[string]map[string]bool
	log  *fakeHost
}

func newMemJournal(log *fakeHost) *memJournal {
	return &memJournal{owed: map[string]map[string]bool{}, log: log}
}

func (j *memJournal) Owed(host string) []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return sortedKeys(j.owed[host])
}

func (j *memJournal) Owe(_ context.Context, host string, units []string, _ string) error {
	j.mu.Lock()
	if j.owed[host] == nil {
		j.owed[host] = map[string]bool{}
	}
	for _, u := range units {
		j.owed[host][u] = true
	}
	j.mu.Unlock()
	if j.log != nil {
		j.log.record("owe " + strings.Join(units, " "))
	}
	return nil
}

func (j *memJournal) Paid(_ context.Context, host, unit string) error {
	j.mu.Lock()
	delete(j.owed[host], unit)
	j.mu.Unlock()
	if j.log != nil {
		j.log.record("paid " + unit)
	}
	return nil
}
