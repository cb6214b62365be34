package provision

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/provision/openstack"
	"github.com/accoreboot/acco/state"
)

// ruleKey identifies an ingress rule: what it admits. Rules cannot be
// updated in Neutron, so a rule is either kept or deleted and created.
// Format: "IPv4 tcp 22-22 192.0.2.0/24" ("IPv4 icmp 192.0.2.0/24" without
// ports).
func ruleKey(r openstack.Rule) string {
	ports := ""
	if r.PortMin != 0 || r.PortMax != 0 {
		ports = fmt.Sprintf(" %d-%d", r.PortMin, r.PortMax)
	}
	proto := r.Protocol
	if proto == "" {
		proto = "any"
	}
	return fmt.Sprintf("%s %s%s %s", r.EtherType, proto, ports, r.RemoteIPPrefix)
}

// parseRuleKey is the inverse of ruleKey.
func parseRuleKey(k string) (openstack.Rule, error) {
	f := strings.Fields(k)
	r := openstack.Rule{Direction: "ingress"}
	switch len(f) {
	case 3:
		r.EtherType, r.Protocol, r.RemoteIPPrefix = f[0], f[1], f[2]
	case 4:
		r.EtherType, r.Protocol, r.RemoteIPPrefix = f[0], f[1], f[3]
		lo, hi, _ := strings.Cut(f[2], "-")
		var err1, err2 error
		r.PortMin, err1 = strconv.Atoi(lo)
		r.PortMax, err2 = strconv.Atoi(hi)
		if err1 != nil || err2 != nil {
			return r, fmt.Errorf("bad ports in rule %q", k)
		}
	default:
		return r, fmt.Errorf("bad rule %q", k)
	}
	if r.Protocol == "any" {
		r.Protocol = ""
	}
	return r, nil
}

// desiredRules expands a group's rules into Neutron rules: one per port
// range and source.
func desiredRules(env *spec.Environment, g *spec.SecurityGroup) (keys []string, descriptions map[string]string) {
	descriptions = map[string]string{}
	for _, r := range g.Rules {
		for _, src := range env.RuleSources(r) {
			ether := "IPv4"
			if src.Addr().Is6() {
				ether = "IPv6"
			}
			ranges := r.Ports
			if len(ranges) == 0 {
				ranges = []spec.PortRange{{}}
			}
			for _, pr := range ranges {
				nr := openstack.Rule{Direction: "ingress", EtherType: ether, Protocol: r.Protocol, PortMin: pr.Min, PortMax: pr.Max, RemoteIPPrefix: src.Masked().String()}
				k := ruleKey(nr)
				if _, dup := descriptions[k]; !dup {
					keys = append(keys, k)
				}
				descriptions[k] = r.Description
			}
		}
	}
	slices.Sort(keys)
	return keys, descriptions
}

