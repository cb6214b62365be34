package configure

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

const secret = "S3CRET-value"

func testDesired(conf string) Desired {
	return Desired{
		Packages: []Package{{Name: "curl"}},
		Commands: []Command{{Name: "marker", Creates: "/etc/marker", Script: "touch /etc/marker"}},
		Files: []File{
			{Path: "/etc/systemd/system/app.service", Owner: "root", Group: "root", Mode: 0o644, Content: []byte("[Service]\nExecStart=/bin/true\n"), Restart: "app.service"},
			{Path: "/etc/app/app.conf", Owner: "root", Group: "app", Mode: 0o640, Content: []byte(conf), Restart: "app.service"},
			{Path: "/etc/app/secret.env", Owner: "root", Group: "root", Mode: 0o600, Content: []byte("TOKEN=" + secret + "\n"), Restart: "app.service", Sensitive: true},
			{Path: "/etc/other.conf", Owner: "root", Group: "root", Mode: 0o644, Content: []byte("other\n"), Restart: "other.service"},
		},
		Units: []Unit{
			{Name: "app.service", Enable: true, Health: Health{Port: 8080}},
			{Name: "other.service", Enable: true},
		},
	}
}

func conf(v string) string {
	return "listen = 8080\nname = " + v + "\npassword = " + secret + "\n"
}

type harness struct {
	host    *fakeHost
	conn    *fakeConnector
	journal *memJournal
}

func newHarness() *harness {
	h := newFakeHost()
	return &harness{host: h, conn: &fakeConnector{hosts: map[string]*fakeHost{"app": h}}, journal: newMemJournal(h)}
}

func (hs *harness) run(t *testing.T, d Desired, opts Options) (*Result, error) {
	t.Helper()
	hs.host.mu.Lock()
	hs.host.log, hs.host.runs = nil, 0
	hs.host.mu.Unlock()
	opts.Journal = hs.journal
	opts.Secrets = append(opts.Secrets, secret)
	opts.HealthTimeout = 50 * time.Millisecond
	opts.HealthInterval = 10 * time.Millisecond
	res, err := Run(context.Background(), hs.conn, []Target{{Host: Host{Name: "app", Address: "192.0.2.1", User: "debian"}, Desired: d}}, opts)
	if len(res) != 1 {
		t.Fatalf("Run returned %d results", len(res))
	}
	return res[0], err
}

