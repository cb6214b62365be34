package configure

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/templates"
)

// localRunner runs the engine's scripts with the local sh, for tests of the
// scripts themselves (as the SSH runner would on a host, minus SSH).
type localRunner struct{ runs int }

func (r *localRunner) Run(ctx context.Context, script string, stdin io.Reader) ([]byte, error) {
	r.runs++
	cmd := exec.CommandContext(ctx, "sh", "-c", script)
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		code := -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return out.Bytes(), &ExitError{Code: code, Stderr: errb.String()}
	}
	return out.Bytes(), nil
}

func (r *localRunner) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

func (r *localRunner) Close() error { return nil }

func owner(t *testing.T) (string, string) {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		t.Fatal(err)
	}
	return u.Username, g.Name
}

func TestWriteScriptLocally(t *testing.T) {
	dir := t.TempDir()
	usr, grp := owner(t)
	dst := filepath.Join(dir, "sub dir", "it's.conf")
	r := &localRunner{}
	write := func(f File) error {
		_, err := r.Run(context.Background(), writeScript(f), bytes.NewReader(f.Content))
		return err
	}
	f := File{Path: dst, Owner: usr, Group: grp, Mode: 0o640, Content: []byte("one\n")}
	if err := write(f); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(dst)
	st, _ := os.Stat(dst)
	if string(got) != "one\n" || st.Mode().Perm() != 0o640 {
		t.Errorf("wrote %q mode %o", got, st.Mode().Perm())
	}

	// A failing validation leaves the old file and no staging directory.
	f.Content = []byte("two\n")
	f.Validate = "grep -q three {}"
	if err := write(f); err == nil || !strings.Contains(err.Error(), "validation failed") {
		t.Errorf("failing validation: err = %v", err)
	}
	got, _ = os.ReadFile(dst)
	if string(got) != "one\n" {
		t.Errorf("after a failed validation the file is %q", got)
	}
	// StrictStderr: exit 0 with stderr output still fails.
	f.Validate = "echo warning >&2"
	f.StrictStderr = true
	if err := write(f); err == nil {
		t.Error("a validation writing to stderr passed with StrictStderr")
	}
	f.StrictStderr = false
	f.Validate = "grep -q two {}"
	if err := write(f); err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(dst)
	if string(got) != "two\n" {
		t.Errorf("file = %q", got)
	}

	// In place: the new file is at its path during the check; restored on failure.
	f.Content = []byte("three\n")
	f.ValidateInPlace = true
	f.Validate = "grep -q four " + shellQuote(dst)
	if err := write(f); err == nil {
		t.Error("in-place validation failure not reported")
	}
	got, _ = os.ReadFile(dst)
	if string(got) != "two\n" {
		t.Errorf("in-place failure left %q", got)
	}
	f.Validate = "grep -q three " + shellQuote(dst)
	f.Post = "touch " + shellQuote(filepath.Join(dir, "post-ran"))
	if err := write(f); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "post-ran")); err != nil {
		t.Error("Post did not run")
	}
	entries, _ := os.ReadDir(filepath.Dir(dst))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".acco-") {
			t.Errorf("staging left behind: %s", e.Name())
		}
	}
}

func TestProbeLocally(t *testing.T) {
	dir := t.TempDir()
	usr, grp := owner(t)
	p := filepath.Join(dir, "a b.conf")
	if err := os.WriteFile(p, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "app.sha256"), []byte("abc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "app.lock.sha256"), []byte("def"), 0o600); err != nil { // no newline
		t.Fatal(err)
	}
	d := Desired{
		Files:     []File{{Path: p}, {Path: filepath.Join(dir, "missing")}, {Path: dir}, {Path: p}},
		Units:     []Unit{{Name: "acco-no-such.service"}},
		Packages:  []Package{{Name: "acco-no-such-package"}},
		Artifacts: []Artifact{{Dir: filepath.Join(dir, "app")}},
	}
	r := &localRunner{}
	f, err := Probe(context.Background(), r, d)
	if err != nil {
		t.Fatal(err)
	}
	if r.runs != 1 {
		t.Errorf("%d round trips", r.runs)
	}
	want := FileFact{Exists: true, SHA256: sha([]byte("hello\n")), Owner: usr, Group: grp, Mode: 0o600}
	if f.Files[p] != want {
		t.Errorf("fact %+v, want %+v", f.Files[p], want)
	}
	if f.Files[filepath.Join(dir, "missing")].Exists {
		t.Error("missing file exists")
	}
	if v, ok := f.Packages["acco-no-such-package"]; !ok || v != "" {
		t.Errorf("package fact %q %v", v, ok)
	}
	if _, ok := f.Units["acco-no-such.service"]; !ok {
		t.Error("no unit fact")
	}
	if f.Files[dir].Exists {
		t.Error("a directory counts as a file")
	}
	if f.Markers[filepath.Join(dir, "app.sha256")] != "abc" || f.Markers[filepath.Join(dir, "app.lock.sha256")] != "def" {
		t.Errorf("markers %v", f.Markers)
	}
}

