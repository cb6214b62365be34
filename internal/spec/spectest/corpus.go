// Package spectest reads the corpus of broken environments that both the
// spec package and the acco command test: each case is a directory of
// environment files that must fail to load with a given message.
package spectest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rogpeppe/go-internal/txtar"
)

// Case is one broken environment.
//
// Its .txtar file holds the files of an environments directory and a
// "want" section with the first line(s) of the expected error. The comment
// may hold directives, one per line:
//
//	load: NAME     load environment NAME (default: the case's only env file)
//	setenv: K=V    variable K is set to V (may be empty) for ${K}
//	no-defaults    do not add the shipped defaults.yaml
type Case struct {
	Name    string            // base name of the .txtar file, without extension
	Path    string            // the .txtar file
	Archive *txtar.Archive    // as read, for rewriting the want section
	Files   map[string][]byte // the environments directory: name -> content
	Env     string            // the environment to load
	Vars    map[string]string // the process environment of the load
	Want    string            // the expected start of the error
}

// DefaultsFile is the shared file of an environments directory.
const DefaultsFile = "defaults.yaml"

// Load reads every *.txtar case in dir; cases without their own
// defaults.yaml get the one at shippedDefaults.
func Load(dir, shippedDefaults string) ([]Case, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.txtar"))
	if err != nil {
		return nil, err
	}
	shipped, err := os.ReadFile(shippedDefaults)
	if err != nil {
		return nil, fmt.Errorf("read shipped defaults: %w", err)
	}
	var cases []Case
	for _, path := range paths {
		ar, err := txtar.ParseFile(path)
		if err != nil {
			return nil, err
		}
		c := Case{
			Name:    strings.TrimSuffix(filepath.Base(path), ".txtar"),
			Path:    path,
			Archive: ar,
			Files:   map[string][]byte{},
			Vars:    map[string]string{},
		}
		var envs []string
		for _, f := range ar.Files {
			if f.Name == "want" {
				c.Want = strings.TrimSpace(string(f.Data))
				continue
			}
			c.Files[f.Name] = f.Data
			if name, ok := strings.CutSuffix(f.Name, ".yaml"); ok && f.Name != DefaultsFile {
				envs = append(envs, name)
			}
		}
		addDefaults := true
		for _, line := range strings.Split(string(ar.Comment), "\n") {
			key, val, _ := strings.Cut(strings.TrimSpace(line), ":")
			val = strings.TrimSpace(val)
			switch key {
			case "load":
				c.Env = val
			case "setenv":
				k, v, _ := strings.Cut(val, "=")
				c.Vars[k] = v
			case "no-defaults":
				addDefaults = false
			}
		}
		if _, ok := c.Files[DefaultsFile]; !ok && addDefaults {
			c.Files[DefaultsFile] = shipped
		}
		if c.Env == "" {
			if len(envs) != 1 {
				return nil, fmt.Errorf("%s: %d environment files; add a load: directive", path, len(envs))
			}
			c.Env = envs[0]
		}
		cases = append(cases, c)
	}
	return cases, nil
}

// Lookup returns the case's variables as a lookup function for spec.Load.
func (c *Case) Lookup(name string) (string, bool) {
	v, ok := c.Vars[name]
	return v, ok
}

// RewriteWant replaces the case's want section with want, for -update runs.
func (c *Case) RewriteWant(want string) error {
	found := false
	for i := range c.Archive.Files {
		if c.Archive.Files[i].Name == "want" {
			c.Archive.Files[i].Data = []byte(want + "\n")
			found = true
		}
	}
	if !found {
		c.Archive.Files = append(c.Archive.Files, txtar.File{Name: "want", Data: []byte(want + "\n")})
	}
	return os.WriteFile(c.Path, txtar.Format(c.Archive), 0o644)
}
