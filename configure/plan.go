package configure

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"sort"
	"strings"
)

// Actions, the vocabulary plans use everywhere.
const (
	ActionCreate = "create"
	ActionUpdate = "update"
	ActionNoop   = "noop"
)

// Change kinds.
const (
	KindFile     = "file"
	KindUnit     = "unit"
	KindPackage  = "package"
	KindCommand  = "command"
	KindArtifact = "artifact"
)

// Change is one difference between a host and what is wanted.
type Change struct {
	// Address is host.NAME:KIND:ID, e.g. host.app:file:/etc/emqx/emqx.conf.
	Address string `json:"address"`
	Kind    string `json:"kind"`
	Action  string `json:"action"`
	Reason  string `json:"reason,omitempty"`
	// Before and After summarise the two sides (a hash, a state, a
	// version); never a secret.
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
	// Diff is a unified diff of a file, secrets masked (with Options.Diff).
	Diff string `json:"diff,omitempty"`
}

// HostPlan is the plan of one host.
type HostPlan struct {
	Host    string   `json:"host"`
	Changes []Change `json:"changes"`
	// Restarts are the units that will be restarted, in order: owed from
	// an earlier run, or made owed by this plan.
	Restarts []string `json:"restarts,omitempty"`

	desired   Desired
	facts     *Facts
	files     []File // files to write, in order
	packages  []Package
	commands  []Command
	artifacts []Artifact
	enable    []string
	start     []string // units not active and not restarted
	reload    bool     // daemon-reload needed
	update    bool     // apt-get update needed before the repository packages
}

// Empty reports whether the plan changes nothing.
func (p *HostPlan) Empty() bool {
	for _, c := range p.Changes {
		if c.Action != ActionNoop {
			return false
		}
	}
	return true
}

// Address returns host.NAME:KIND:ID.
func Address(host, kind, id string) string { return "host." + host + ":" + kind + ":" + id }

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func isUnitFile(p string) bool {
	return strings.HasPrefix(p, "/etc/systemd/system/") || strings.HasPrefix(p, "/lib/systemd/system/") || strings.HasPrefix(p, "/usr/lib/systemd/system/")
}