func TestFreshHostThenNoop(t *testing.T) {
	hs := newHarness()
	res, err := hs.run(t, testDesired(conf("a")), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"owe app.service other.service",
		"install curl",
		"command /etc/marker",
		"write /etc/systemd/system/app.service",
		"write /etc/app/app.conf",
		"write /etc/app/secret.env",
		"write /etc/other.conf",
		"daemon-reload",
		"enable --quiet app.service other.service",
		"restart app.service",
		"paid app.service",
		"restart other.service",
		"paid other.service",
	}
	if got := hs.host.mutations(); !slices.Equal(got, want) {
		t.Fatalf("first run did\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !slices.Equal(res.Restarted, []string{"app.service", "other.service"}) {
		t.Errorf("Restarted = %v", res.Restarted)
	}
	if owed := hs.journal.Owed("app"); len(owed) != 0 {
		t.Errorf("restarts still owed after a good run: %v", owed)
	}

	// Second run: nothing to do, one round trip (the probe), no change.
	res, err = hs.run(t, testDesired(conf("a")), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := hs.host.mutations(); len(got) != 0 {
		t.Errorf("no-op run did %v", got)
	}
	if hs.host.runs != 1 || res.Commands != 1 {
		t.Errorf("no-op run made %d round trips (reported %d), want 1 (the facts probe)", hs.host.runs, res.Commands)
	}
	if !res.Plan.Empty() || len(res.Plan.Restarts) != 0 {
		t.Errorf("no-op plan: %+v", res.Plan.Changes)
	}
	if hs.conn.connects != 2 {
		t.Errorf("%d connections for 2 runs", hs.conn.connects)
	}
}

func TestOneValueChangedOneFileOneRestart(t *testing.T) {
	hs := newHarness()
	if _, err := hs.run(t, testDesired(conf("a")), Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := hs.run(t, testDesired(conf("b")), Options{}); err != nil {
		t.Fatal(err)
	}
	want := []string{"owe app.service", "write /etc/app/app.conf", "restart app.service", "paid app.service"}
	if got := hs.host.mutations(); !slices.Equal(got, want) {
		t.Errorf("changing one value did %v, want %v", got, want)
	}
}

func TestOwnerOrModeDriftIsAnUpdate(t *testing.T) {
	hs := newHarness()
	if _, err := hs.run(t, testDesired(conf("a")), Options{}); err != nil {
		t.Fatal(err)
	}
	f := hs.host.files["/etc/other.conf"]
	f.mode = 0o666
	hs.host.files["/etc/other.conf"] = f
	if _, err := hs.run(t, testDesired(conf("a")), Options{}); err != nil {
		t.Fatal(err)
	}
	want := []string{"owe other.service", "write /etc/other.conf", "restart other.service", "paid other.service"}
	if got := hs.host.mutations(); !slices.Equal(got, want) {
		t.Errorf("mode drift: did %v, want %v", got, want)
	}
}

// A run killed after writing the file and before the restart leaves the
// restart owed; the next run, with nothing else to change, restarts it.
func TestFailedRestartStaysOwed(t *testing.T) {
	hs := newHarness()
	if _, err := hs.run(t, testDesired(conf("a")), Options{}); err != nil {
		t.Fatal(err)
	}
	hs.host.failOn = "systemctl restart app.service"
	hs.host.failErr = "killed"
	_, err := hs.run(t, testDesired(conf("b")), Options{})
	if err == nil {
		t.Fatal("the run whose restart failed succeeded")
	}
	if got := hs.host.mutations(); !slices.Equal(got, []string{"owe app.service", "write /etc/app/app.conf"}) {
		t.Errorf("failed run did %v", got)
	}
	if owed := hs.journal.Owed("app"); !slices.Equal(owed, []string{"app.service"}) {
		t.Fatalf("owed after the failed run = %v", owed)
	}
	hs.host.failOn = ""
	res, err := hs.run(t, testDesired(conf("b")), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"owe app.service", "restart app.service", "paid app.service"}
	if got := hs.host.mutations(); !slices.Equal(got, want) {
		t.Errorf("next run did %v, want %v", got, want)
	}
	if !slices.Equal(res.Plan.Restarts, []string{"app.service"}) {
		t.Errorf("plan restarts = %v", res.Plan.Restarts)
	}
	if owed := hs.journal.Owed("app"); len(owed) != 0 {
		t.Errorf("still owed: %v", owed)
	}
}

func TestUnhealthyAfterRestartStaysOwed(t *testing.T) {
	hs := newHarness()
	if _, err := hs.run(t, testDesired(conf("a")), Options{}); err != nil {
		t.Fatal(err)
	}
	hs.host.unhealthy["app.service"] = true
	_, err := hs.run(t, testDesired(conf("b")), Options{})
	if err == nil || !strings.Contains(err.Error(), "not healthy") || !strings.Contains(err.Error(), "the last lines of the journal") {
		t.Fatalf("err = %v, want a health gate failure with the journal tail", err)
	}
	if owed := hs.journal.Owed("app"); !slices.Equal(owed, []string{"app.service"}) {
		t.Errorf("owed = %v", owed)
	}
	if got := hs.host.mutations(); slices.Contains(got, "paid app.service") {
		t.Errorf("an unhealthy restart was paid: %v", got)
	}
}

func TestOweIsPersistedBeforeAnyWrite(t *testing.T) {
	hs := newHarness()
	if _, err := hs.run(t, testDesired(conf("a")), Options{}); err != nil {
		t.Fatal(err)
	}
	got := hs.host.mutations()
	first := slices.IndexFunc(got, func(s string) bool { return !strings.HasPrefix(s, "owe ") })
	if first != 1 || !strings.HasPrefix(got[0], "owe ") {
		t.Errorf("the journal was not written first: %v", got)
	}
}

func TestCheckDiffChangesNothingAndMasks(t *testing.T) {
	hs := newHarness()
	if _, err := hs.run(t, testDesired(conf("a")), Options{}); err != nil {
		t.Fatal(err)
	}
	// The host holds an old password the current inputs no longer know.
	f := hs.host.files["/etc/app/app.conf"]
	f.content = strings.Replace(f.content, secret, "old-rotated-pw", 1)
	hs.host.files["/etc/app/app.conf"] = f

	d := testDesired(conf("b"))
	d.Files[2].Content = []byte("TOKEN=" + secret + "-new\n")
	res, err := hs.run(t, d, Options{Check: true, Diff: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := hs.host.mutations(); len(got) != 0 {
		t.Errorf("check mode did %v", got)
	}
	if hs.host.runs != 2 {
		t.Errorf("check --diff made %d round trips, want 2 (facts, then the changed files)", hs.host.runs)
	}
	js, _ := json.Marshal(res.Plan)
	for _, leak := range []string{secret, "old-rotated-pw"} {
		if strings.Contains(string(js), leak) {
			t.Errorf("the plan shows a secret %q:\n%s", leak, js)
		}
	}
	var conf, env *Change
	for i, c := range res.Plan.Changes {
		switch c.Address {
		case "host.app:file:/etc/app/app.conf":
			conf = &res.Plan.Changes[i]
		case "host.app:file:/etc/app/secret.env":
			env = &res.Plan.Changes[i]
		}
	}
	if conf == nil || conf.Action != ActionUpdate || !strings.Contains(conf.Diff, "-name = a") || !strings.Contains(conf.Diff, "+name = b") {
		t.Errorf("app.conf change = %+v", conf)
	}
	if !strings.Contains(conf.Diff, "+password = (sensitive)") || !strings.Contains(conf.Diff, "-password = (sensitive)") {
		t.Errorf("password lines not masked:\n%s", conf.Diff)
	}
	if env == nil || env.Diff != "(sensitive content not shown)" {
		t.Errorf("secret.env change = %+v", env)
	}
	if !slices.Equal(res.Plan.Restarts, []string{"app.service"}) {
		t.Errorf("check plan restarts = %v", res.Plan.Restarts)
	}
	if owed := hs.journal.Owed("app"); len(owed) != 0 {
		t.Errorf("check mode owed restarts: %v", owed)
	}
}

func TestErrorsAreMasked(t *testing.T) {
	hs := newHarness()
	hs.host.failOn = "dst=/etc/app/app.conf"
	hs.host.failErr = "validation failed near password = " + secret
	var events []Event
	_, err := hs.run(t, testDesired(conf("a")), Options{Events: func(e Event) { events = append(events, e) }})
	if err == nil {
		t.Fatal("no error")
	}
	var ee *ExitError
	if !errors.As(err, &ee) || ee.What != "write /etc/app/app.conf" {
		t.Errorf("err = %#v", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error shows the secret: %v", err)
	}
	for _, e := range events {
		if strings.Contains(e.Message, secret) {
			t.Errorf("event shows the secret: %+v", e)
		}
	}
}

func TestParallelHostsJoinErrors(t *testing.T) {
	a, b := newFakeHost(), newFakeHost()
	b.failOn = "f() {"
	b.failErr = "boom"
	conn := &fakeConnector{hosts: map[string]*fakeHost{"a": a, "b": b}}
	targets := []Target{
		{Host: Host{Name: "a", Address: "192.0.2.1"}, Desired: testDesired(conf("a"))},
		{Host: Host{Name: "b", Address: "192.0.2.2"}, Desired: testDesired(conf("a"))},
	}
	res, err := Run(context.Background(), conn, targets, Options{Journal: newMemJournal(nil), HealthTimeout: time.Second})
	if err == nil || !strings.HasPrefix(err.Error(), "b: ") {
		t.Fatalf("err = %v, want b's failure prefixed with its name", err)
	}
	if res[0].Err != nil || len(res[0].Restarted) != 2 {
		t.Errorf("host a: %+v", res[0])
	}
}

func TestApplyNeedsJournal(t *testing.T) {
	_, err := Run(context.Background(), &fakeConnector{}, nil, Options{})
	if err == nil {
		t.Fatal("Run without a journal applied")
	}
}

func TestPackagesAndArtifactsPlan(t *testing.T) {
	d := Desired{
		Packages: []Package{
			{Name: "emqx-enterprise", Version: "5.10.4", Repo: true, Restart: "emqx.service"},
			{Name: "nodejs", Version: "24.*", Repo: true},
			{Name: "curl"},
		},
		Artifacts: []Artifact{{Name: "backend", Dir: "/opt/acco-backend/app", SHA256: "abc", LockSHA256: "lock2", Restart: "acco-backend.service"}},
		Units:     []Unit{{Name: "emqx.service"}, {Name: "acco-backend.service"}},
	}
	f := &Facts{
		Packages: map[string]string{"emqx-enterprise": "5.9.1", "nodejs": "24.11.1-1nodesource1", "curl": "7.88"},
		Markers:  map[string]string{"/opt/acco-backend/app.sha256": "old", "/opt/acco-backend/app.lock.sha256": "lock1"},
		Units:    map[string]UnitFact{"emqx.service": {Active: "active"}, "acco-backend.service": {Active: "active"}},
		Files:    map[string]FileFact{},
	}
	p := PlanHost("app", d, f, nil)
	got := map[string]string{}
	for _, c := range p.Changes {
		got[c.Address] = c.Action + " " + c.Reason
	}
	want := map[string]string{
		"host.app:package:emqx-enterprise":        "update version 5.9.1 installed",
		"host.app:package:nodejs":                 "noop ",
		"host.app:package:curl":                   "noop ",
		"host.app:artifact:/opt/acco-backend/app": "update archive changed; package-lock.json changed: npm ci",
		"host.app:unit:emqx.service":              "update restart: package emqx-enterprise changed",
		"host.app:unit:acco-backend.service":      "update restart: artifact backend changed",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %q, want %q", k, got[k], w)
		}
	}
	if !p.update {
		t.Error("a repository package to install does not trigger apt-get update")
	}
}

func TestDatabaseStepRunsBeforeRestarts(t *testing.T) {
	hs := newHarness()
	d := testDesired(conf("a"))
	dbCalls := []bool{}
	target := Target{Host: Host{Name: "app", Address: "192.0.2.1"}, Desired: d, Database: func(_ context.Context, _ DialFunc, check bool) ([]DBStep, error) {
		dbCalls = append(dbCalls, check)
		hs.host.record("database")
		return []DBStep{{Address: "database_db.main.acco:table:positions", Applied: !check}}, nil
	}}
	opts := Options{Journal: hs.journal, HealthTimeout: 50 * time.Millisecond, HealthInterval: 10 * time.Millisecond}
	res, err := Run(context.Background(), hs.conn, []Target{target}, opts)
	if err != nil {
		t.Fatal(err)
	}
	got := hs.host.mutations()
	db, restart := slices.Index(got, "database"), slices.Index(got, "restart app.service")
	if db < 0 || restart < 0 || db > restart || db < slices.Index(got, "write /etc/other.conf") {
		t.Errorf("order: %v", got)
	}
	if len(res[0].Database) != 1 {
		t.Errorf("database steps not reported: %+v", res[0])
	}
	opts.Check = true
	if _, err := Run(context.Background(), hs.conn, []Target{target}, opts); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(dbCalls, []bool{false, true}) {
		t.Errorf("database calls (check flag) = %v", dbCalls)
	}
}
