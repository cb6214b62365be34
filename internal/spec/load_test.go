package spec

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestNamesShipped(t *testing.T) {
	names, err := Names(shippedDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"preprod", "prod", "test"} {
		if !slices.Contains(names, want) {
			t.Errorf("Names = %v, want it to contain %s", names, want)
		}
	}
	if slices.Contains(names, "defaults") {
		t.Errorf("Names = %v lists defaults", names)
	}
	if !slices.IsSorted(names) {
		t.Errorf("Names = %v, not sorted", names)
	}
}

func TestNames(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"defaults.yaml", "zeta.yaml", "alpha.yaml", "notes.yml", ".hidden.yaml", "README.md"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "dir.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := Names(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"alpha", "zeta"}; !slices.Equal(got, want) {
		t.Errorf("Names = %v, want %v", got, want)
	}
	if _, err := Names(filepath.Join(dir, "missing")); err == nil {
		t.Error("Names of a missing directory: want an error")
	}
}

// TestLoadFromDisk loads from a real directory, as the CLI does.
func TestLoadFromDisk(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "environments")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	def, err := os.ReadFile(filepath.Join(shippedDir, DefaultsFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, DefaultsFile), def, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "test.yaml"), []byte(minimalEnv), 0o644); err != nil {
		t.Fatal(err)
	}
	e, err := Load(dir, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.Name != "test" || e.Project != "00000000000000000000000000000001" || e.Cloud != "acco-test" {
		t.Errorf("Name, Project, Cloud = %q, %q, %q", e.Name, e.Project, e.Cloud)
	}
	want := StateConfig{Bucket: "accoreboot-acco-state", Region: "gra", Endpoint: "https://s3.gra.io.cloud.ovh.net",
		Project: "00000000000000000000000000000000"}
	if e.State != want {
		t.Errorf("State = %+v, want %+v", e.State, want)
	}
	if e.Dir != dir || !slices.Equal(e.Files, []string{filepath.Join(dir, DefaultsFile), filepath.Join(dir, "test.yaml")}) {
		t.Errorf("Dir, Files = %q, %q", e.Dir, e.Files)
	}
	if file, line, col := e.Position("databases.main.plan"); file != filepath.Join(dir, "test.yaml") || line != 9 || col != 11 {
		t.Errorf("Position(databases.main.plan) = %s:%d:%d, want test.yaml:9:11", file, line, col)
	}
}

func TestLoadErrors(t *testing.T) {
	t.Run("unknown environment", func(t *testing.T) {
		_, err := Load(shippedDir, "staging", nil)
		if !errors.Is(err, ErrUnknownEnvironment) {
			t.Fatalf("err = %v, want ErrUnknownEnvironment", err)
		}
		for _, name := range []string{"preprod", "prod", "test"} {
			if !strings.Contains(err.Error(), name) {
				t.Errorf("err = %v, want it to list %s", err, name)
			}
		}
	})
	t.Run("missing defaults.yaml", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "test.yaml"), []byte(minimalEnv), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(dir, "test", nil)
		if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), filepath.Join(dir, DefaultsFile)+": ") {
			t.Errorf("err = %v, want fs.ErrNotExist naming %s", err, filepath.Join(dir, DefaultsFile))
		}
	})
	t.Run("missing directory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "nope")
		_, err := Load(dir, "test", nil)
		if !errors.Is(err, fs.ErrNotExist) || err.Error() != dir+": no such environments directory" {
			t.Errorf("err = %v, want %s: no such environments directory", err, dir)
		}
	})
	t.Run("path in the environment name", func(t *testing.T) {
		if _, err := Load(shippedDir, "../environments/test", nil); err == nil || !strings.Contains(err.Error(), "invalid environment name") {
			t.Errorf("err = %v, want invalid environment name", err)
		}
	})
	t.Run("errors are an ErrorList", func(t *testing.T) {
		_, err := load(shippedFS(t, map[string]string{"test.yaml": minimalEnv + "\nregion: gra11\nbogus: 1\n"}), "environments", "test", nil)
		var list ErrorList
		if !errors.As(err, &list) || len(list) != 1 {
			t.Fatalf("err = %v, want an ErrorList of 1 (decoding stops before validation)", err)
		}
		if got := list[0]; got.File != "environments/test.yaml" || got.Line != 18 || got.Column != 1 || got.Path != "bogus" {
			t.Errorf("error = %+v", got)
		}
	})
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		err  Error
		want string
	}{
		{Error{File: "environments/test.yaml", Line: 12, Column: 14, Path: "databases.main.version", Message: "bad"},
			"environments/test.yaml:12:14: databases.main.version: bad"},
		{Error{File: "environments/test.yaml", Line: 3, Message: "invalid YAML: x"},
			"environments/test.yaml:3: invalid YAML: x"},
		{Error{File: "environments/test.yaml", Path: "project", Message: "missing"},
			"environments/test.yaml: project: missing"},
		{Error{Path: "services.host", Message: "missing"},
			"services.host: missing"},
		{Error{Message: "unknown environment"},
			"unknown environment"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	list := ErrorList{&tests[0].err, &tests[3].err}
	if got, want := list.Error(), tests[0].want+"\n"+tests[3].want; got != want {
		t.Errorf("ErrorList.Error() = %q, want %q", got, want)
	}
}

func TestAddresses(t *testing.T) {
	e, err := Load(shippedDir, "test", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"database.main",
		"database_db.main.acco",
		"database_db.main.powersync_storage",
		"database_user.main.backend",
		"database_user.main.emqx",
		"database_user.main.powersync",
		"instance.app",
		"keypair.deploy",
		"security_group.app",
	}
	if got := e.Addresses(); !slices.Equal(got, want) {
		t.Errorf("Addresses = %v\nwant %v", got, want)
	}
}

func TestHelpers(t *testing.T) {
	e, err := Load(shippedDir, "test", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if e.HostInstance() != e.Instances["app"] {
		t.Error("HostInstance is not instances.app")
	}
	ssh := e.SecurityGroups["app"].Rules[0]
	if got := e.RuleSources(ssh); len(got) != 1 || got[0].String() != "203.0.113.0/24" {
		t.Errorf("RuleSources(ssh rule) = %v, want the admin CIDRs", got)
	}
	db := e.Databases["main"]
	db.AllowFrom = append(db.AllowFrom, "198.51.100.0/24")
	instances, cidrs := db.AllowList()
	if !slices.Equal(instances, []string{"app"}) || len(cidrs) != 1 || cidrs[0].String() != "198.51.100.0/24" {
		t.Errorf("AllowList = %v, %v", instances, cidrs)
	}
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skip("no home directory")
	}
	paths := map[string]string{
		"~/.ssh/id_ed25519.pub": filepath.Join(home, ".ssh/id_ed25519.pub"),
		"/abs/backend.tgz":      "/abs/backend.tgz",
		"../backend/dist/b.tgz": filepath.Join(shippedDir, "../backend/dist/b.tgz"),
		"certs/mqtt.crt":        filepath.Join(shippedDir, "certs/mqtt.crt"),
	}
	for in, want := range paths {
		if got, err := e.LocalPath(in); err != nil || got != want {
			t.Errorf("LocalPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if got := (PortRange{8000, 8100}).String(); got != "8000-8100" {
		t.Errorf("PortRange.String = %q", got)
	}
	if got := e.Services.PowerSync.ImageRef(); got != "journeyapps/powersync-service:1.25.0" {
		t.Errorf("ImageRef = %q", got)
	}
}
