package spec

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/accoreboot/acco/internal/spec/spectest"
)

// FuzzLoad feeds arbitrary defaults and environment files to the loader. It
// must never panic, and must return either an Environment or an error made of
// positioned problems.
func FuzzLoad(f *testing.F) {
	def, err := os.ReadFile(filepath.Join(shippedDir, DefaultsFile))
	if err != nil {
		f.Fatal(err)
	}
	names, err := Names(shippedDir)
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range names {
		src, err := os.ReadFile(filepath.Join(shippedDir, name+".yaml"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(name, def, src)
	}
	cases, err := spectest.Load("testdata/broken", filepath.Join(shippedDir, DefaultsFile))
	if err != nil {
		f.Fatal(err)
	}
	for _, c := range cases {
		f.Add(c.Env, c.Files[DefaultsFile], c.Files[c.Env+".yaml"])
	}
	f.Add("test", []byte("a: &x [*x]\n"), []byte("name: test\n"))
	f.Add("test", []byte(""), []byte("name: test\nservices: {backend: {env: {A: '${X:-${Y}}'}}}\n"))

	f.Fuzz(func(t *testing.T, env string, defSrc, envSrc []byte) {
		fsys := fstest.MapFS{DefaultsFile: {Data: defSrc}}
		if validEnvName(env) {
			fsys[env+".yaml"] = &fstest.MapFile{Data: envSrc}
		}
		lookup := mapLookup(map[string]string{"ACCO_ADMIN_CIDR": "198.51.100.0/24", "EMPTY": ""})
		e, err := load(fsys, "environments", env, lookup)
		if (e == nil) == (err == nil) {
			t.Fatalf("load returned environment %v and error %v; want exactly one", e, err)
		}
		if err == nil {
			if e.Name != env {
				t.Fatalf("Name = %q, want %q", e.Name, env)
			}
			if err := e.Validate(); err != nil {
				t.Fatalf("loaded environment does not validate again: %v", err)
			}
			return
		}
		var list ErrorList
		if !errors.As(err, &list) || len(list) == 0 {
			t.Fatalf("error %v is not a non-empty ErrorList", err)
		}
		for _, p := range list {
			if p.Message == "" {
				t.Fatalf("problem without a message: %+v", p)
			}
		}
	})
}
