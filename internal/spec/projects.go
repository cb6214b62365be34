package spec

import (
	"io/fs"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// namesCanCollide reports whether two environments' cloud names can be
// equal: acco-<a>-<x> = acco-<b>-<y> for resource names x and y. That
// happens exactly when one environment's name is the other's followed by a
// dash and what can start a resource name (a letter): test and test-eu
// (test's eu-main is test-eu's main), not test and testeu, nor test and
// test-2.
func namesCanCollide(a, b string) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	rest, ok := strings.CutPrefix(b, a+"-")
	return ok && rest != "" && isLower(rest[0])
}

// checkSharedProject refuses an environment that shares its project with
// another environment file of the directory whose resource names can
// collide with its own (see namesCanCollide): both would claim the
// resources of that name, and a sweep of one could delete the other's.
// Only the other files' project keys are read (theirs, else the one of
// defaults.yaml); a file that does not parse is left to its own Load.
func checkSharedProject(fsys fs.FS, dir string, e *Environment) ErrorList {
	others, err := names(fsys, dir)
	if err != nil {
		return nil
	}
	defProject := ""
	if src, err := fs.ReadFile(fsys, DefaultsFile); err == nil {
		defProject = topLevelScalar(src, DefaultsFile, "project")
	}
	var errs ErrorList
	for _, other := range others {
		if other == e.Name || !validEnvName(other) || !namesCanCollide(e.Name, other) {
			continue
		}
		src, err := fs.ReadFile(fsys, other+".yaml")
		if err != nil {
			continue
		}
		project := topLevelScalar(src, other+".yaml", "project")
		if project == "" {
			project = defProject
		}
		if project != e.Project {
			continue
		}
		short, long := e.Name, other
		if len(short) > len(long) {
			short, long = long, short
		}
		suffix := strings.TrimPrefix(long, short+"-")
		errs = append(errs, newError(e.pos.at("project"), "project",
			"environment %s (%s) is in the same project %s, and their resource names can collide: acco-%s-%s-main would be both %s's database %s-main and %s's database main, so a plan or destroy of one could take the other's; give each environment its own OVH project, or rename one so that neither name is the other's followed by a dash and a letter",
			other, filepath.Join(dir, other+".yaml"), e.Project, short, suffix, short, suffix, long))
	}
	return errs
}

// topLevelScalar returns the value of key in a YAML file's top-level
// mapping, or "" when the file does not parse or has no such scalar.
func topLevelScalar(src []byte, file, key string) string {
	root, errs := parse(src, file)
	if len(errs) > 0 || root == nil {
		return ""
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if k, v := root.Content[i], root.Content[i+1]; k.Value == key && v.Kind == yaml.ScalarNode {
			return v.Value
		}
	}
	return ""
}