func tgz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	tw := tar.NewWriter(gz)
	for _, name := range []string{"package/", "package/package-lock.json", "package/package.json", "package/dist/server.js"} {
		c, ok := files[name]
		if !ok && !strings.HasSuffix(name, "/") {
			continue
		}
		h := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(c)), Typeflag: tar.TypeReg}
		if strings.HasSuffix(name, "/") {
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(c))
	}
	tw.Close()
	gz.Close()
	return b.Bytes()
}

func TestArtifactLocally(t *testing.T) {
	dir := t.TempDir()
	// A fake npm on PATH records that npm ci ran.
	bin := filepath.Join(dir, "bin")
	os.MkdirAll(bin, 0o755)
	os.WriteFile(filepath.Join(bin, "npm"), []byte("#!/bin/sh\necho \"$@\" >> "+shellQuote(filepath.Join(dir, "npm.log"))+"\nmkdir -p node_modules/dep\n"), 0o755)
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))

	mk := func(lock, server string) Artifact {
		p := filepath.Join(dir, "a.tgz")
		os.WriteFile(p, tgz(t, map[string]string{"package/package-lock.json": lock, "package/package.json": "{}", "package/dist/server.js": server}), 0o644)
		a, err := NewArtifact("backend", p, filepath.Join(dir, "opt", "app"), "acco-backend.service")
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	r := &localRunner{}
	up := func(a Artifact) {
		rc, _ := a.Open()
		defer rc.Close()
		if _, err := r.Run(context.Background(), artifactScript(a), rc); err != nil {
			t.Fatal(err)
		}
	}
	npmRuns := func() int {
		b, _ := os.ReadFile(filepath.Join(dir, "npm.log"))
		return strings.Count(string(b), "ci --omit=dev")
	}
	a1 := mk("lock1", "v1")
	if a1.Strip != 1 || a1.LockSHA256 != sha([]byte("lock1")) {
		t.Fatalf("artifact %+v", a1)
	}
	up(a1)
	if got, _ := os.ReadFile(filepath.Join(dir, "opt", "app", "dist", "server.js")); string(got) != "v1" || npmRuns() != 1 {
		t.Fatalf("first upload: server.js %q, npm ci ran %d times", got, npmRuns())
	}
	a2 := mk("lock1", "v2")
	if a2.SHA256 == a1.SHA256 {
		t.Fatal("different archives hash the same")
	}
	up(a2)
	if got, _ := os.ReadFile(filepath.Join(dir, "opt", "app", "dist", "server.js")); string(got) != "v2" || npmRuns() != 1 {
		t.Errorf("same lock file: server.js %q, npm ci ran %d times (want 1)", got, npmRuns())
	}
	if _, err := os.Stat(filepath.Join(dir, "opt", "app", "node_modules", "dep")); err != nil {
		t.Error("node_modules not carried over")
	}
	up(mk("lock2", "v3"))
	if npmRuns() != 2 {
		t.Errorf("changed lock file: npm ci ran %d times, want 2", npmRuns())
	}
	f, err := Probe(context.Background(), r, Desired{Artifacts: []Artifact{a1}})
	if err != nil {
		t.Fatal(err)
	}
	if f.Markers[a1.marker()] == "" || f.Markers[a1.lockMarker()] != sha([]byte("lock2")) {
		t.Errorf("markers %v", f.Markers)
	}
}

