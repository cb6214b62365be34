package provision_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/accoreboot/acco/internal/localcloud"
	"github.com/accoreboot/acco/provision"
	"github.com/accoreboot/acco/state"
)

// stopSince is when the test's database stops.
var stopSince = time.Date(2026, 12, 6, 4, 15, 0, 0, time.UTC)

// dumpObjects are the objects a stop of the test's database main leaves in
// the bucket.
var dumpObjects = []string{
	"test/dumps/main/20261206T041500Z/manifest.json.sealed",
	"test/dumps/main/20261206T041500Z/acco.dump.sealed",
}

// stopDatabase does to the harness's applied environment what acco db stop
// does: dumps in the bucket, the record in state with status, the cluster
// deleted (with deleteCluster), and its records, users' and databases'
// forgotten in state (with forget).
func stopDatabase(t *testing.T, h *harness, status string, deleteCluster, forget bool) {
	t.Helper()
	ctx := t.Context()
	for _, k := range dumpObjects {
		if _, err := h.blob.Put(ctx, k, []byte("sealed"), ""); err != nil {
			t.Fatal(err)
		}
	}
	st, etag, err := h.store.Read(ctx, h.env.Name)
	if err != nil {
		t.Fatal(err)
	}
	if deleteCluster {
		db, ok := st.Resource("database.main")
		if !ok {
			t.Fatal("database.main is not in state")
		}
		if err := h.cl.DB.DeleteCluster(ctx, db.ID); err != nil {
			t.Fatal(err)
		}
	}
	if forget {
		for _, r := range slices.Clone(st.Resources) {
			if r.Address == "database.main" || strings.HasPrefix(r.Address, "database_user.main.") || strings.HasPrefix(r.Address, "database_db.main.") {
				st.RemoveResource(r.Address)
			}
		}
	}
	st.Outputs = provision.Outputs(st)
	st.OnDemand = map[string]state.DatabaseArchive{"main": {Status: status, Since: stopSince, Manifest: dumpObjects[0],
		Dumps: []state.ArchivedDump{{Database: "acco", Key: dumpObjects[1], Size: 42, SHA256: strings.Repeat("0", 64)}}}}
	if _, err := h.store.Write(ctx, h.env.Name, st, etag); err != nil {
		t.Fatal(err)
	}
}

// dbChanges returns the plan's changes to the cluster main and its users
// and databases that are not noop.
func dbChanges(p *provision.Plan) map[string]provision.Action {
	out := map[string]provision.Action{}
	for addr, a := range actions(p) {
		if addr == "database.main" || strings.HasPrefix(addr, "database_user.main.") || strings.HasPrefix(addr, "database_db.main.") {
			out[addr] = a
		}
	}
	return out
}

// allDatabase is the cluster main, its users and its databases, all with
// action a.
func allDatabase(a provision.Action) map[string]provision.Action {
	out := map[string]provision.Action{}
	for _, addr := range []string{"database.main", "database_db.main.acco", "database_db.main.powersync_storage",
		"database_user.main.backend", "database_user.main.emqx", "database_user.main.powersync"} {
		out[addr] = a
	}
	return out
}

