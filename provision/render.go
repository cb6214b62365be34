package provision

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// FormatVersion is the version of the JSON plan document. A minor change
// only adds fields.
const FormatVersion = "1"

// JSONChange is one change in the JSON plan document.
type JSONChange struct {
	Address string         `json:"address"`
	Kind    string         `json:"kind"`
	Action  Action         `json:"action"`
	Reason  string         `json:"reason,omitempty"`
	Before  map[string]any `json:"before"`
	After   map[string]any `json:"after"`
}

// JSONPlan is the document `acco plan ENV --json` prints.
type JSONPlan struct {
	FormatVersion string       `json:"format_version"`
	Env           string       `json:"env"`
	Lineage       string       `json:"lineage"`
	Serial        uint64       `json:"serial"`
	Destroy       bool         `json:"destroy,omitempty"`
	RefreshOnly   bool         `json:"refresh_only,omitempty"`
	Changes       []JSONChange `json:"changes"`
	Drift         []Drift      `json:"drift"`
	Interrupted   []string     `json:"interrupted,omitempty"`
	// Stopped lists the on-demand databases archived by acco db stop
	// (see Plan.Stopped).
	Stopped []StoppedDatabase `json:"stopped,omitempty"`
	// Adoptable lists what acco import could bring under management (see
	// Plan.Adoptable); always present, empty when there is none.
	Adoptable []Adoptable `json:"adoptable"`
	Summary   Summary     `json:"summary"`
}

// hiddenAttrs are attributes kept for apply but not shown: a database's
// CA certificate is public, but a PEM block says nothing to read in a plan.
var hiddenAttrs = []string{"rule_descriptions", "ca_certificate"}

// sensitiveAttrs are attributes whose values are always masked.
var sensitiveAttrs = []string{"password"}

// present returns the attributes to show: hidden ones dropped, secrets
// masked.
func present(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		switch {
		case slices.Contains(hiddenAttrs, k):
		case slices.Contains(sensitiveAttrs, k):
			out[k] = Sensitive
		default:
			out[k] = v
		}
	}
	return out
}

// JSON returns the plan's JSON document.
func (p *Plan) JSON() JSONPlan {
	doc := JSONPlan{FormatVersion: FormatVersion, Env: p.Env, Lineage: p.Lineage, Serial: p.Serial,
		Destroy: p.Destroy, RefreshOnly: p.RefreshOnly, Changes: []JSONChange{}, Drift: p.Drift, Interrupted: p.Interrupted, Stopped: p.Stopped, Summary: p.Summary()}
	if doc.Drift == nil {
		doc.Drift = []Drift{}
	}
	doc.Adoptable = p.Adoptable
	if doc.Adoptable == nil {
		doc.Adoptable = []Adoptable{}
	}
	for _, c := range p.Changes {
		doc.Changes = append(doc.Changes, JSONChange{Address: c.Address, Kind: c.Kind, Action: c.Action, Reason: c.Reason, Before: present(c.Before), After: present(c.After)})
	}
	return doc
}

