package envgraph

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/accoreboot/acco/internal/spec"
)

// dotShape returns the dot shape of a node kind.
func dotShape(kind string) string {
	switch kind {
	case spec.KindKeypair:
		return "note"
	case spec.KindSecurityGroup:
		return "hexagon"
	case spec.KindDatabase, spec.KindDatabaseDB:
		return "cylinder"
	case spec.KindDatabaseUser:
		return "ellipse"
	case KindService:
		return "component"
	}
	return "box"
}

// label is a node's text: its address, then its detail and the plan's
// action on lines of their own.
func (n Node) label() []string {
	out := []string{n.Address}
	if n.Detail != "" {
		out = append(out, n.Detail)
	}
	if n.Action != "" {
		out = append(out, "plan: "+n.Action)
	}
	return out
}

// actionColor returns the fill colour of a plan action, "" for none.
func actionColor(action string) string {
	switch action {
	case ActionCreate:
		return "#c8e6c9"
	case ActionUpdate:
		return "#fff3b0"
	case ActionReplace:
		return "#ffcc80"
	case ActionDelete:
		return "#ef9a9a"
	}
	return ""
}

// Dot renders g in the Graphviz dot language.
func Dot(g Graph) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "digraph %s {\n", dotQuote("acco "+g.Env))
	b.WriteString("\trankdir=LR;\n\tgraph [fontname=\"Helvetica\", fontsize=11];\n\tnode [fontname=\"Helvetica\", fontsize=10];\n\tedge [fontname=\"Helvetica\", fontsize=9];\n")
	node := func(n Node, indent string) {
		shape := dotShape(n.Kind)
		lines := make([]string, 0, 2)
		for _, l := range n.label() {
			lines = append(lines, dotEscape(l))
		}
		fill := ""
		if c := actionColor(n.Action); c != "" {
			fill = fmt.Sprintf(", style=filled, fillcolor=\"%s\"", c)
		}
		fmt.Fprintf(&b, "%s%s [shape=%s, label=\"%s\"%s];\n", indent, n.ID, shape, strings.Join(lines, `\n`), fill)
	}
	for _, n := range g.Nodes {
		if !n.OnHost {
			node(n, "\t")
		}
	}
	if g.Host != "" {
		fmt.Fprintf(&b, "\tsubgraph cluster_host {\n\t\tlabel=%s;\n\t\tstyle=dashed;\n", dotQuote("services on "+g.Host))
		for _, n := range g.Nodes {
			if n.OnHost {
				node(n, "\t\t")
			}
		}
		b.WriteString("\t}\n")
	}
	for _, e := range g.Edges {
		if e.Label != "" {
			fmt.Fprintf(&b, "\t%s -> %s [label=%s];\n", e.From, e.To, dotQuote(e.Label))
		} else {
			fmt.Fprintf(&b, "\t%s -> %s;\n", e.From, e.To)
		}
	}
	b.WriteString("}\n")
	return b.Bytes()
}

// dotQuote returns s as a dot string.
func dotQuote(s string) string { return `"` + dotEscape(s) + `"` }

// dotEscape escapes s for the inside of a dot string: backslashes (which
// start dot's label escapes such as \N), quotes and line breaks.
func dotEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", "").Replace(s)
}

// Mermaid renders g as a Mermaid flowchart (left to right).
func Mermaid(g Graph) []byte {
	var b bytes.Buffer
	b.WriteString("flowchart LR\n")
	node := func(n Node, indent string) {
		lines := make([]string, 0, 2)
		for _, l := range n.label() {
			lines = append(lines, mermaidEscape(l))
		}
		open, closing := `["`, `"]`
		switch n.Kind {
		case spec.KindDatabase, spec.KindDatabaseDB:
			open, closing = `[("`, `")]`
		case spec.KindDatabaseUser:
			open, closing = `(["`, `"])`
		case spec.KindSecurityGroup:
			open, closing = `{{"`, `"}}`
		}
		fmt.Fprintf(&b, "%s%s%s%s%s\n", indent, n.ID, open, strings.Join(lines, "<br>"), closing)
	}
	for _, n := range g.Nodes {
		if !n.OnHost {
			node(n, "  ")
		}
	}
	if g.Host != "" {
		fmt.Fprintf(&b, "  subgraph host[\"%s\"]\n", mermaidEscape("services on "+g.Host))
		for _, n := range g.Nodes {
			if n.OnHost {
				node(n, "    ")
			}
		}
		b.WriteString("  end\n")
	}
	for _, e := range g.Edges {
		if e.Label != "" {
			fmt.Fprintf(&b, "  %s -->|%s| %s\n", e.From, e.Label, e.To)
		} else {
			fmt.Fprintf(&b, "  %s --> %s\n", e.From, e.To)
		}
	}
	// The plan's actions: one class per action, in a fixed order.
	for _, act := range []string{ActionCreate, ActionUpdate, ActionReplace, ActionDelete} {
		var ids []string
		for _, n := range g.Nodes {
			if n.Action == act {
				ids = append(ids, n.ID)
			}
		}
		if len(ids) > 0 {
			fmt.Fprintf(&b, "  classDef plan_%s fill:%s\n  class %s plan_%s\n", act, actionColor(act), strings.Join(ids, ","), act)
		}
	}
	return b.Bytes()
}

// mermaidEscape makes s safe inside a quoted Mermaid label: quotes and the
// characters Mermaid or its HTML labels interpret become entity codes, and
// line breaks spaces.
func mermaidEscape(s string) string {
	return strings.NewReplacer(
		"#", "#35;", `"`, "#quot;", "<", "#lt;", ">", "#gt;", "&", "#amp;",
		"\n", " ", "\r", " ",
	).Replace(s)
}

// ErrNoGraphviz says that the dot program is missing.
var ErrNoGraphviz = errors.New("the dot program of Graphviz is not installed: install the Debian package graphviz (apt-get install graphviz), or use --format dot and render it elsewhere")

// SVG renders dot text as SVG with Graphviz's dot program; ctx bounds the
// run. It returns ErrNoGraphviz when dot is not on the PATH.
func SVG(ctx context.Context, dot []byte) ([]byte, error) {
	path, err := exec.LookPath("dot")
	if err != nil {
		return nil, ErrNoGraphviz
	}
	cmd := exec.CommandContext(ctx, path, "-Tsvg")
	cmd.Stdin = bytes.NewReader(dot)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("graphviz dot -Tsvg: %w", ctx.Err())
		}
		return nil, fmt.Errorf("graphviz dot -Tsvg: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return out.Bytes(), nil
}
