package spec

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ErrUnknownEnvironment is wrapped by the error Load returns when the
// directory has no file for the requested environment.
var ErrUnknownEnvironment = errors.New("unknown environment")

// Error is one problem found in an environment's YAML, with the place it
// comes from. Line and Column are 1-based; they are 0 when the problem has no
// position (a missing file, or a value built in code rather than loaded).
type Error struct {
	// File is the YAML file as Load was given it (the directory joined
	// with the base name), or empty.
	File string `json:"file,omitempty"`
	// Line and Column locate the offending key or value in File.
	Line   int `json:"line,omitempty"`
	Column int `json:"column,omitempty"`
	// Path is the dotted key path of the offending value, such as
	// databases.main.version or security_groups.app.rules[0].ports[1].
	Path string `json:"path,omitempty"`
	// Message says what is wrong and, where it can, what to write instead.
	Message string `json:"message"`
	// Err is the underlying error, if any (for example fs.ErrNotExist).
	Err error `json:"-"`
}

// Error formats the problem as file:line:column: key.path: message,
// leaving out the parts that are unknown.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
			if e.Column > 0 {
				b.WriteString(":" + strconv.Itoa(e.Column))
			}
		}
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// Unwrap returns the underlying error, if any.
func (e *Error) Unwrap() error { return e.Err }

// ErrorList is every problem found in one load or validation. Load and
// Validate return it as their error when there is at least one problem.
type ErrorList []*Error

// Error prints one problem per line.
func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems as a slice of errors, so errors.Is and
// errors.As look into each of them.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// err returns l as an error, or nil when l is empty.
func (l ErrorList) err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// sortByPosition orders problems by file (in the order of files, unknown
// files last), then line, then column. The sort is stable, so problems at
// the same place keep the order in which they were found.
func (l ErrorList) sortByPosition(files []string) {
	rank := func(f string) int {
		if i := slices.Index(files, f); i >= 0 {
			return i
		}
		return len(files)
	}
	slices.SortStableFunc(l, func(a, b *Error) int {
		return cmp.Or(
			cmp.Compare(rank(a.File), rank(b.File)),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Column, b.Column),
		)
	})
}

// position is where a key or a value was written.
type position struct {
	file         string
	line, column int
}

// positions indexes the merged YAML tree by key path, so that problems found
// after decoding (by Validate) can still name file:line:column.
type positions struct {
	root  string              // the environment's own file, for top-level problems
	value map[string]position // path -> where its value starts
	key   map[string]position // path -> where its key is written
}

func newPositions(root string) *positions {
	return &positions{root: root, value: map[string]position{}, key: map[string]position{}}
}

// at returns the position of the value at path. When path was not written
// (a missing key), it returns the position of the nearest written ancestor's
// key, which is where the missing key belongs.
func (p *positions) at(path string) position {
	if p == nil {
		return position{}
	}
	if v, ok := p.value[path]; ok {
		return v
	}
	return p.ancestor(path)
}

// keyAt returns the position of the key of path (for problems with a name),
// falling back like at.
func (p *positions) keyAt(path string) position {
	if p == nil {
		return position{}
	}
	if k, ok := p.key[path]; ok {
		return k
	}
	return p.at(path)
}

func (p *positions) ancestor(path string) position {
	for path != "" {
		path = parentPath(path)
		if k, ok := p.key[path]; ok {
			return k
		}
	}
	return position{file: p.root}
}

// has reports whether path was written in the YAML.
func (p *positions) has(path string) bool {
	if p == nil {
		return false
	}
	_, ok := p.value[path]
	return ok
}

// parentPath strips the last element of a key path: a.b[2] -> a.b, a.b -> a.
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func indexPath(path string, i int) string {
	return fmt.Sprintf("%s[%d]", path, i)
}

func newError(pos position, path, format string, args ...any) *Error {
	return &Error{
		File:    pos.file,
		Line:    pos.line,
		Column:  pos.column,
		Path:    path,
		Message: fmt.Sprintf(format, args...),
	}
}
