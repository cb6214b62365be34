package configure

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/templates"
)

// fakeNPM puts an npm on PATH that logs its arguments and the user it runs
// as, and makes node_modules; it returns the log's path.
func fakeNPM(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "npm.log")
	script := "#!/bin/sh\necho \"$(id -un) $*\" >> " + shellQuote(log) + "\nmkdir -p node_modules/dep\n"
	if err := os.WriteFile(filepath.Join(bin, "npm"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	return log
}

// TestNpmCIIgnoresInstallScriptsByDefault: the host runs npm ci as root
// only with --ignore-scripts, so no dependency's install script runs as
// root.
func TestNpmCIIgnoresInstallScriptsByDefault(t *testing.T) {
	dir := t.TempDir()
	log := fakeNPM(t, dir)
	p := filepath.Join(dir, "a.tgz")
	if err := os.WriteFile(p, tgz(t, map[string]string{"package/package-lock.json": "lock", "package/package.json": "{}"}), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := NewArtifact("backend", p, filepath.Join(dir, "opt", "app"), templates.UnitBackend)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := a.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := (&localRunner{}).Run(context.Background(), artifactScript(a), rc); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if strings.Contains(line, " ci ") && !strings.Contains(line, "--ignore-scripts") {
			t.Errorf("npm ran with install scripts by default: %q", line)
		}
	}
	if !strings.Contains(string(b), " ci ") {
		t.Errorf("npm ci did not run: %q", b)
	}
}

// TestNpmCIInstallScriptsAsServiceUser: with install scripts on, npm ci
// runs as the service user in a staging directory it owns, and what goes
// live is root's again. It runs the script locally as root, with daemon
// standing in for the service user.
func TestNpmCIInstallScriptsAsServiceUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (setpriv to another user)")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("no setpriv (util-linux)")
	}
	dir := t.TempDir()
	// The stand-in user must reach the fake npm and the staging directory.
	for d := dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	log := fakeNPM(t, dir)
	if err := os.WriteFile(log, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(log, 0o666); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "a.tgz")
	if err := os.WriteFile(p, tgz(t, map[string]string{"package/package-lock.json": "lock", "package/package.json": "{}", "package/dist/server.js": "v1"}), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := NewArtifact("backend", p, filepath.Join(dir, "opt", "app"), templates.UnitBackend)
	if err != nil {
		t.Fatal(err)
	}
	a.InstallScripts, a.User = true, "daemon"
	script := artifactScript(a)
	if strings.Contains(script, "--ignore-scripts") {
		t.Errorf("install scripts on, but npm ci ignores them:\n%s", script)
	}
	rc, err := a.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := (&localRunner{}).Run(context.Background(), script, rc); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); !strings.HasPrefix(got, "daemon ci --omit=dev") {
		t.Errorf("npm ran as %q, want daemon running npm ci", got)
	}
	app := filepath.Join(dir, "opt", "app")
	err = filepath.WalkDir(app, func(path string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		u, g := fileOwner(t, path)
		if u != 0 || g != 0 {
			t.Errorf("%s is owned by %d:%d, want root's", path, u, g)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(app, "node_modules", "dep")); err != nil {
		t.Errorf("node_modules not installed: %v", err)
	}
	f, err := Probe(context.Background(), &localRunner{}, Desired{Artifacts: []Artifact{a}})
	if err != nil {
		t.Fatal(err)
	}
	if f.Markers[a.marker()] != a.markerValue() || f.Markers[a.lockMarker()] != a.lockValue() {
		t.Errorf("markers %v", f.Markers)
	}
	if p := PlanHost("app", Desired{Artifacts: []Artifact{a}}, f, nil); !p.Empty() {
		t.Errorf("same artifact, same mode: plan %+v", p.Changes)
	}
	a.InstallScripts = false
	if p := PlanHost("app", Desired{Artifacts: []Artifact{a}}, f, nil); p.Empty() || !strings.Contains(p.Changes[0].Reason, "install scripts turned off: npm ci") {
		t.Errorf("install scripts turned off: plan %+v, want the dependencies installed again", p.Changes)
	}
}

// TestInstallScriptsFromYAML: services.backend.install_scripts reaches the
// artifact, with the backend's service user.
func TestInstallScriptsFromYAML(t *testing.T) {
	env, err := spec.Load("../environments", "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "a.tgz")
	if err := os.WriteFile(p, tgz(t, map[string]string{"package/package-lock.json": "lock", "package/package.json": "{}"}), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, on := range []bool{false, true} {
		env.Services.Backend.InstallScripts = on
		d, err := Services(env, secretInputs(t), ServicesOptions{Artifact: p})
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Artifacts) != 1 || d.Artifacts[0].InstallScripts != on || d.Artifacts[0].User != templates.BackendUser {
			t.Errorf("install_scripts %v: artifacts %+v", on, d.Artifacts)
		}
		if got := strings.Contains(artifactScript(d.Artifacts[0]), "--ignore-scripts"); got == on {
			t.Errorf("install_scripts %v: --ignore-scripts in the script: %v", on, got)
		}
	}
}

// fileOwner returns the uid and gid of path (not following a symlink).
func fileOwner(t *testing.T, path string) (uint32, uint32) {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		t.Skip("no owner information on this system")
	}
	return sys.Uid, sys.Gid
}
