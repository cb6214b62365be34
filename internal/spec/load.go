package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// DefaultsFile is the file of an environments directory that every
// environment is merged onto.
const DefaultsFile = "defaults.yaml"

// maxLocateLines bounds the search for the line of a YAML syntax error that
// the parser reports imprecisely.
const maxLocateLines = 50

// Load reads dir/defaults.yaml and dir/<env>.yaml, merges them (the
// environment's file on top), decodes the result strictly, expands ${VAR} in
// the keys that allow it with lookup (nil means no variable is set), fills
// defaults, runs Validate and expands the instances entries that have a
// count into their instances (see MemberNames). It also reads the project of the other
// environment files of dir and refuses one that shares the project under a
// name whose resource names can collide with env's (see checkSharedProject).
//
// On any problem it returns a nil Environment and an error; problems in the
// YAML are an ErrorList naming file:line:column and the key path. An unknown
// environment wraps ErrUnknownEnvironment and lists the environments in dir.
func Load(dir, env string, lookup func(string) (string, bool)) (*Environment, error) {
	return load(dirFS(dir), dir, env, lookup)
}

// Names returns the environments in dir, sorted: the base names of its .yaml
// files other than defaults.yaml.
func Names(dir string) ([]string, error) {
	return names(dirFS(dir), dir)
}

func dirFS(dir string) fs.FS {
	if dir == "" {
		return os.DirFS(".")
	}
	return os.DirFS(dir)
}

func names(fsys fs.FS, dir string) ([]string, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, &Error{File: dir, Message: "cannot list environments: " + errorText(err), Err: err}
	}
	var out []string
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".yaml")
		if !ok || e.IsDir() || e.Name() == DefaultsFile || strings.HasPrefix(name, ".") {
			continue
		}
		out = append(out, name)
	}
	return out, nil // fs.ReadDir sorts by name
}

func load(fsys fs.FS, dir, env string, lookup func(string) (string, bool)) (*Environment, error) {
	defFile := filepath.Join(dir, DefaultsFile)
	envFile := filepath.Join(dir, env+".yaml")
	if env+".yaml" == DefaultsFile {
		return nil, ErrorList{{File: defFile, Message: "defaults.yaml holds what the environments share; it is not an environment"}}
	}
	if !validEnvName(env) {
		return nil, ErrorList{{Message: fmt.Sprintf("invalid environment name %q: %s", env, envNameRule)}}
	}

	defSrc, err := fs.ReadFile(fsys, DefaultsFile)
	if err != nil {
		msg := "cannot read: " + errorText(err)
		file := defFile
		if errors.Is(err, fs.ErrNotExist) {
			msg = "missing: an environments directory needs a defaults.yaml, even an empty one"
			if _, serr := fs.Stat(fsys, "."); serr != nil {
				file, msg = displayDir(dir), "no such environments directory"
			}
		}
		return nil, ErrorList{{File: file, Message: msg, Err: err}}
	}
	envSrc, err := fs.ReadFile(fsys, env+".yaml")
	if errors.Is(err, fs.ErrNotExist) {
		known, _ := names(fsys, dir)
		list := "none"
		if len(known) > 0 {
			list = strings.Join(known, ", ")
		}
		return nil, ErrorList{{
			Message: fmt.Sprintf("unknown environment %q: there is no %s; environments: %s", env, envFile, list),
			Err:     ErrUnknownEnvironment,
		}}
	}
	if err != nil {
		return nil, ErrorList{{File: envFile, Message: "cannot read: " + errorText(err), Err: err}}
	}
	e, err := loadSources(dir, env, defSrc, envSrc, lookup)
	if err != nil {
		return nil, err
	}
	if errs := checkSharedProject(fsys, dir, e); len(errs) > 0 {
		return nil, errs
	}
	return e, nil
}

