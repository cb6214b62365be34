package spec

import (
	"testing"
)

func TestShippedEnvironmentsLoad(t *testing.T) {
	names, err := Names(shippedDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			e, err := Load(shippedDir, name, noEnv)
			if err != nil {
				t.Fatalf("Load(%q) with no variables set:\n%v", name, err)
			}
			if e.Name != name {
				t.Errorf("Name = %q, want %q", e.Name, name)
			}
		})
	}
}
