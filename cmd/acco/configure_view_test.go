package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/accoreboot/acco/configure"
	"github.com/accoreboot/acco/internal/spec"
)

// noteSteps are database steps as a run on the local environment reports
// them before the backend made its tables: some in place, some waiting,
// one skipped.
var noteSteps = []configure.DBStep{
	{Address: "database.main:extension:timescaledb", Note: "not offered by this server: skipped"},
	{Address: "database.main:table:positions", Note: "exists"},
	{Address: "database.main:grant:backend:devices", Note: "table does not exist yet (created by the backend's migrations?): run configure again after"},
	{Address: "database.main:grant:backend:mqtt_users", Note: "table does not exist yet (created by the backend's migrations?): run configure again after"},
	{Address: "database.main:grant:backend:positions", Note: "granted"},
}

func TestConfigureReportNotes(t *testing.T) {
	tests := []struct {
		name    string
		verbose bool
		want    []string
		not     []string
	}{
		{
			name: "quiet",
			want: []string{"    3 database steps not applied: 2 wait for tables the backend creates, 1 skipped (-v lists them)\n"},
			not:  []string{"grant:backend:devices", "extension:timescaledb", "table:positions"},
		},
		{
			name:    "verbose",
			verbose: true,
			want: []string{
				"    database.main:extension:timescaledb  not offered by this server: skipped\n",
				"    database.main:grant:backend:devices  table does not exist yet",
				"    database.main:grant:backend:mqtt_users  table does not exist yet",
			},
			not: []string{"not applied", "table:positions", "grant:backend:positions"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			a := &app{streams: streams{out: &out, err: &errOut}}
			v := &configureView{a: a, verbose: tt.verbose}
			res := &configure.Result{Host: "app", Plan: &configure.HostPlan{Host: "app"}, Database: noteSteps, Commands: 1}
			if sum := v.report([]*configure.Result{res}, nil, false); sum.Changes > 0 || sum.Restarts > 0 {
				t.Error("notes are not changes")
			}
			got := out.String()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("output lacks %q:\n%s", w, got)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(got, n) {
					t.Errorf("output has %q:\n%s", n, got)
				}
			}
			if !strings.Contains(got, "host.app: up to date, nothing to change (1 SSH round trip).") {
				t.Errorf("no summary line:\n%s", got)
			}
		})
	}
}

func TestQuietSummary(t *testing.T) {
	waiting := configure.DBStep{Note: "table does not exist yet: not published; run configure again after the backend's migrations"}
	skipped := configure.DBStep{Note: "timescaledb not installed: positions stays a plain table"}
	tests := []struct {
		steps []configure.DBStep
		want  string
	}{
		{[]configure.DBStep{waiting}, "1 database step not applied: 1 waits for a table the backend creates (-v lists them)"},
		{[]configure.DBStep{skipped, skipped}, "2 database steps not applied: 2 skipped (-v lists them)"},
		{[]configure.DBStep{waiting, skipped, waiting}, "3 database steps not applied: 2 wait for tables the backend creates, 1 skipped (-v lists them)"},
	}
	for _, tt := range tests {
		if got := quietSummary(tt.steps); got != tt.want {
			t.Errorf("quietSummary = %q, want %q", got, tt.want)
		}
	}
}

// The preview before the question of a protected environment writes no
// JSON: the stream belongs to the run that follows.
func TestConfigurePreviewWritesNoJSON(t *testing.T) {
	var out, errOut bytes.Buffer
	a := &app{streams: streams{out: &out, err: &errOut}, json: true}
	v := &configureView{a: a, preview: true}
	v.event(configure.Event{Type: "apply_start", Host: "app", Message: "connecting"})
	res := &configure.Result{Host: "app", Plan: &configure.HostPlan{Host: "app", Changes: []configure.Change{{Address: "host.app:file:/etc/x", Kind: configure.KindFile, Action: configure.ActionUpdate}}}}
	if sum := v.report([]*configure.Result{res}, nil, true); sum.Changes == 0 {
		t.Error("a changed file is a change")
	}
	if out.Len() != 0 {
		t.Errorf("stdout %q, want nothing", out.String())
	}
	if got := errOut.String(); !strings.Contains(got, "host.app: to change: 1 file; 0 to restart.\n") {
		t.Errorf("stderr lacks the preview's summary:\n%s", got)
	}
}

func TestProtectedDatabases(t *testing.T) {
	tests := []struct {
		name string
		dbs  map[string]*spec.Database
		want []string
	}{
		{"none", nil, nil},
		{"unprotected", map[string]*spec.Database{"main": {}}, nil},
		{"some", map[string]*spec.Database{"main": {Protect: true}, "aux": {}, "archive": {Protect: true}}, []string{"database.archive", "database.main"}},
	}
	for _, tt := range tests {
		got := protectedDatabases(&spec.Environment{Databases: tt.dbs})
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
