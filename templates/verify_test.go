package templates

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// vendorEMQXUnit stands in for the unit the emqx-enterprise package installs
// in /lib/systemd/system (same user, start command and install target), so
// that the drop-in is verified as systemd merges it.
const vendorEMQXUnit = `[Unit]
Description=emqx daemon
After=network.target

[Service]
User=emqx
Group=emqx
Type=simple
Environment=HOME=/var/lib/emqx
ExecStart=/bin/bash /usr/bin/emqx foreground
LimitNOFILE=1048576
TimeoutStopSec=120s
Restart=on-failure
RestartSec=120s

[Install]
WantedBy=multi-user.target
`

// stubUnit stands in for units other packages install (docker.io's
// docker.service), which Requires= needs to find.
const stubUnit = "[Unit]\nDescription=stand-in\n[Service]\nExecStart=/bin/true\n"

var execKeys = []string{"ExecStart=", "ExecStartPre=", "ExecStartPost=", "ExecStop=", "ExecStopPost=", "ExecReload="}

// stubExecutables points Exec*= commands that do not exist on this machine
// (docker, node on a bare CI host) at an executable stub in dir: verify
// refuses a missing executable, and the binaries come from packages that are
// installed on the target, not here. Everything else in the unit is kept.
func stubExecutables(t *testing.T, unit []byte, dir string) []byte {
	t.Helper()
	lines := strings.Split(string(unit), "\n")
	for i, l := range lines {
		for _, k := range execKeys {
			rest, ok := strings.CutPrefix(l, k)
			if !ok {
				continue
			}
			prefix := ""
			for len(rest) > 0 && strings.ContainsRune("-@:+!", rune(rest[0])) {
				prefix, rest = prefix+rest[:1], rest[1:]
			}
			bin, args, _ := strings.Cut(rest, " ")
			if _, err := os.Stat(bin); err == nil {
				continue
			}
			stub := filepath.Join(dir, "stub-bin", path.Base(bin))
			if err := os.MkdirAll(filepath.Dir(stub), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(stub, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s is not installed here: verifying with a stub in its place", bin)
			lines[i] = k + prefix + stub + " " + args
		}
	}
	return []byte(strings.Join(lines, "\n"))
}

// TestSystemdAnalyzeVerify runs systemd-analyze verify on every rendered unit
// and drop-in; any output on stderr (an unknown key, a bad value) fails, not
// only a non-zero exit (systemd 252 exits 0 on those).
func TestSystemdAnalyzeVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not found (Debian package systemd): units not verified")
	}
	for name, e := range envs(t) {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			var units []string
			for _, f := range render(t, e) {
				switch {
				case strings.HasPrefix(f.Path, "/etc/systemd/system/") && strings.HasSuffix(f.Path, ".service"):
					base := path.Base(f.Path)
					if err := os.WriteFile(filepath.Join(dir, base), stubExecutables(t, f.Content, dir), 0o644); err != nil {
						t.Fatal(err)
					}
					units = append(units, base)
				case strings.HasPrefix(f.Path, "/etc/systemd/system/") && strings.Contains(f.Path, ".service.d/"):
					unit := path.Base(path.Dir(f.Path))
					unit = strings.TrimSuffix(unit, ".d")
					if err := os.MkdirAll(filepath.Join(dir, unit+".d"), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(filepath.Join(dir, unit+".d", path.Base(f.Path)), f.Content, 0o644); err != nil {
						t.Fatal(err)
					}
					if unit != "emqx.service" {
						t.Fatalf("drop-in %s for a unit this test has no vendor stand-in for", f.Path)
					}
					if err := os.WriteFile(filepath.Join(dir, unit), []byte(vendorEMQXUnit), 0o644); err != nil {
						t.Fatal(err)
					}
					units = append(units, unit)
				}
			}
			if err := os.WriteFile(filepath.Join(dir, "docker.service"), []byte(stubUnit), 0o644); err != nil {
				t.Fatal(err)
			}
			if len(units) == 0 {
				t.Fatal("no unit rendered")
			}
			for _, u := range units {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				cmd := exec.CommandContext(ctx, sa, "verify", "--man=no", "./"+u)
				cmd.Dir = dir
				var stderr, stdout bytes.Buffer
				cmd.Stderr, cmd.Stdout = &stderr, &stdout
				err := cmd.Run()
				cancel()
				if err != nil || stderr.Len() > 0 {
					t.Errorf("systemd-analyze verify %s: %v\nstderr:\n%s\nstdout:\n%s", u, err, stderr.String(), stdout.String())
				}
			}
		})
	}
}

