package spec

import (
	"strings"
	"testing"
	"testing/fstest"
)

// envIn is minimalEnv named name, in project.
func envIn(name, project string) string {
	s := strings.Replace(minimalEnv, "name: test", "name: "+name, 1)
	return strings.Replace(s, `project: "00000000000000000000000000000001"`, `project: "`+project+`"`, 1)
}

func TestSharedProject(t *testing.T) {
	const p1, p2 = "00000000000000000000000000000001", "00000000000000000000000000000002"
	for _, tc := range []struct {
		name     string
		files    map[string]string
		defaults string // appended to the shipped defaults.yaml
		load     string
		want     string // "" loads
	}{
		{name: "prefix and dash, one project", load: "test",
			files: map[string]string{"test.yaml": envIn("test", p1), "test-eu.yaml": envIn("test-eu", p1)},
			want:  "environment test-eu (environments/test-eu.yaml) is in the same project"},
		{name: "the longer name is refused too", load: "test-eu",
			files: map[string]string{"test.yaml": envIn("test", p1), "test-eu.yaml": envIn("test-eu", p1)},
			want:  "environment test (environments/test.yaml) is in the same project"},
		{name: "the project from defaults.yaml", load: "test", defaults: "project: \"" + p1 + "\"\n",
			files: map[string]string{"test.yaml": envIn("test", p1), "test-eu.yaml": strings.Replace(envIn("test-eu", p1), "project: \""+p1+"\"\n", "", 1)},
			want:  "environment test-eu (environments/test-eu.yaml) is in the same project"},
		{name: "prefix and dash, two projects", load: "test",
			files: map[string]string{"test.yaml": envIn("test", p1), "test-eu.yaml": envIn("test-eu", p2)}},
		{name: "no dash after the prefix", load: "test",
			files: map[string]string{"test.yaml": envIn("test", p1), "testeu.yaml": envIn("testeu", p1)}},
		{name: "a digit after the dash: no resource name starts with one", load: "test",
			files: map[string]string{"test.yaml": envIn("test", p1), "test-2.yaml": envIn("test-2", p1)}},
		{name: "unrelated names, one project", load: "test",
			files: map[string]string{"test.yaml": envIn("test", p1), "staging.yaml": envIn("staging", p1)}},
		{name: "a sibling that does not parse is its own problem", load: "test",
			files: map[string]string{"test.yaml": envIn("test", p1), "test-eu.yaml": "project: [\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := shippedFS(t, tc.files)
			if tc.defaults != "" {
				fsys[DefaultsFile] = &fstest.MapFile{Data: append(fsys[DefaultsFile].Data, tc.defaults...)}
			}
			_, err := load(fsys, "environments", tc.load, noEnv)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("load %s: %v", tc.load, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("load %s: error %v, want %q", tc.load, err, tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), "environments/"+tc.load+".yaml:") || tc.want != "" && !strings.Contains(err.Error(), ": project: "):
				t.Errorf("the error does not point at %s.yaml's project: %v", tc.load, err)
			}
		})
	}
}