func TestServicesFromShippedEnvironments(t *testing.T) {
	names, err := spec.Names("../environments")
	if err != nil {
		t.Fatal(err)
	}
	in := templates.Inputs{
		Databases:             map[string]templates.DB{"main": {Host: "db.example", Port: 5432, CACert: "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n"}},
		Passwords:             map[string]string{"main.emqx": "p1", "main.powersync": "p2", "main.backend": "p3"},
		EMQXDashboardPassword: "d", EMQXCookie: "c", PowerSyncAPIToken: "tok", MQTTBackendPassword: "m",
		TLS:          map[string]templates.TLS{"mqtts": {Cert: "cert", Key: "key"}},
		PowerSyncTLS: templates.TLS{Cert: "ps-cert", Key: "ps-key"},
	}
	for _, n := range names {
		e, err := spec.Load("../environments", n, nil)
		if err != nil {
			t.Fatal(err)
		}
		d, err := Services(e, in, ServicesOptions{NoArtifact: true})
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		units := map[string]bool{}
		for _, u := range d.Units {
			units[u.Name] = true
		}
		for _, f := range d.Files {
			if f.Restart != "" && !units[f.Restart] {
				t.Errorf("%s: %s restarts %s, which is not a managed unit", n, f.Path, f.Restart)
			}
		}
		want := []string{"acco-backend.service", "systemd-journald.service"}
		if e.Services.Broker == spec.BrokerEMQX {
			want = append(want, "emqx.service")
		} else {
			want = append(want, "mosquitto.service")
		}
		if !e.Services.Offline {
			want = append(want, "powersync.service")
		} else if units["powersync.service"] {
			t.Errorf("%s: offline, but powersync.service is managed", n)
		}
		proxied := !e.Services.Offline && e.Services.PowerSync != nil && e.Services.PowerSync.TLS != nil
		if proxied {
			want = append(want, templates.UnitNginx)
			checkNginxRole(t, n, d)
		} else if units[templates.UnitNginx] {
			t.Errorf("%s: no services.powersync.tls, but nginx is managed", n)
		}
		for _, u := range want {
			if !units[u] {
				t.Errorf("%s: unit %s not managed", n, u)
			}
		}
		script := probeScript(d)
		if strings.Count(script, "\nf ") < len(d.Files) {
			t.Errorf("%s: the probe misses files", n)
		}
	}
}