// replaceEnvTags turns PowerSync's `!env PS_X` scalars into the strings the
// service would see, so the document can be checked against the schema.
func replaceEnvTags(n *yaml.Node) {
	if n.Tag == "!env" {
		n.Tag = "!!str"
		n.Value = "placeholder-for-" + n.Value
		n.Style = 0
	}
	for _, c := range n.Content {
		replaceEnvTags(c)
	}
}

func powersyncJSON(t *testing.T, content []byte) []byte {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(content, &doc); err != nil {
		t.Fatalf("powersync.yaml does not parse: %v", err)
	}
	replaceEnvTags(&doc)
	var v any
	if err := doc.Decode(&v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const validateJS = `
import Ajv from "ajv";
import fs from "node:fs";
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const schema = JSON.parse(fs.readFileSync(require.resolve("@powersync/service-schema/schema.json"), "utf8"));
const ajv = new Ajv({ allErrors: true, strict: false });
const validate = ajv.compile(schema);
let failed = false;
for (const file of process.argv.slice(2)) {
  const doc = JSON.parse(fs.readFileSync(file, "utf8"));
  if (!validate(doc)) {
    failed = true;
    console.error(file + ": " + JSON.stringify(validate.errors, null, 1));
  }
}
process.exit(failed ? 1 : 0);
`

// schemaDir installs @powersync/service-schema and ajv from npm once per
// machine (cached under the user cache directory).
func schemaDir(t *testing.T) string {
	t.Helper()
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Skip("npm not found: powersync.yaml not checked against @powersync/service-schema")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node not found: powersync.yaml not checked against @powersync/service-schema")
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "acco-test", "powersync-schema-1.26.0")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@powersync", "service-schema", "json-schema", "powersync-config.json")); err == nil {
		return dir
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "install", "--no-audit", "--no-fund", "--silent", "--prefix", dir,
		"@powersync/service-schema@1.26.0", "ajv@8")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("npm install @powersync/service-schema failed (registry unreachable?): %v\n%s", err, out)
	}
	return dir
}

// TestPowerSyncSchema validates every rendered powersync.yaml against the
// JSON schema PowerSync publishes, with ajv, and checks that each top-level
// key is one the schema declares (its root allows additional properties, so
// ajv alone would accept a misspelt key).
func TestPowerSyncSchema(t *testing.T) {
	dir := schemaDir(t)
	raw, err := os.ReadFile(filepath.Join(dir, "node_modules", "@powersync", "service-schema", "json-schema", "powersync-config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "validate.mjs"), []byte(validateJS), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{filepath.Join(dir, "validate.mjs")}
	for name, e := range envs(t) {
		for _, f := range render(t, e) {
			if path.Base(f.Path) != "powersync.yaml" {
				continue
			}
			j := powersyncJSON(t, f.Content)
			var top map[string]any
			if err := json.Unmarshal(j, &top); err != nil {
				t.Fatal(err)
			}
			for k := range top {
				if _, ok := schema.Properties[k]; !ok {
					t.Errorf("%s: powersync.yaml key %q is not in the schema", name, k)
				}
			}
			p := filepath.Join(t.TempDir(), name+".json")
			if err := os.WriteFile(p, j, 0o644); err != nil {
				t.Fatal(err)
			}
			args = append(args, p)
		}
	}
	if len(args) == 1 {
		t.Fatal("no powersync.yaml rendered")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("powersync.yaml fails @powersync/service-schema 1.26.0: %v\n%s", err, out)
	}
}

// TestPowerSyncSchemaRejects proves the check can fail: a wrong type for port.
func TestPowerSyncSchemaRejects(t *testing.T) {
	dir := schemaDir(t)
	if err := os.WriteFile(filepath.Join(dir, "validate.mjs"), []byte(validateJS), 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(p, []byte(`{"port": {"x": 1}, "replication": {"connections": "nope"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", filepath.Join(dir, "validate.mjs"), p)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("a bad config passed the schema check:\n%s", out)
	}
}

// TestSystemdAnalyzeVerifyCatchesTypos proves the check above can fail: a
// misspelt key exits 0 but writes to stderr.
func TestSystemdAnalyzeVerifyCatchesTypos(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not found (Debian package systemd)")
	}
	dir := t.TempDir()
	unit := "[Service]\nExecStart=/bin/true\nRestrat=on-failure\n"
	if err := os.WriteFile(filepath.Join(dir, "typo.service"), []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sa, "verify", "--man=no", "./typo.service")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	_ = cmd.Run()
	if !strings.Contains(stderr.String(), "Restrat") {
		t.Errorf("a misspelt key gave no warning on stderr: %q", stderr.String())
	}
}