// observedRules returns the ingress rule keys of a group, sorted.
func observedRules(g openstack.SecurityGroup) []string {
	var keys []string
	for _, r := range g.Rules {
		if r.Direction == "ingress" {
			keys = append(keys, ruleKey(r))
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

func groupAttrs(g openstack.SecurityGroup) map[string]any {
	return map[string]any{"name": g.Name, "description": g.Description, "rules": observedRules(g)}
}

func (p *planner) planSecurityGroups() {
	byID := map[string]openstack.SecurityGroup{}
	for _, g := range p.in.Observed.SecurityGroups {
		byID[g.ID] = g
	}
	seen := map[string]bool{}
	if p.wanted() {
		for _, name := range sortedKeys(p.in.Env.SecurityGroups) {
			g := p.in.Env.SecurityGroups[name]
			addr := spec.Address(spec.KindSecurityGroup, name)
			seen[addr] = true
			cloud := CloudName(p.env, name)
			keys, descs := desiredRules(p.in.Env, g)
			after := map[string]any{"name": cloud, "description": g.Description, "rules": keys, "rule_descriptions": descs}
			r := p.stateOf(addr)
			have, adopt := p.findGroup(r, cloud, byID)
			if have == nil {
				p.add(Change{Address: addr, Action: Create, After: after})
				continue
			}
			before := groupAttrs(*have)
			if r != nil && r.ID == have.ID {
				p.groupDrift(addr, r, before)
			}
			c := Change{Address: addr, Action: NoOp, ID: have.ID, Before: before, After: after, Adopt: adopt}
			// The name differs for a group imported under a name of its own
			// (acco import): it is renamed to acco's.
			if diff := compare(after, before, "name", "description", "rules"); len(diff) > 0 {
				c.Action, c.Reason = Update, ruleChangeReason(attrStrings(before, "rules"), keys, diff)
			} else if adopt {
				c.Action, c.Reason = Read, fmt.Sprintf("found %s in the cloud and not in state: adopt it", cloud)
			}
			p.add(c)
		}
	}
	for _, r := range p.stateKind(spec.KindSecurityGroup) {
		if seen[r.Address] {
			continue
		}
		g, ok := byID[r.ID]
		p.orphan(r, groupAttrs(g), ok, p.removedReason())
		seen[r.Address] = true
	}
	own := p.ownNames(spec.KindSecurityGroup, sortedKeys(p.in.Env.SecurityGroups))
	for _, g := range p.in.Observed.SecurityGroups {
		// A group tagged for this environment is its own whatever its
		// name; one tagged for another environment never is. A group
		// without acco's tags may be one whose tagging was interrupted,
		// so its whole name is what counts.
		name, ok := own[g.Name]
		switch tag := envTag(g.Tags); {
		case tag == p.env:
			name, ok = strings.CutPrefix(g.Name, CloudName(p.env, ""))
			ok = ok && name != ""
		case tag != "":
			ok = false
		}
		if ok && p.sweep(spec.Address(spec.KindSecurityGroup, name), seen) {
			p.add(Change{Address: spec.Address(spec.KindSecurityGroup, name), Action: Delete, ID: g.ID, Before: groupAttrs(g), Reason: p.sweepReason()})
		}
	}
}

// envTag returns the environment a group's acco-env=ENV tag names, or "".
func envTag(tags []string) string {
	for _, t := range tags {
		if env, ok := strings.CutPrefix(t, "acco-env="); ok {
			return env
		}
	}
	return ""
}

// findGroup looks a group up by the ID in state, then by its name.
func (p *planner) findGroup(r *state.Resource, cloud string, byID map[string]openstack.SecurityGroup) (have *openstack.SecurityGroup, adopt bool) {
	if r != nil {
		if g, ok := byID[r.ID]; ok {
			return &g, false
		}
		p.drift(r.Address, "security group %s deleted outside acco", r.ID)
	}
	for _, g := range p.in.Observed.SecurityGroups {
		if g.Name == cloud {
			return &g, true
		}
	}
	return nil, false
}

// groupDrift reports rules added or deleted outside acco, against state.
func (p *planner) groupDrift(addr string, r *state.Resource, before map[string]any) {
	recorded := attrStrings(r.Attributes, "rules")
	live := attrStrings(before, "rules")
	for _, k := range recorded {
		if !slices.Contains(live, k) {
			p.drift(addr, "rule %s deleted outside acco", k)
		}
	}
	for _, k := range live {
		if !slices.Contains(recorded, k) {
			p.drift(addr, "rule %s added outside acco", k)
		}
	}
	if d := attrString(r.Attributes, "description"); d != attrString(before, "description") {
		p.drift(addr, "description changed outside acco")
	}
}

// ruleChangeReason says what an update of a group does.
func ruleChangeReason(have, want []string, diff []string) string {
	var add, del int
	for _, k := range want {
		if !slices.Contains(have, k) {
			add++
		}
	}
	for _, k := range have {
		if !slices.Contains(want, k) {
			del++
		}
	}
	var parts []string
	if add > 0 {
		parts = append(parts, fmt.Sprintf("add %d rule(s)", add))
	}
	if del > 0 {
		parts = append(parts, fmt.Sprintf("delete %d rule(s)", del))
	}
	if slices.Contains(diff, "description") {
		parts = append(parts, "change the description")
	}
	if slices.Contains(diff, "name") {
		parts = append(parts, "rename it to acco's name")
	}
	return strings.Join(parts, ", ")
}

// createGroup adopts the group named acco-<env>-NAME or creates it, records
// its ID at once, then converges its rules.
func (a *applier) createGroup(ctx context.Context, c *Change) error {
	name := attrString(c.After, "name")
	groups, err := a.cl.Network.ListSecurityGroups(ctx)
	if err != nil {
		return err
	}
	var g *openstack.SecurityGroup
	for i := range groups {
		if groups[i].Name == name {
			g = &groups[i]
			break
		}
	}
	if g == nil {
		created, err := a.cl.Network.CreateSecurityGroup(ctx, name, attrString(c.After, "description"), Tags(a.env))
		if created.ID != "" {
			// Recorded even if tagging failed: the next run adopts it.
			if rerr := a.rec.record(ctx, state.Resource{Address: c.Address, Kind: c.Kind, ID: created.ID, Attributes: groupAttrs(created)}); rerr != nil {
				return rerr
			}
		}
		if err != nil {
			return err
		}
		g = &created
	} else if err := a.rec.record(ctx, state.Resource{Address: c.Address, Kind: c.Kind, ID: g.ID, Attributes: groupAttrs(*g)}); err != nil {
		return err
	}
	c2 := *c
	c2.ID = g.ID
	return a.updateGroup(ctx, &c2)
}

// updateGroup converges a group's description, tags and rules by set
// difference against the live group.
func (a *applier) updateGroup(ctx context.Context, c *Change) error {
	g, err := a.cl.Network.GetSecurityGroup(ctx, c.ID)
	if err != nil {
		return err
	}
	if n := attrString(c.After, "name"); n != "" && n != g.Name {
		if err := a.cl.Network.RenameSecurityGroup(ctx, g.ID, n); err != nil {
			return err
		}
		g.Name = n
	}
	if d := attrString(c.After, "description"); d != g.Description {
		if err := a.cl.Network.UpdateSecurityGroup(ctx, g.ID, d); err != nil {
			return err
		}
	}
	if !slices.Equal(sortedCopy(g.Tags), sortedCopy(Tags(a.env))) {
		if err := a.cl.Network.SetSecurityGroupTags(ctx, g.ID, Tags(a.env)); err != nil {
			return err
		}
	}
	want := attrStrings(c.After, "rules")
	descs, _ := c.After["rule_descriptions"].(map[string]string)
	if descs == nil {
		if m, ok := c.After["rule_descriptions"].(map[string]any); ok {
			descs = map[string]string{}
			for k, v := range m {
				descs[k] = canonical(v)
			}
		}
	}
	for _, r := range g.Rules {
		if r.Direction == "ingress" && !slices.Contains(want, ruleKey(r)) {
			if err := a.cl.Network.DeleteRule(ctx, r.ID); err != nil && !openstack.IsNotFound(err) {
				return err
			}
		}
	}
	have := observedRules(g)
	for _, k := range want {
		if slices.Contains(have, k) {
			continue
		}
		nr, err := parseRuleKey(k)
		if err != nil {
			return err
		}
		nr.GroupID, nr.Description = g.ID, descs[k]
		if _, err := a.cl.Network.CreateRule(ctx, nr); err != nil {
			return err
		}
	}
	attrs := map[string]any{"name": g.Name, "description": attrString(c.After, "description"), "rules": want}
	return a.rec.finish(ctx, c.Address, &state.Resource{Address: c.Address, Kind: c.Kind, ID: g.ID, Attributes: attrs})
}

// deleteGroup deletes a group; NotFound is done.
func (a *applier) deleteGroup(ctx context.Context, c *Change) error {
	if err := a.cl.Network.DeleteSecurityGroup(ctx, c.ID); err != nil && !openstack.IsNotFound(err) {
		return err
	}
	return a.rec.finish(ctx, c.Address, nil)
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