func TestServicesOffline(t *testing.T) {
	e, err := spec.Load("../environments", "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	in := templates.Inputs{
		Databases:             map[string]templates.DB{"main": {Host: "127.0.0.1", Port: 5432, CACert: "ca"}},
		Passwords:             map[string]string{"main.emqx": "p1", "main.powersync": "p2", "main.backend": "p3"},
		EMQXDashboardPassword: "d", EMQXCookie: "c", PowerSyncAPIToken: "tok", MQTTBackendPassword: "m",
	}
	if _, err := Services(e, in, ServicesOptions{Offline: true, NoArtifact: true}); err == nil {
		t.Error("offline with EMQX accepted")
	}
	e.Services.Broker = spec.BrokerMosquitto
	e.Services.Mosquitto = &spec.Mosquitto{Listeners: map[string]*spec.Listener{"mqtt": {Type: "tcp", Bind: "0.0.0.0", Port: 1883}}}
	d, err := Services(e, in, ServicesOptions{Offline: true, NoArtifact: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range d.Files {
		if strings.Contains(f.Path, "powersync") || strings.Contains(f.Path, "nodesource") || f.Early {
			t.Errorf("offline desired has %s", f.Path)
		}
	}
	for _, p := range d.Packages {
		if p.Repo || p.Name == "docker.io" {
			t.Errorf("offline desired installs %+v", p)
		}
	}
	if len(d.Commands) != 0 {
		t.Errorf("offline commands %v", d.Commands)
	}
}

func TestProbeInstalledPackage(t *testing.T) {
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		t.Skip("no dpkg-query: not a Debian host")
	}
	f, err := Probe(context.Background(), &localRunner{}, Desired{Packages: []Package{{Name: "bash"}}})
	if err != nil {
		t.Fatal(err)
	}
	if v := f.Packages["bash"]; v == "" || strings.Contains(v, " ") {
		t.Errorf("bash version %q", v)
	}
	if !versionMatch("5.*", f.Packages["bash"]) {
		t.Errorf("bash %q does not match 5.*", f.Packages["bash"])
	}
}

// TestParseFactsUnits reads systemctl show's blocks in the order the units
// were asked, as a Debian 12 host prints them (a unit that does not exist
// has an empty UnitFileState).
func TestParseFactsUnits(t *testing.T) {
	out := "F\t/etc/x\t-\t-\n" +
		"#units\n" +
		"ActiveState=active\nUnitFileState=static\n\n" +
		"UnitFileState=enabled\nActiveState=failed\n\n" +
		"ActiveState=inactive\nUnitFileState=\n" +
		"#packages\n" +
		"mosquitto\tinstalled 2.0.11-1.2+deb12u2\n" +
		"nodejs\tconfig-files 18.20.4+dfsg-1~deb12u3\n"
	f, err := parseFacts([]byte(out), probed{units: []string{"systemd-journald.service", "mosquitto.service", "acco-backend.service"}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]UnitFact{
		"systemd-journald.service": {Active: "active", Enabled: "static"},
		"mosquitto.service":        {Active: "failed", Enabled: "enabled"},
		"acco-backend.service":     {Active: "inactive", Enabled: ""},
	}
	for u, w := range want {
		if f.Units[u] != w {
			t.Errorf("%s: %+v, want %+v", u, f.Units[u], w)
		}
	}
	if f.Packages["mosquitto"] != "2.0.11-1.2+deb12u2" || f.Packages["nodejs"] != "" {
		t.Errorf("packages %v", f.Packages)
	}
	if _, err := parseFacts([]byte(out), probed{units: []string{"one.service"}}); err == nil {
		t.Error("more unit blocks than units asked: no error")
	}
}

// checkNginxRole checks the TLS proxy in front of PowerSync: nginx from
// Debian's archive, after PowerSync, its configuration checked with nginx -t
// in place, its key readable by root only, and its health gate asking
// PowerSync's liveness through it over TLS.
func checkNginxRole(t *testing.T, env string, d Desired) {
	t.Helper()
	pkg := false
	for _, p := range d.Packages {
		if p.Name == "nginx" {
			pkg = !p.Repo && p.Restart == templates.UnitNginx
		}
	}
	if !pkg {
		t.Errorf("%s: nginx is not installed from Debian's archive: %+v", env, d.Packages)
	}
	order := map[string]int{}
	for i, u := range d.Units {
		order[u.Name] = i
		if u.Name == templates.UnitNginx {
			script := healthScript(u.Name, u.Health)
			if !strings.Contains(script, "--insecure https://127.0.0.1:443/probes/liveness ||") || !strings.Contains(script, "sport = :443") {
				t.Errorf("%s: nginx's health gate:\n%s", env, script)
			}
		}
	}
	if order[templates.UnitNginx] < order[templates.UnitPowerSync] {
		t.Errorf("%s: nginx starts before PowerSync, which its health gate reaches", env)
	}
	seen := map[string]File{}
	for _, f := range d.Files {
		seen[f.Path] = f
	}
	conf, ok := seen[templates.NginxPowerSyncConf]
	if !ok || !conf.ValidateInPlace || !strings.Contains(conf.Validate, "nginx -t") || conf.Restart != templates.UnitNginx {
		t.Errorf("%s: %s: %+v", env, templates.NginxPowerSyncConf, conf)
	}
	key := seen[templates.NginxCertDir+"/powersync.key"]
	if key.Mode != 0o600 || key.Owner != "root" || !key.Sensitive {
		t.Errorf("%s: the proxy's key is %o %s, sensitive %v", env, key.Mode, key.Owner, key.Sensitive)
	}
}

// TestHealthScriptQuotesTheURL runs the health script's HTTP probe with a
// URL holding shell syntax: it stays one word in curl's command and in the
// message.
func TestHealthScriptQuotesTheURL(t *testing.T) {
	url := "http://127.0.0.1:1/x';touch pwned;'"
	s := healthScript("x.service", Health{HTTP: url})
	want := "curl -fsS -o /dev/null --max-time 5 " + shellQuote(url) + " || { echo " + shellQuote("HTTP probe "+url+" failed") + "; exit 1; }\n"
	if !strings.HasSuffix(s, want) {
		t.Errorf("healthScript:\n%s\nwant it to end with:\n%s", s, want)
	}
}
