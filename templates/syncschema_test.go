package templates

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// syncRulesVersion is the @powersync/service-sync-rules release the sync
// configs are checked with: the newest the npm registry here offers (the
// image 1.25.0 bundles 0.40.0; the legacy bucket_definitions parser is the
// same).
const syncRulesVersion = "0.38.1"

// syncRulesDir installs @powersync/service-sync-rules (PowerSync's own
// parser of sync configs, and its JSON schema), ajv and yaml from npm once
// per machine (cached under the user cache directory).
func syncRulesDir(t *testing.T) string {
	t.Helper()
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Skip("npm not found: sync configs not checked with @powersync/service-sync-rules")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node not found: sync configs not checked with @powersync/service-sync-rules")
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "acco-test", "powersync-sync-rules-"+syncRulesVersion)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@powersync", "service-sync-rules", "schema", "sync_rules.json")); err == nil {
		return dir
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "install", "--no-audit", "--no-fund", "--silent", "--prefix", dir,
		"@powersync/service-sync-rules@"+syncRulesVersion, "ajv@8", "yaml@2")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("npm install @powersync/service-sync-rules failed (registry unreachable?): %v\n%s", err, out)
	}
	return dir
}

// checkSyncJS checks sync configs as PowerSync reads them. For each case
// ({name, file, verifyTable, tokens: [{jwt, buckets}]}) it validates the
// YAML against the package's JSON schema with ajv, parses it with
// SqlSyncRules.fromYaml (any fatal error fails), and then evaluates it:
// acco verify's token (claim acco: verify) gets acco's bucket, which holds
// the verification device's row of verifyTable and no other row; tokens
// without the claim never get it; each listed token gets exactly the
// listed static buckets.
const checkSyncJS = `
import Ajv from "ajv";
import fs from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { SqlSyncRules, DEFAULT_HYDRATION_STATE, RequestParameters, BaseJwtPayload, DEFAULT_TAG } from "@powersync/service-sync-rules";
const schema = JSON.parse(fs.readFileSync(path.resolve("node_modules/@powersync/service-sync-rules/schema/sync_rules.json"), "utf8"));
const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
const cases = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
let failed = false;
const fail = (c, msg) => { failed = true; console.error(c.name + ": " + msg); };
const buckets = (h, jwt) => {
  const r = h.getBucketParameterQuerier({ globalParameters: new RequestParameters(new BaseJwtPayload(jwt), {}), hasDefaultStreams: true, streams: {} });
  if (r.errors.length) throw new Error(JSON.stringify(r.errors));
  return r.querier.staticBuckets.map(b => b.bucket).sort();
};
const isAcco = b => b.startsWith("acco_verify");
for (const c of cases) try {
  const src = fs.readFileSync(c.file, "utf8");
  if (!validate(YAML.parse(src))) fail(c, "schema: " + JSON.stringify(validate.errors));
  const { config, errors } = SqlSyncRules.fromYaml(src, { defaultSchema: "public", throwOnError: false });
  const fatal = errors.filter(e => e.type !== "warning");
  if (fatal.length) { fail(c, "PowerSync refuses it: " + fatal.map(e => String(e.message).split("\n")[0]).join("; ")); continue; }
  const h = config.hydrate({ hydrationState: DEFAULT_HYDRATION_STATE, sqlite: null });
  const verify = buckets(h, { sub: "acco-verify", aud: "acco-app", acco: "verify" });
  for (const jwt of [{ sub: "user1", aud: "acco-app" }, { sub: "acco-verify", aud: "acco-app" }, { sub: "user1", aud: "acco-app", acco: "other" }]) {
    const got = buckets(h, jwt);
    if (got.some(isAcco)) fail(c, "an app token " + JSON.stringify(jwt) + " gets acco's bucket: " + got);
  }
  if (c.verifyTable) {
    if (!verify.some(isAcco)) fail(c, "acco verify's token does not get acco's bucket: " + verify);
    const row = (table, dev) => h.evaluateRow({ sourceTable: { connectionTag: DEFAULT_TAG, schema: "public", name: table }, record: { device_id: dev, lat: 45.76, lon: 4.83 } });
    const mine = row(c.verifyTable, "acco-verify").filter(r => isAcco(r.bucket));
    if (mine.length !== 1 || mine[0].id !== "acco-verify" || mine[0].table !== c.verifyTable) fail(c, "the verification device's row is not in acco's bucket under its id: " + JSON.stringify(mine));
    for (const [table, dev] of [[c.verifyTable, "t1"], ["devices", "acco-verify"], ["devices", "t1"]]) {
      const other = row(table, dev).filter(r => isAcco(r.bucket));
      if (other.length) fail(c, "acco's bucket holds " + table + " " + dev + ": " + JSON.stringify(other));
    }
  } else if (verify.some(isAcco)) fail(c, "acco's bucket without a table to verify");
  for (const tk of c.tokens || []) {
    const got = buckets(h, tk.jwt);
    if (JSON.stringify(got) !== JSON.stringify([...tk.buckets].sort())) fail(c, "token " + JSON.stringify(tk.jwt) + " gets " + JSON.stringify(got) + ", want " + JSON.stringify(tk.buckets));
  }
} catch (e) { fail(c, String(e).split("\n")[0]); }
process.exit(failed ? 1 : 0);
`