func render(t *testing.T, p *provision.Plan) string {
	t.Helper()
	var b bytes.Buffer
	if err := p.Render(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestPlanOnDemand(t *testing.T) {
	stoppedLine := "database.main is stopped (on demand) since 2026-12-06 04:15 UTC; `acco db start test` brings it back"
	for _, tc := range []struct {
		name                  string
		status                string
		deleteCluster, forget bool
		edit                  func(h *harness)
		opts                  provision.PlanOptions
		// want: the changes to database.main and its children; wantText
		// in the rendering; drift on database.main; Unsettled.
		want      map[string]provision.Action
		wantText  string
		drift     string
		unsettled bool
		stopped   bool // listed in plan.Stopped
	}{
		{name: "stopped", status: state.ArchiveStopped, deleteCluster: true, forget: true,
			want: map[string]provision.Action{}, wantText: stoppedLine, stopped: true},
		{name: "stopped with stale records", status: state.ArchiveStopped, deleteCluster: true,
			want: map[string]provision.Action{}, wantText: stoppedLine, stopped: true},
		{name: "stopped, targeted", status: state.ArchiveStopped, deleteCluster: true, forget: true, opts: provision.PlanOptions{Targets: []string{"database.main"}},
			want: map[string]provision.Action{}, wantText: stoppedLine, stopped: true},
		{name: "stopped, refresh only", status: state.ArchiveStopped, deleteCluster: true, forget: true, opts: provision.PlanOptions{RefreshOnly: true},
			want: map[string]provision.Action{}, wantText: stoppedLine, stopped: true},
		{name: "stopped, yet a cluster is there", status: state.ArchiveStopped, forget: true,
			want: map[string]provision.Action{}, wantText: "yet cluster acco-test-main", drift: "leaves it alone", unsettled: true, stopped: true},
		{name: "stopped, no longer declared, interrupted intent", status: state.ArchiveStopped, forget: true,
			edit: func(h *harness) { delete(h.env.Databases, "main") },
			want: map[string]provision.Action{}, wantText: "yet cluster acco-test-main", drift: "leaves it alone", unsettled: true, stopped: true},
		{name: "stopping", status: state.ArchiveStopping,
			want: map[string]provision.Action{}, wantText: "database.main is being stopped; run acco db stop test to finish", unsettled: true, stopped: true},
		{name: "stopping, cluster gone", status: state.ArchiveStopping, deleteCluster: true,
			want: map[string]provision.Action{}, wantText: "database.main is being stopped; run acco db stop test to finish", unsettled: true, stopped: true},
		{name: "starting", status: state.ArchiveStarting, deleteCluster: true, forget: true,
			want:     allDatabase(provision.Create),
			wantText: "database.main will be created", unsettled: true},
		{name: "destroy stopped", status: state.ArchiveStopped, deleteCluster: true, forget: true, opts: provision.PlanOptions{Destroy: true},
			want:     map[string]provision.Action{},
			wantText: "database.main is stopped (on demand) since 2026-12-06 04:15 UTC: nothing to delete in the cloud; its 1 dump(s) stay in the state bucket under test/dumps/main/ (acco destroy test --delete-dumps deletes them)", unsettled: true, stopped: true},
		{name: "destroy stopped with stale records", status: state.ArchiveStopped, deleteCluster: true, opts: provision.PlanOptions{Destroy: true},
			want:     allDatabase(provision.Read),
			wantText: "the cluster is stopped (on demand): forget it", unsettled: true, stopped: true},
		{name: "destroy stopped, delete dumps", status: state.ArchiveStopped, deleteCluster: true, forget: true, opts: provision.PlanOptions{Destroy: true, DeleteDumps: true},
			want: map[string]provision.Action{}, wantText: "its dumps under test/dumps/main/ in the state bucket are deleted", unsettled: true, stopped: true},
		{name: "destroy stopped, a cluster is there", status: state.ArchiveStopped, forget: true, opts: provision.PlanOptions{Destroy: true},
			want: map[string]provision.Action{}, wantText: "yet cluster acco-test-main", drift: "leaves it alone", unsettled: true, stopped: true},
		{name: "destroy stopping", status: state.ArchiveStopping, opts: provision.PlanOptions{Destroy: true},
			want:     allDatabase(provision.Delete),
			wantText: "database.main is recorded as stopping (on demand, since 2026-12-06 04:15 UTC): its cluster is destroyed like the rest", unsettled: true, stopped: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, localcloud.Options{})
			h.apply(h.plan(provision.PlanOptions{}))
			stopDatabase(t, h, tc.status, tc.deleteCluster, tc.forget)
			if tc.edit != nil {
				tc.edit(h)
				st, etag, err := h.store.Read(t.Context(), h.env.Name)
				if err != nil {
					t.Fatal(err)
				}
				st.Pending = append(st.Pending, state.Pending{Address: "database.main", Action: "create", Started: stopSince})
				if _, err := h.store.Write(t.Context(), h.env.Name, st, etag); err != nil {
					t.Fatal(err)
				}
			}
			p := h.plan(tc.opts)
			if got := dbChanges(p); !maps.Equal(got, tc.want) {
				t.Errorf("database changes = %v, want %v", got, tc.want)
			}
			if !tc.opts.Destroy {
				if got := actions(p); len(got) != len(dbChanges(p)) {
					t.Errorf("changes outside the database: %v", got)
				}
			}
			text := render(t, p)
			if !strings.Contains(text, tc.wantText) {
				t.Errorf("rendering lacks %q:\n%s", tc.wantText, text)
			}
			var drift string
			for _, d := range p.Drift {
				if d.Address == "database.main" {
					drift = d.Message
				}
			}
			if (tc.drift == "") != (drift == "") || !strings.Contains(drift, tc.drift) {
				t.Errorf("drift on database.main %q, want %q", drift, tc.drift)
			}
			if p.Unsettled() != tc.unsettled {
				t.Errorf("Unsettled = %v, want %v", p.Unsettled(), tc.unsettled)
			}
			if got := slices.ContainsFunc(p.Stopped, func(s provision.StoppedDatabase) bool { return s.Address == "database.main" }); got != tc.stopped {
				t.Errorf("plan.Stopped = %+v, want database.main listed: %v", p.Stopped, tc.stopped)
			}
			if tc.status == state.ArchiveStopped && !tc.opts.Destroy && tc.drift == "" && !strings.Contains(text, "No changes: the cloud matches environment test.") {
				t.Errorf("a stopped database alone is no change:\n%s", text)
			}
		})
	}
}