// PlanHost compares what is wanted with the facts. owed are the restarts an
// earlier run left owed. It is a pure function.
func PlanHost(host string, d Desired, f *Facts, owed []string) *HostPlan {
	p := &HostPlan{Host: host, desired: d, facts: f}
	restart := map[string]string{} // unit -> first reason
	addRestart := func(unit, reason string) {
		if unit == "" {
			return
		}
		if _, ok := restart[unit]; !ok {
			restart[unit] = reason
		}
	}
	for _, u := range owed {
		addRestart(u, "owed by an earlier run")
	}
	change := func(kind, id, action, reason, before, after string) {
		p.Changes = append(p.Changes, Change{Address: Address(host, kind, id), Kind: kind, Action: action, Reason: reason, Before: before, After: after})
	}

	repoMissing := false
	for _, pk := range d.Packages {
		have, known := f.Packages[pk.Name]
		switch {
		case !known || have == "":
			change(KindPackage, pk.Name, ActionCreate, "not installed", "", orAny(pk.Version))
		case pk.Version != "" && !versionMatch(pk.Version, have):
			change(KindPackage, pk.Name, ActionUpdate, "version "+have+" installed", have, pk.Version)
		default:
			change(KindPackage, pk.Name, ActionNoop, "", have, have)
			continue
		}
		p.packages = append(p.packages, pk)
		addRestart(pk.Restart, "package "+pk.Name+" changed")
		repoMissing = repoMissing || pk.Repo
	}
	for _, c := range d.Commands {
		if f.Files[c.Creates].Exists {
			change(KindCommand, c.Name, ActionNoop, "", c.Creates, c.Creates)
			continue
		}
		change(KindCommand, c.Name, ActionCreate, c.Creates+" missing", "", c.Creates)
		p.commands = append(p.commands, c)
	}
	earlyChanged := false
	for _, fl := range d.Files {
		have := f.Files[fl.Path]
		want := sha(fl.Content)
		var action, reason string
		switch {
		case !have.Exists:
			action, reason = ActionCreate, "missing"
		case have.SHA256 != want:
			action, reason = ActionUpdate, "content differs"
		case have.Owner != fl.Owner || have.Group != fl.Group || have.Mode != fl.Mode:
			action, reason = ActionUpdate, fmt.Sprintf("owner/mode %s:%s %o, want %s:%s %o", have.Owner, have.Group, have.Mode, fl.Owner, fl.Group, fl.Mode)
		default:
			change(KindFile, fl.Path, ActionNoop, "", shortHash(want), shortHash(want))
			continue
		}
		change(KindFile, fl.Path, action, reason, shortHash(have.SHA256), shortHash(want))
		p.files = append(p.files, fl)
		addRestart(fl.Restart, fl.Path+" changed")
		p.reload = p.reload || isUnitFile(fl.Path)
		earlyChanged = earlyChanged || fl.Early
	}
	p.update = earlyChanged || repoMissing
	for _, a := range d.Artifacts {
		have := f.Markers[a.marker()]
		if have == a.markerValue() {
			change(KindArtifact, a.Dir, ActionNoop, "", shortHash(have), shortHash(have))
			continue
		}
		action := ActionUpdate
		if have == "" {
			action = ActionCreate
		}
		reason := "archive changed"
		if haveLock := f.Markers[a.lockMarker()]; haveLock != a.lockValue() && a.LockSHA256 != "" {
			if lock, _, _ := strings.Cut(haveLock, " "); lock == a.LockSHA256 {
				reason += "; install scripts turned "
				if a.scripts() {
					reason += "on"
				} else {
					reason += "off"
				}
			} else {
				reason += "; package-lock.json changed"
			}
			reason += ": npm ci"
			if a.scripts() {
				reason += " as " + a.User
			}
		}
		change(KindArtifact, a.Dir, action, reason, shortHash(have), shortHash(a.SHA256))
		p.artifacts = append(p.artifacts, a)
		addRestart(a.Restart, "artifact "+a.Name+" changed")
	}
	managed := map[string]bool{}
	for _, u := range d.Units {
		managed[u.Name] = true
		uf := f.Units[u.Name]
		var reasons []string
		if u.Enable && uf.Enabled != "enabled" {
			p.enable = append(p.enable, u.Name)
			reasons = append(reasons, "enable (is "+orUnknown(uf.Enabled)+")")
		}
		if r, ok := restart[u.Name]; ok {
			p.Restarts = append(p.Restarts, u.Name)
			reasons = append(reasons, "restart: "+r)
		} else if uf.Active != "active" {
			p.start = append(p.start, u.Name)
			reasons = append(reasons, "start (is "+orUnknown(uf.Active)+")")
		}
		if len(reasons) == 0 {
			change(KindUnit, u.Name, ActionNoop, "", uf.Active, uf.Active)
			continue
		}
		change(KindUnit, u.Name, ActionUpdate, strings.Join(reasons, "; "), uf.Active+"/"+uf.Enabled, "active")
	}
	// Restarts owed for units this host no longer manages are dropped by
	// the caller's journal; restarts of unmanaged units are still done in
	// name order (e.g. a package restart for a unit without health).
	var extra []string
	for u := range restart {
		if !managed[u] {
			extra = append(extra, u)
		}
	}
	sort.Strings(extra)
	p.Restarts = append(p.Restarts, extra...)
	return p
}

// Owed returns the restarts the plan makes owed (all of Restarts).
func (p *HostPlan) Owed() []string { return append([]string(nil), p.Restarts...) }

func versionMatch(pattern, have string) bool {
	ok, err := path.Match(pattern, have)
	return err == nil && ok
}

func shortHash(h string) string {
	if len(h) > 12 {
		return "sha256:" + h[:12]
	}
	return h
}

func orAny(v string) string {
	if v == "" {
		return "any version"
	}
	return v
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