// Render writes the plan for people: each change with its reason and the
// attributes that change, then the drift and a summary line.
func (p *Plan) Render(w io.Writer) error {
	var b strings.Builder
	changed := 0
	for _, c := range p.Changes {
		if c.Action != NoOp {
			changed++
		}
	}
	if len(p.Interrupted) > 0 {
		fmt.Fprintf(&b, "An earlier apply was interrupted during: %s.\nThis plan adopts or finishes what it left.\n\n", strings.Join(p.Interrupted, ", "))
	}
	for _, s := range p.Stopped {
		fmt.Fprintf(&b, "%s.\n", s.Message(p.Env, p.Destroy))
	}
	if len(p.Stopped) > 0 {
		b.WriteString("\n")
	}
	dumps := 0
	for _, s := range p.Stopped {
		if s.DeleteDumps {
			dumps++
		}
	}
	if changed == 0 && len(p.Drift) == 0 && dumps == 0 {
		if p.Unsettled() {
			fmt.Fprintf(&b, "No changes that apply can make: the stop above is for acco db stop %s to finish.\n", p.Env)
		} else {
			fmt.Fprintf(&b, "No changes: the cloud matches environment %s.\n", p.Env)
		}
		writeAdoptable(&b, p)
		_, err := io.WriteString(w, b.String())
		return err
	}
	if len(p.Drift) > 0 {
		fmt.Fprintf(&b, "Changed outside acco since the last apply:\n")
		for _, d := range p.Drift {
			fmt.Fprintf(&b, "  %s: %s\n", d.Address, d.Message)
		}
		b.WriteString("\n")
	}
	if changed > 0 {
		fmt.Fprintf(&b, "acco will perform the following actions on %s:\n", p.Env)
	}
	for _, c := range p.Changes {
		if c.Action == NoOp {
			continue
		}
		b.WriteString("\n")
		fmt.Fprintf(&b, "  # %s %s", c.Address, verb(c.Action))
		if c.Reason != "" {
			fmt.Fprintf(&b, " (%s)", c.Reason)
		}
		b.WriteString("\n")
		fmt.Fprintf(&b, "%3s %s", c.Action.Symbol(), c.Address)
		if c.ID != "" {
			fmt.Fprintf(&b, " [id=%s]", c.ID)
		}
		b.WriteString("\n")
		before, after := present(c.Before), present(c.After)
		switch c.Action {
		case Create:
			writeAttrs(&b, "+", after)
		case Update, Replace:
			for _, k := range sortedKeys(after) {
				if _, ok := before[k]; !ok && isEmpty(after[k]) {
					continue
				}
				if equalValue(before[k], after[k]) {
					continue
				}
				bl, bok := asList(before[k])
				al, aok := asList(after[k])
				if bok && aok {
					fmt.Fprintf(&b, "      ~ %s:\n", k)
					for _, x := range bl {
						if !slices.Contains(al, x) {
							fmt.Fprintf(&b, "          - %s\n", x)
						}
					}
					for _, x := range al {
						if !slices.Contains(bl, x) {
							fmt.Fprintf(&b, "          + %s\n", x)
						}
					}
					continue
				}
				fmt.Fprintf(&b, "      ~ %s = %s -> %s\n", k, show(before[k]), show(after[k]))
			}
		case Delete, Read, NoOp:
		}
	}
	s := p.Summary()
	if changed > 0 || dumps > 0 {
		fmt.Fprintf(&b, "\nPlan: %d to create, %d to update, %d to replace, %d to delete", s.Create, s.Update, s.Replace, s.Delete)
		if dumps > 0 {
			fmt.Fprintf(&b, "; the dumps of %d on-demand database(s) to delete", dumps)
		}
		b.WriteString(".\n")
	}
	writeAdoptable(&b, p)
	_, err := io.WriteString(w, b.String())
	return err
}

// writeAdoptable lists the resources that acco import could bring under
// management, each with how it differs from the YAML and the command.
func writeAdoptable(b *strings.Builder, p *Plan) {
	if len(p.Adoptable) == 0 {
		return
	}
	fmt.Fprintf(b, "\nAdoptable: made outside acco, these could be what the plan creates. Nothing is adopted\nunless you run the command shown; after it, plan shows the differences as changes.\n")
	for _, a := range p.Adoptable {
		fmt.Fprintf(b, "\n  %s %s (id %s) could be %s", a.What, a.Name, a.ID, a.Address)
		if len(a.Matches) > 0 {
			fmt.Fprintf(b, ": same %s", strings.Join(a.Matches, ", "))
		}
		b.WriteString("\n")
		if len(a.Differs) > 0 {
			fmt.Fprintf(b, "    differs in: %s\n", strings.Join(a.Differs, "; "))
		}
		fmt.Fprintf(b, "    %s\n", a.Command)
	}
}

func verb(a Action) string {
	switch a {
	case Create:
		return "will be created"
	case Update:
		return "will be updated in place"
	case Replace:
		return "must be replaced"
	case Delete:
		return "will be deleted"
	case Read:
		return "will be recorded in state"
	case NoOp:
		return "is up to date"
	}
	return string(a)
}

// asList returns a list value as strings.
func asList(v any) ([]string, bool) {
	switch v.(type) {
	case []string, []any:
		return attrStrings(map[string]any{"v": v}, "v"), true
	}
	return nil, false
}

func isEmpty(v any) bool {
	return canonical(v) == "" || canonical(v) == "0" || canonical(v) == "false"
}

func writeAttrs(b *strings.Builder, sym string, m map[string]any) {
	width := 0
	for k := range m {
		width = max(width, len(k))
	}
	for _, k := range sortedKeys(m) {
		if isEmpty(m[k]) {
			continue
		}
		fmt.Fprintf(b, "      %s %-*s = %s\n", sym, width, k, show(m[k]))
	}
}