// TestApplyOnDemand applies the plans of a stopped database: apply creates
// nothing, destroy keeps the dumps and the record unless asked, and a
// destroy that finishes a stop leaves the record stopped.
func TestApplyOnDemand(t *testing.T) {
	listDumps := func(t *testing.T, h *harness) []string {
		t.Helper()
		keys, err := h.blob.List(t.Context(), state.DumpPrefix("test", "main"))
		if err != nil {
			t.Fatal(err)
		}
		return keys
	}
	t.Run("apply creates nothing", func(t *testing.T) {
		h := newHarness(t, localcloud.Options{})
		h.apply(h.plan(provision.PlanOptions{}))
		stopDatabase(t, h, state.ArchiveStopped, true, true)
		p := h.plan(provision.PlanOptions{})
		if p.HasChanges() {
			t.Fatalf("plan has changes: %v drift %v", actions(p), p.Drift)
		}
		before := h.state().Serial
		h.apply(p)
		if st := h.state(); st.Serial != before || st.OnDemand["main"].Status != state.ArchiveStopped {
			t.Errorf("apply of a no-change plan wrote state: serial %d -> %d, record %+v", before, st.Serial, st.OnDemand["main"])
		}
		if _, ok := h.state().Resource("database.main"); ok {
			t.Error("apply recorded database.main")
		}
	})
	for _, tc := range []struct {
		name        string
		status      string
		deleteDumps bool
		wantRecord  string // status after destroy, "" for none
		wantDumps   int
	}{
		{"destroy keeps dumps", state.ArchiveStopped, false, state.ArchiveStopped, len(dumpObjects)},
		{"destroy deletes dumps", state.ArchiveStopped, true, "", 0},
		{"destroy finishes a stop", state.ArchiveStopping, false, state.ArchiveStopped, len(dumpObjects)},
		{"destroy finishes a stop, deletes dumps", state.ArchiveStopping, true, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, localcloud.Options{})
			h.apply(h.plan(provision.PlanOptions{}))
			stopDatabase(t, h, tc.status, tc.status == state.ArchiveStopped, tc.status == state.ArchiveStopped)
			// A dump of another environment and another cluster stay.
			for _, k := range []string{"prod/dumps/main/x/acco.dump.sealed", "test/dumps/main2/x/acco.dump.sealed"} {
				if _, err := h.blob.Put(t.Context(), k, []byte("x"), ""); err != nil {
					t.Fatal(err)
				}
			}
			rep := h.apply(h.plan(provision.PlanOptions{Destroy: true, DeleteDumps: tc.deleteDumps}))
			st := h.state()
			if len(st.Resources) != 0 {
				t.Errorf("resources left: %+v", st.Resources)
			}
			if got := st.OnDemand["main"].Status; got != tc.wantRecord {
				t.Errorf("record after destroy: %q, want %q", got, tc.wantRecord)
			}
			if got := listDumps(t, h); len(got) != tc.wantDumps {
				t.Errorf("dumps after destroy: %v, want %d", got, tc.wantDumps)
			}
			for _, k := range []string{"prod/dumps/main/x/acco.dump.sealed", "test/dumps/main2/x/acco.dump.sealed"} {
				if _, _, err := h.blob.Get(t.Context(), k); err != nil {
					t.Errorf("%s: %v", k, err)
				}
			}
			reported := slices.ContainsFunc(rep.Results, func(r provision.Result) bool {
				return r.Address == "database.main:dumps" && r.Status == provision.ResultDone
			})
			if reported != tc.deleteDumps {
				t.Errorf("report %+v: dumps deletion reported %v, want %v", rep.Results, reported, tc.deleteDumps)
			}
			// The next plan of the environment: a stopped database, or
			// one to create from nothing.
			p := h.plan(provision.PlanOptions{})
			if c := p.Change("database.main"); (c != nil) == (tc.wantRecord != "") {
				t.Errorf("plan after destroy: database.main %+v with record %q", c, tc.wantRecord)
			}
		})
	}
	t.Run("delete dumps needs the bucket", func(t *testing.T) {
		h := newHarness(t, localcloud.Options{})
		h.apply(h.plan(provision.PlanOptions{}))
		stopDatabase(t, h, state.ArchiveStopped, true, true)
		p := h.plan(provision.PlanOptions{Destroy: true, DeleteDumps: true})
		_, err := provision.Apply(t.Context(), h.cl, h.store, p, provision.ApplyOptions{Sealer: h.sealer})
		if err == nil || !strings.Contains(err.Error(), "no state bucket") {
			t.Fatalf("Apply without Dumps: %v", err)
		}
	})
	t.Run("delete dumps is for destroy", func(t *testing.T) {
		h := newHarness(t, localcloud.Options{})
		if err := planErr(t, h, provision.PlanOptions{DeleteDumps: true}); err == nil || !strings.Contains(err.Error(), "destroy only") {
			t.Fatalf("plan with DeleteDumps and no Destroy: %v", err)
		}
	})
}