// loadSources is Load on the contents of the two files; dir only names them.
func loadSources(dir, env string, defSrc, envSrc []byte, lookup func(string) (string, bool)) (*Environment, error) {
	defFile := filepath.Join(dir, DefaultsFile)
	envFile := filepath.Join(dir, env+".yaml")
	files := []string{defFile, envFile}

	defRoot, errs := parse(defSrc, defFile)
	envRoot, envErrs := parse(envSrc, envFile)
	errs = append(errs, envErrs...)
	if len(errs) == 0 && envRoot == nil {
		errs = append(errs, &Error{File: envFile, Message: "the file is empty; an environment's file sets at least name, project and cloud"})
	}
	if len(errs) > 0 {
		errs.sortByPosition(files)
		return nil, errs
	}

	origin := map[*yaml.Node]string{}
	if defRoot != nil {
		errs = append(errs, prepare(defRoot, defFile, origin, "")...)
		errs = append(errs, checkDefaultsRoot(defRoot, defFile)...)
	}
	errs = append(errs, prepare(envRoot, envFile, origin, "")...)
	if len(errs) > 0 {
		errs.sortByPosition(files)
		return nil, errs
	}

	merged := merge(defRoot, envRoot, origin)
	e := &Environment{}
	d := &decoder{origin: origin, lookup: lookup, pos: newPositions(envFile)}
	d.decode(merged, reflect.ValueOf(e).Elem(), "", false)
	if len(d.errs) > 0 {
		d.errs.sortByPosition(files)
		return nil, d.errs
	}

	e.Dir, e.Files, e.pos = dir, files, d.pos
	switch {
	case e.Name == "":
		errs = append(errs, newError(e.pos.at("name"), "name", "missing: write name: %s (the name of the file)", env))
	case e.Name != env:
		errs = append(errs, newError(e.pos.at("name"), "name", "is %q but the file is %s.yaml; the name must match the file name", e.Name, env))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	e.applyDefaults()
	if err := e.Validate(); err != nil {
		return nil, err
	}
	e.expandCounts()
	return e, nil
}

// parse reads one YAML document whose top level is a mapping. It returns nil
// for an empty file (or one holding only comments or null).
func parse(src []byte, file string) (root *yaml.Node, errs ErrorList) {
	defer func() {
		// yaml.v3 has panicked on hostile input before; never let it take acco down.
		if r := recover(); r != nil {
			root, errs = nil, ErrorList{{File: file, Message: fmt.Sprintf("invalid YAML: the parser failed (%v)", r)}}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err == io.EOF {
		return nil, nil
	} else if err != nil {
		return nil, ErrorList{syntaxError(src, file, err)}
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		return nil, ErrorList{{File: file, Line: next.Line, Column: next.Column,
			Message: "a second YAML document starts here; a file holds one document (remove the ---)"}}
	} else if err != io.EOF {
		return nil, ErrorList{syntaxError(src, file, err)}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, nil
	}
	root = doc.Content[0]
	if isNull(root) {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, ErrorList{{File: file, Line: root.Line, Column: root.Column,
			Message: fmt.Sprintf("expected a mapping of keys (name: test, project: ...), got %s", describe(root))}}
	}
	return root, nil
}

func syntaxError(src []byte, file string, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	reported := 0
	if m := regexp.MustCompile(`^line (\d+): (.*)$`).FindStringSubmatch(msg); m != nil {
		reported, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	// yaml.v3 reports no line for problems on the first line, and the line
	// before the problem for most parser errors; search for it instead.
	line := locateSyntaxError(src, msg, reported)
	if line == 0 {
		line = reported
	}
	col := 0
	if strings.Contains(msg, "tab") || strings.Contains(msg, "cannot start any token") {
		if l, c := firstIndentTab(src); l > 0 {
			line, col = l, c
			msg += "; indent with spaces: YAML does not allow tabs"
		}
	}
	return &Error{File: file, Line: line, Column: col, Message: "invalid YAML: " + msg, Err: err}
}

// locateSyntaxError returns the first line, from the reported one on, at
// which the document cut after that line fails with msg; 0 when it cannot
// tell within maxLocateLines lines.
func locateSyntaxError(src []byte, msg string, reported int) int {
	lines := bytes.SplitAfter(src, []byte("\n"))
	lineRE := regexp.MustCompile(`^line \d+: `)
	first := max(1, reported)
	for k := first; k <= len(lines) && k < first+maxLocateLines; k++ {
		var n yaml.Node
		err := yaml.Unmarshal(bytes.Join(lines[:k], nil), &n)
		if err != nil && lineRE.ReplaceAllString(strings.TrimPrefix(err.Error(), "yaml: "), "") == msg {
			return k
		}
	}
	return 0
}

// firstIndentTab returns the line and column of the first tab in a line's
// leading whitespace, or 0, 0.
func firstIndentTab(src []byte) (int, int) {
	for i, l := range bytes.Split(src, []byte("\n")) {
		for j, c := range l {
			if c == '\t' {
				return i + 1, j + 1
			}
			if c != ' ' {
				break
			}
		}
	}
	return 0, 0
}

// errorText is err's message without the path prefix of *fs.PathError, since
// the Error it goes into names the file already.
func errorText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func displayDir(dir string) string {
	if dir == "" {
		return "."
	}
	return dir
}
