package spec

import (
	"strings"
	"testing"
)

func TestWarnings(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want string // "" for no warning
	}{
		{"test", "environments/defaults.yaml:"}, // where services.powersync is
		{"prod", "environments/prod.yaml:"},
		{"local", ""}, // offline: PowerSync does not run
	} {
		e, err := Load(shippedDir, tc.env, noEnv)
		if err != nil {
			t.Fatal(err)
		}
		w := e.Warnings()
		switch {
		case tc.want == "" && len(w) > 0:
			t.Errorf("%s: %v", tc.env, w)
		case tc.want == "":
		case len(w) != 1 || w[0].Path != "services.powersync.sync_rules" || !strings.Contains(w[0].Error(), tc.want) ||
			!strings.Contains(w[0].Message, "PowerSync will sync nothing to the apps"):
			t.Errorf("%s: warnings %v, want one on services.powersync.sync_rules in %s", tc.env, w, tc.want)
		}
	}
	e := loadString(t, minimalEnv+"\n  powersync:\n    sync_rules: \"${ACCO_SYNC_RULES:-../backend/sync-rules.yaml}\"\n", map[string]string{"ACCO_SYNC_RULES": "~/src/backend/sync.yml"})
	if e.Services.PowerSync.SyncRules != "~/src/backend/sync.yml" {
		t.Errorf("sync_rules = %q, want it read from ACCO_SYNC_RULES", e.Services.PowerSync.SyncRules)
	}
	if w := e.Warnings(); len(w) != 0 {
		t.Errorf("sync_rules set: warnings %v", w)
	}
}

func TestValidateSyncRules(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"../backend/sync-rules.yaml", ""},
		{"~/rules.yml", ""},
		{"rules.json", `services.powersync.sync_rules: "rules.json" is not a YAML file (.yaml or .yml): name the application's sync config, e.g. ../backend/sync-rules.yaml`},
		{"a\nb.yaml", `services.powersync.sync_rules: "a\nb.yaml" holds a line break (U+000A at offset 1): a value is one line of text`},
	} {
		e := builtEnv(t)
		e.Services.PowerSync.SyncRules = tc.file
		err := e.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.file, err)
		case tc.want != "" && (err == nil || err.Error() != tc.want):
			t.Errorf("%q:\n got: %v\nwant: %s", tc.file, err, tc.want)
		}
	}
}
