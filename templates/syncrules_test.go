package templates

import (
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestCheckSyncRules(t *testing.T) {
	const f = "backend/sync-rules.yaml"
	for _, tc := range []struct {
		name, src, want string // want: the error, "" for none
	}{
		{"bucket definitions", "bucket_definitions:\n  mine:\n    data: [SELECT * FROM devices]\n", ""},
		{"streams", "config:\n  edition: 2\nstreams:\n  mine:\n    query: SELECT * FROM devices\n", ""},
		{"both", "bucket_definitions:\n  a:\n    data: [SELECT * FROM devices]\nstreams:\n  b:\n    query: SELECT * FROM devices\n", ""},
		{"empty", "", f + ": the file is empty: a sync config holds bucket_definitions or streams (services.powersync.sync_rules)"},
		{"not YAML", "bucket_definitions:\n  a: [\n", f + ":2: invalid YAML: did not find expected node content (services.powersync.sync_rules)"},
		{"a list", "- a\n", f + ":1:1: a sync config is a mapping with bucket_definitions or streams (services.powersync.sync_rules)"},
		{"two documents", "bucket_definitions: {}\n---\nstreams: {}\n", f + ":2:1: a second YAML document starts here; a sync config is one document (services.powersync.sync_rules)"},
		{"unknown key", "bucket_definitions: {}\nbuckets: {}\n", f + ":2:1: buckets: not a sync config key: use bucket_definitions, streams, with, event_definitions, config (services.powersync.sync_rules)"},
		{"nothing defined", "config:\n  edition: 2\n", f + ":1:1: no bucket_definitions or streams: the file defines nothing to sync (services.powersync.sync_rules)"},
		{"definitions not a mapping", "bucket_definitions: [a]\n", f + ":1:21: bucket_definitions: a mapping of definitions by name is expected (services.powersync.sync_rules)"},
		{"acco's name", "bucket_definitions:\n  mine:\n    data: [SELECT 1]\n  acco_verify:\n    data: [SELECT * FROM devices]\n",
			f + ":4:3: bucket_definitions.acco_verify: acco_verify is acco's own definition (acco verify's bucket, added by acco configure); give yours another name (services.powersync.sync_rules)"},
		{"acco's name as a stream", "streams:\n  acco_verify:\n    query: SELECT 1\n",
			f + ":2:3: streams.acco_verify: acco_verify is acco's own definition (acco verify's bucket, added by acco configure); give yours another name (services.powersync.sync_rules)"},
		{"a name twice", "bucket_definitions:\n  a:\n    data: [SELECT 1]\nstreams:\n  a:\n    query: SELECT 1\n",
			f + ":5:3: streams.a: a is defined twice (names are shared by bucket_definitions and streams) (services.powersync.sync_rules)"},
		{"definition not a mapping", "bucket_definitions:\n  a: SELECT 1\n", f + ":2:6: bucket_definitions.a: a definition is a mapping (data and parameters, or query) (services.powersync.sync_rules)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckSyncRules(f, []byte(tc.src))
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("CheckSyncRules: %v", err)
			case tc.want != "" && (err == nil || err.Error() != tc.want):
				t.Errorf("CheckSyncRules:\n got: %v\nwant: %s", err, tc.want)
			}
		})
	}
}

// definitions returns the names defined under key of a sync config.
func definitions(t *testing.T, doc []byte, key string) []string {
	t.Helper()
	var v map[string]map[string]any
	if err := yaml.Unmarshal(doc, &v); err != nil {
		t.Fatalf("the sync config does not parse: %v\n%s", err, doc)
	}
	var out []string
	for name := range v[key] {
		out = append(out, name)
	}
	return out
}

