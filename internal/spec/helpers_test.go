package spec

import (
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
)

const shippedDir = "../../environments"

// minimalEnv is the smallest test.yaml that loads over the shipped
// defaults.yaml (16 lines).
const minimalEnv = `name: test
project: "00000000000000000000000000000001"
cloud: acco-test
instances:
  app:
    flavor: d2-4
databases:
  main:
    plan: essential
    flavor: db1-4
    nodes: 1
services:
  emqx:
    listeners:
      mqtts:
        tls: {cert_file: a.crt, key_file: a.key}`

func noEnv(string) (string, bool) { return "", false }

// mapLookup looks variables up in m.
func mapLookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// shippedFS returns a directory holding the shipped defaults.yaml and the
// given files.
func shippedFS(t *testing.T, files map[string]string) fstest.MapFS {
	t.Helper()
	def, err := os.ReadFile(filepath.Join(shippedDir, DefaultsFile))
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{DefaultsFile: {Data: def}}
	for name, data := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(data)}
	}
	return fsys
}

// loadString loads test.yaml = env over the shipped defaults and fails the
// test on error.
func loadString(t *testing.T, env string, vars map[string]string) *Environment {
	t.Helper()
	e, err := load(shippedFS(t, map[string]string{"test.yaml": env}), "environments", "test", mapLookup(vars))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return e
}
