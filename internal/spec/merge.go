package spec

import (
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// prepare checks what the decoder and the merge rely on in one file's tree and
// records which file every node comes from. It rejects anchors and aliases
// (defaults.yaml is the way to share), merge keys, custom tags, keys that are
// not plain scalars and keys written twice in one mapping.
func prepare(n *yaml.Node, file string, origin map[*yaml.Node]string, path string) ErrorList {
	origin[n] = file
	var errs ErrorList
	at := func(n *yaml.Node) position { return position{file: file, line: n.Line, column: n.Column} }
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return ErrorList{newError(at(n), path, "YAML anchors and aliases (&name, *name) are not supported; put shared values in defaults.yaml")}
	}
	if n.Tag != "" && !strings.HasPrefix(n.Tag, "!!") {
		return ErrorList{newError(at(n), path, "YAML tag %s is not supported; use ${VAR} where a key reads the environment", n.Tag)}
	}
	switch n.Kind {
	case yaml.MappingNode:
		seen := map[string]*yaml.Node{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			origin[k] = file
			if k.Kind != yaml.ScalarNode || k.Anchor != "" || (k.Tag != "" && !strings.HasPrefix(k.Tag, "!!")) {
				errs = append(errs, newError(at(k), path, "keys must be plain names, not %s", describe(k)))
				continue
			}
			p := joinPath(path, k.Value)
			if k.Value == "<<" && k.Tag == "!!merge" {
				errs = append(errs, newError(at(k), p, "YAML merge keys (<<) are not supported; put shared values in defaults.yaml"))
				continue
			}
			if first, dup := seen[k.Value]; dup {
				errs = append(errs, newError(at(k), p, "key written twice in this mapping (first at line %d)", first.Line))
				continue
			}
			seen[k.Value] = k
			errs = append(errs, prepare(v, file, origin, p)...)
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			errs = append(errs, prepare(item, file, origin, indexPath(path, i))...)
		}
	}
	return errs
}

// merge lays over on top of base: mappings merge key by key (recursively),
// anything else in over replaces base. A null in over removes the key it
// would override, so an environment can drop what defaults.yaml sets. Nodes
// are shared, not copied; merged mappings are new nodes attributed to over.
func merge(base, over *yaml.Node, origin map[*yaml.Node]string) *yaml.Node {
	if base == nil {
		return over
	}
	if over == nil {
		return base
	}
	if base.Kind != yaml.MappingNode || over.Kind != yaml.MappingNode {
		return over
	}
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: over.Tag, Line: over.Line, Column: over.Column}
	origin[out] = origin[over]
	overIndex := map[string]int{}
	for i := 0; i+1 < len(over.Content); i += 2 {
		overIndex[over.Content[i].Value] = i
	}
	used := map[int]bool{}
	for i := 0; i+1 < len(base.Content); i += 2 {
		bk, bv := base.Content[i], base.Content[i+1]
		j, ok := overIndex[bk.Value]
		if !ok {
			out.Content = append(out.Content, bk, bv)
			continue
		}
		used[j] = true
		ok2, ov := over.Content[j], over.Content[j+1]
		if isNull(ov) {
			continue
		}
		out.Content = append(out.Content, ok2, merge(bv, ov, origin))
	}
	for i := 0; i+1 < len(over.Content); i += 2 {
		if !used[i] {
			out.Content = append(out.Content, over.Content[i], over.Content[i+1])
		}
	}
	return out
}

// checkDefaultsRoot rejects top-level keys of defaults.yaml that belong in an
// environment's own file.
func checkDefaultsRoot(root *yaml.Node, file string) ErrorList {
	var errs ErrorList
	for i := 0; i+1 < len(root.Content); i += 2 {
		k := root.Content[i]
		if k.Value == "name" {
			errs = append(errs, newError(position{file, k.Line, k.Column}, "name",
				"belongs in each environment's own file, not in %s", filepath.Base(file)))
		}
	}
	return errs
}