func TestSyncConfigMerge(t *testing.T) {
	app := func(src string) *SyncRules { return &SyncRules{File: "rules.yaml", Content: []byte(src)} }
	for _, tc := range []struct {
		name    string
		app     *SyncRules
		latest  string
		buckets []string // names under bucket_definitions
		streams []string // names under streams
		keep    []string // text of the application's file kept
	}{
		{"no file: acco's bucket only", nil, "device_last_position", []string{"acco_verify"}, nil, nil},
		{"no file, nothing to verify: an empty config", nil, "", nil, nil, []string{"bucket_definitions: {}"}},
		{"the application's buckets", app("# the team's rules\nbucket_definitions:\n  mine: # own devices\n    data: [SELECT * FROM devices]\n"), "device_last_position",
			[]string{"mine", "acco_verify"}, nil, []string{"# the team's rules", "# own devices"}},
		{"the application's streams", app("config:\n  edition: 3\nstreams:\n  mine:\n    query: SELECT * FROM devices WHERE device_id = auth.user_id()\n"), "device_last_position",
			nil, []string{"mine", "acco_verify"}, []string{"edition: 3"}},
		{"both: acco's as a bucket", app("bucket_definitions:\n  a:\n    data: [SELECT * FROM devices]\nstreams:\n  b:\n    query: SELECT * FROM devices\n"), "device_last_position",
			[]string{"a", "acco_verify"}, []string{"b"}, nil},
		{"a custom tag is kept", app("bucket_definitions:\n  a: !accept_potentially_dangerous_queries\n    data: [SELECT * FROM devices]\n"), "device_last_position",
			[]string{"a", "acco_verify"}, nil, []string{"!accept_potentially_dangerous_queries"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := syncConfig("prod", tc.app, tc.latest)
			if err != nil {
				t.Fatal(err)
			}
			got := definitions(t, out, "bucket_definitions")
			if !sameSet(got, tc.buckets) {
				t.Errorf("bucket_definitions = %v, want %v\n%s", got, tc.buckets, out)
			}
			if got := definitions(t, out, "streams"); !sameSet(got, tc.streams) {
				t.Errorf("streams = %v, want %v\n%s", got, tc.streams, out)
			}
			for _, k := range tc.keep {
				if !strings.Contains(string(out), k) {
					t.Errorf("%q is lost:\n%s", k, out)
				}
			}
			if !strings.HasPrefix(string(out), "# Managed by acco (prod)") {
				t.Errorf("no header:\n%s", out)
			}
			if tc.latest != "" && !strings.Contains(string(out), "FROM "+tc.latest+" WHERE device_id = 'acco-verify'") {
				t.Errorf("acco's definition does not read only the verification device's row:\n%s", out)
			}
		})
	}
	if _, err := syncConfig("prod", app("streams:\n  acco_verify:\n    query: SELECT 1\n"), "device_last_position"); err == nil || !strings.Contains(err.Error(), "rules.yaml:2:3: streams.acco_verify") {
		t.Errorf("an application's acco_verify: %v", err)
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]bool{}
	for _, s := range a {
		m[s] = true
	}
	for _, s := range b {
		if !m[s] {
			return false
		}
	}
	return true
}

// TestSyncRulesNamed: an environment that names its sync rules file gets
// them, and rendering without them read is an error.
func TestSyncRulesNamed(t *testing.T) {
	e := envs(t)["prod"]
	e.Services.PowerSync.SyncRules = "../examples/backend/sync-rules.yaml"
	in := sampleInputs()
	if _, err := Files(e, in); err == nil || !strings.Contains(err.Error(), "services.powersync.sync_rules") {
		t.Fatalf("Files without the file read: %v", err)
	}
	src, err := os.ReadFile("../examples/backend/sync-rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	in.SyncRules = &SyncRules{File: "examples/backend/sync-rules.yaml", Content: src}
	files, err := Files(e, in)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f.Path == "/etc/powersync/sync-config.yaml" {
			if got := definitions(t, f.Content, "bucket_definitions"); !sameSet(got, []string{"user_devices", "acco_verify"}) {
				t.Errorf("bucket_definitions = %v\n%s", got, f.Content)
			}
			return
		}
	}
	t.Fatal("no sync-config.yaml")
}