type syncToken struct {
	JWT     map[string]any `json:"jwt"`
	Buckets []string       `json:"buckets"`
}

type syncCase struct {
	Name        string      `json:"name"`
	File        string      `json:"file"`
	VerifyTable string      `json:"verifyTable,omitempty"`
	Tokens      []syncToken `json:"tokens,omitempty"`
}

// TestSyncConfigs checks every sync config acco renders with PowerSync's
// own parser and schema (see checkSyncJS): the shipped environments, which
// name no application file (the apps get nothing, acco verify its row), the
// example sync rules of examples/backend (each user gets the devices its
// token lists), and an application's file of sync streams.
func TestSyncConfigs(t *testing.T) {
	dir := syncRulesDir(t)
	tmp := t.TempDir()
	var cases []syncCase
	write := func(name string, content []byte) string {
		p := filepath.Join(tmp, name+".yaml")
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	noApp := []syncToken{{map[string]any{"sub": "user1", "aud": "acco-app", "devices": []string{"t1"}}, []string{}}}
	for name, e := range envs(t) {
		for _, f := range render(t, e) {
			if f.Path == "/etc/powersync/sync-config.yaml" {
				cases = append(cases, syncCase{Name: name, File: write(name, f.Content), VerifyTable: "device_last_position", Tokens: noApp})
			}
		}
	}
	example, err := os.ReadFile("../examples/backend/sync-rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	streams := []byte("config:\n  edition: 2\nstreams:\n  own_devices:\n    auto_subscribe: true\n    query: SELECT device_id AS id, * FROM devices WHERE device_id = auth.user_id()\n")
	for _, app := range []struct {
		name   string
		src    []byte
		tokens []syncToken
	}{
		{"example", example, []syncToken{
			{map[string]any{"sub": "user1", "aud": "acco-app", "devices": []string{"t1", "t2"}}, []string{`user_devices["t1"]`, `user_devices["t2"]`}},
			{map[string]any{"sub": "user2", "aud": "acco-app"}, []string{}},
		}},
		{"streams", streams, []syncToken{
			{map[string]any{"sub": "t1", "aud": "acco-app"}, []string{`own_devices|0["t1"]`}},
		}},
	} {
		out, err := syncConfig("prod", &SyncRules{File: app.name + ".yaml", Content: app.src}, "device_last_position")
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, syncCase{Name: app.name, File: write("merged-"+app.name, out), VerifyTable: "device_last_position", Tokens: app.tokens})
	}
	out, err := syncConfig("prod", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	cases = append(cases, syncCase{Name: "nothing to verify", File: write("empty", out), Tokens: noApp})
	runSyncCheck(t, dir, cases, true)
}

// TestSyncConfigsCheckFails proves the check can fail: a config that gives
// every user acco's bucket, and one PowerSync refuses.
func TestSyncConfigsCheckFails(t *testing.T) {
	dir := syncRulesDir(t)
	tmp := t.TempDir()
	for name, src := range map[string]string{
		"open to all":  "bucket_definitions:\n  acco_verify:\n    data:\n      - SELECT device_id AS id, * FROM device_last_position\n",
		"bad query":    "bucket_definitions:\n  a:\n    data:\n      - SELEC * FROM devices\n",
		"not a config": "buckets: {}\n",
	} {
		p := filepath.Join(tmp, "bad.yaml")
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		runSyncCheck(t, dir, []syncCase{{Name: name, File: p, VerifyTable: "device_last_position"}}, false)
	}
}

func runSyncCheck(t *testing.T, dir string, cases []syncCase, wantOK bool) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "check-sync.mjs"), []byte(checkSyncJS), 0o644); err != nil {
		t.Fatal(err)
	}
	list, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	casesFile := filepath.Join(t.TempDir(), "cases.json")
	if err := os.WriteFile(casesFile, list, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(dir, "check-sync.mjs"), casesFile)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	switch {
	case wantOK && err != nil:
		t.Errorf("sync configs fail @powersync/service-sync-rules %s: %v\n%s", syncRulesVersion, err, out)
	case !wantOK && err == nil:
		t.Errorf("%s passed the check:\n%s", cases[0].Name, out)
	}
}