// TestPlanRenderingOnDemand checks the human and JSON plans of a stopped
// database, one being stopped, and the destroy of a stopped one (with and
// without its dumps) against golden files.
func TestPlanRenderingOnDemand(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status string
		opts   provision.PlanOptions
	}{
		{"stopped", state.ArchiveStopped, provision.PlanOptions{}},
		{"stopping", state.ArchiveStopping, provision.PlanOptions{}},
		{"destroy-stopped", state.ArchiveStopped, provision.PlanOptions{Destroy: true}},
		{"destroy-stopped-dumps", state.ArchiveStopped, provision.PlanOptions{Destroy: true, DeleteDumps: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, localcloud.Options{})
			h.apply(h.plan(provision.PlanOptions{}))
			gone := tc.status == state.ArchiveStopped
			stopDatabase(t, h, tc.status, gone, gone)
			p := h.plan(tc.opts)
			doc, err := json.MarshalIndent(p.JSON(), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "ondemand-"+tc.name+".txt", scrub(render(t, p)))
			golden(t, "ondemand-"+tc.name+".json", scrub(string(doc))+"\n")
			checkContract(t, doc, p)
			var top struct {
				Stopped []map[string]any `json:"stopped"`
			}
			if err := json.Unmarshal(doc, &top); err != nil {
				t.Fatal(err)
			}
			if len(top.Stopped) != 1 || top.Stopped[0]["address"] != "database.main" || top.Stopped[0]["since"] != "2026-12-06T04:15:00Z" ||
				top.Stopped[0]["manifest"] != dumpObjects[0] || top.Stopped[0]["status"] != tc.status {
				t.Errorf("JSON stopped = %v", top.Stopped)
			}
		})
	}
}
