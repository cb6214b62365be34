package openstack

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// findGroupByID returns a project's security group of an ID in a region.
func (c *Cloud) findGroupByID(project, region, id string) *secGroup {
	for _, g := range c.st.SecGroups {
		if g.ID == id && g.Project == project && g.Region == region {
			return g
		}
	}
	return nil
}

// findGroupByName returns a project's first security group of a name in a
// region.
func (c *Cloud) findGroupByName(project, region, name string) *secGroup {
	for _, g := range c.st.SecGroups {
		if g.Name == name && g.Project == project && g.Region == region {
			return g
		}
	}
	return nil
}

// resolveGroup finds the caller's security group by ID or name, as Nova does
// for security_groups in a server create.
func (c *Cloud) resolveGroup(req *request, ref string) (*secGroup, *response) {
	if g := c.findGroupByID(req.tok.Project.ID, req.region, ref); g != nil {
		return g, nil
	}
	var found []*secGroup
	for _, g := range c.st.SecGroups {
		if g.Name == ref && g.Project == req.tok.Project.ID && g.Region == req.region {
			found = append(found, g)
		}
	}
	switch len(found) {
	case 0:
		return nil, novaError(http.StatusBadRequest, "Security group %s not found for project %s.", ref, req.tok.Project.ID)
	case 1:
		return found[0], nil
	}
	return nil, novaError(http.StatusConflict, "Multiple security_group matches found for name '%s', use an ID to be more specific.", ref)
}

// ensureDefaultGroup creates, on first use, a project's default security
// group of a region: as on OVH, it lets everything in and out, IPv4 and IPv6.
func (c *Cloud) ensureDefaultGroup(project, region string) {
	if c.findGroupByName(project, region, "default") != nil {
		return
	}
	now := c.now()
	g := &secGroup{
		scope: scope{Project: project, Region: region}, ID: newUUID(), Name: "default",
		Description: "Default security group", Tags: []string{}, Created: now, Updated: now, Revision: 1,
	}
	c.st.SecGroups = append(c.st.SecGroups, g)
	for _, dir := range []string{"ingress", "egress"} {
		for _, eth := range []string{"IPv4", "IPv6"} {
			all := "0.0.0.0/0"
			if eth == "IPv6" {
				all = "::/0"
			}
			c.st.Rules = append(c.st.Rules, &secRule{
				scope: g.scope, ID: newUUID(), GroupID: g.ID, Direction: dir, Ethertype: eth,
				RemoteIPPrefix: &all, Created: now, Updated: now, Revision: 0,
			})
		}
	}
	c.dirty = true
}

func (c *Cloud) groupBody(g *secGroup) map[string]any {
	rules := []any{}
	for _, r := range c.st.Rules {
		if r.GroupID == g.ID {
			rules = append(rules, ruleBody(r))
		}
	}
	return map[string]any{
		"id": g.ID, "name": g.Name, "description": g.Description, "tenant_id": g.Project,
		"project_id": g.Project, "security_group_rules": rules, "tags": slices.Clone(g.Tags),
		"created_at": g.Created.Format(neutronTime), "updated_at": g.Updated.Format(neutronTime),
		"revision_number": g.Revision, "stateful": true, "shared": false,
	}
}

// groupRequest is the body of a security group create or update.
type groupRequest struct {
	SecurityGroup *struct {
		Name        *string   `json:"name"`
		Description *string   `json:"description"`
		Tags        *[]string `json:"tags"`
		ProjectID   string    `json:"project_id"`
		TenantID    string    `json:"tenant_id"`
		Stateful    *bool     `json:"stateful"`
	} `json:"security_group"`
}

func (c *Cloud) serveSecGroups(req *request) *response {
	segs := req.segs[1:]
	project := req.tok.Project.ID
	if len(segs) == 0 {
		switch req.method() {
		case http.MethodGet:
			var items []map[string]any
			for _, g := range c.st.SecGroups {
				if g.Project == project && g.Region == req.region {
					items = append(items, c.groupBody(g))
				}
			}
			return c.listResources(req, "security_groups", items)
		case http.MethodPost:
			return c.createSecGroup(req)
		}
		return methodNotAllowed("GET", "POST")
	}
	g := c.findGroupByID(project, req.region, segs[0])
	if g == nil {
		return neutronError(http.StatusNotFound, "SecurityGroupNotFound", "Security group %s does not exist", segs[0])
	}
	touch := func() {
		g.Updated = c.now()
		g.Revision++
		c.dirty = true
	}
	if len(segs) >= 2 && segs[1] == "tags" {
		return serveTags(req, &g.Tags, touch, segs[2:])
	}
	if len(segs) != 1 {
		return neutronNotFound()
	}
	switch req.method() {
	case http.MethodGet:
		return jsonResp(http.StatusOK, map[string]any{"security_group": selectFields(req, c.groupBody(g))})
	case http.MethodPut:
		if errResp := checkRevision(req, g.Revision); errResp != nil {
			return errResp
		}
		var body groupRequest
		if err := req.decode(&body); err != nil || body.SecurityGroup == nil {
			return neutronError(http.StatusBadRequest, "HTTPBadRequest", "Resource body required")
		}
		u := body.SecurityGroup
		if u.Stateful != nil && !*u.Stateful {
			return neutronError(http.StatusBadRequest, "HTTPBadRequest", "Stateless security groups are not offered by this cloud")
		}
		if u.Name != nil && *u.Name != g.Name {
			if g.Name == "default" {
				return neutronError(http.StatusConflict, "SecurityGroupCannotUpdateDefault", "Updating default security group not allowed.")
			}
			if *u.Name == "default" {
				return neutronError(http.StatusConflict, "SecurityGroupDefaultAlreadyExists", "Default security group already exists.")
			}
			if len(*u.Name) > 255 {
				return neutronError(http.StatusBadRequest, "HTTPBadRequest", "Invalid input for name. Reason: '%s' exceeds maximum length of 255.", *u.Name)
			}
			g.Name = *u.Name
		}
		if u.Description != nil {
			if len(*u.Description) > 255 {
				return neutronError(http.StatusBadRequest, "HTTPBadRequest", "Invalid input for description. Reason: it exceeds maximum length of 255.")
			}
			g.Description = *u.Description
		}
		touch()
		return jsonResp(http.StatusOK, map[string]any{"security_group": c.groupBody(g)})
	case http.MethodDelete:
		if g.Name == "default" {
			return neutronError(http.StatusConflict, "SecurityGroupCannotRemoveDefault", "Insufficient rights for removing default security group.")
		}
		for _, p := range c.st.Ports {
			if slices.Contains(p.SecGroups, g.ID) {
				return neutronError(http.StatusConflict, "SecurityGroupInUse", "Security Group %s in use.", g.ID)
			}
		}
		c.st.Rules = slices.DeleteFunc(c.st.Rules, func(r *secRule) bool {
			return r.GroupID == g.ID || (r.RemoteGroupID != nil && *r.RemoteGroupID == g.ID)
		})
		c.st.SecGroups = slices.DeleteFunc(c.st.SecGroups, func(x *secGroup) bool { return x == g })
		c.dirty = true
		return noContent()
	}
	return methodNotAllowed("GET", "PUT", "DELETE")
}

// createSecGroup serves POST /security-groups. A new group lets everything
// out and nothing in.
func (c *Cloud) createSecGroup(req *request) *response {
	var body groupRequest
	if err := req.decode(&body); err != nil || body.SecurityGroup == nil {
		return neutronError(http.StatusBadRequest, "HTTPBadRequest", "Resource body required")
	}
	in := body.SecurityGroup
	project := req.tok.Project.ID
	for _, p := range []string{in.ProjectID, in.TenantID} {
		if p != "" && p != project {
			return policyDenied("create_security_group")
		}
	}
	g := &secGroup{scope: scope{Project: project, Region: req.region}, ID: newUUID(), Tags: []string{}, Revision: 1}
	if in.Name != nil {
		g.Name = *in.Name
	}
	if in.Description != nil {
		g.Description = *in.Description
	}
	switch {
	case g.Name == "default":
		return neutronError(http.StatusConflict, "SecurityGroupDefaultAlreadyExists", "Default security group already exists.")
	case len(g.Name) > 255:
		return neutronError(http.StatusBadRequest, "HTTPBadRequest", "Invalid input for name. Reason: '%s' exceeds maximum length of 255.", g.Name)
	case len(g.Description) > 255:
		return neutronError(http.StatusBadRequest, "HTTPBadRequest", "Invalid input for description. Reason: it exceeds maximum length of 255.")
	case in.Stateful != nil && !*in.Stateful:
		return neutronError(http.StatusBadRequest, "HTTPBadRequest", "Stateless security groups are not offered by this cloud")
	}
	if in.Tags != nil {
		for _, t := range *in.Tags {
			if t == "" || len(t) > 60 || strings.Contains(t, ",") {
				return neutronError(http.StatusBadRequest, "InvalidInput", "Invalid input for operation: '%s' is not a valid tag.", t)
			}
			if !slices.Contains(g.Tags, t) {
				g.Tags = append(g.Tags, t)
			}
		}
	}
	now := c.now()
	g.Created, g.Updated = now, now
	c.st.SecGroups = append(c.st.SecGroups, g)
	for _, eth := range []string{"IPv4", "IPv6"} {
		c.st.Rules = append(c.st.Rules, &secRule{
			scope: g.scope, ID: newUUID(), GroupID: g.ID, Direction: "egress", Ethertype: eth,
			Created: now, Updated: now,
		})
	}
	c.dirty = true
	return jsonResp(http.StatusCreated, map[string]any{"security_group": c.groupBody(g)})
}

// --- security group rules ---

func ruleBody(r *secRule) map[string]any {
	return map[string]any{
		"id": r.ID, "tenant_id": r.Project, "project_id": r.Project, "security_group_id": r.GroupID,
		"direction": r.Direction, "ethertype": r.Ethertype, "protocol": r.Protocol,
		"port_range_min": r.PortMin, "port_range_max": r.PortMax, "remote_ip_prefix": r.RemoteIPPrefix,
		"remote_group_id": r.RemoteGroupID, "remote_address_group_id": nil, "description": r.Description,
		"created_at": r.Created.Format(neutronTime), "updated_at": r.Updated.Format(neutronTime),
		"revision_number": r.Revision,
	}
}

func (c *Cloud) serveRules(req *request) *response {
	segs := req.segs[1:]
	project := req.tok.Project.ID
	if len(segs) == 0 {
		switch req.method() {
		case http.MethodGet:
			var items []map[string]any
			for _, r := range c.st.Rules {
				if r.Project == project && r.Region == req.region {
					items = append(items, ruleBody(r))
				}
			}
			return c.listResources(req, "security_group_rules", items)
		case http.MethodPost:
			var body struct {
				Rule *ruleRequest `json:"security_group_rule"`
			}
			if err := req.decode(&body); err != nil || body.Rule == nil {
				return neutronError(http.StatusBadRequest, "HTTPBadRequest", "Resource body required")
			}
			return c.createRule(req, body.Rule, c.now())
		}
		return methodNotAllowed("GET", "POST")
	}
	i := slices.IndexFunc(c.st.Rules, func(r *secRule) bool {
		return r.ID == segs[0] && r.Project == project && r.Region == req.region
	})
	if i < 0 || len(segs) != 1 {
		return neutronError(http.StatusNotFound, "SecurityGroupRuleNotFound", "Security group rule %s does not exist", segs[0])
	}
	switch req.method() {
	case http.MethodGet:
		return jsonResp(http.StatusOK, map[string]any{"security_group_rule": selectFields(req, ruleBody(c.st.Rules[i]))})
	case http.MethodDelete:
		c.st.Rules = slices.Delete(c.st.Rules, i, i+1)
		c.dirty = true
		return noContent()
	}
	return methodNotAllowed("GET", "DELETE")
}

// ruleRequest is the body of a rule create.
type ruleRequest struct {
	SecurityGroupID string          `json:"security_group_id"`
	Direction       string          `json:"direction"`
	Ethertype       string          `json:"ethertype"`
	Protocol        json.RawMessage `json:"protocol"`
	PortMin         *int            `json:"port_range_min"`
	PortMax         *int            `json:"port_range_max"`
	RemoteIPPrefix  *string         `json:"remote_ip_prefix"`
	RemoteGroupID   *string         `json:"remote_group_id"`
	Description     string          `json:"description"`
	ProjectID       string          `json:"project_id"`
	TenantID        string          `json:"tenant_id"`
}

// ipProtocols are the protocol names Neutron accepts, with their numbers.
var ipProtocols = map[string]int{
	"ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "icmp": 1, "icmpv6": 58, "igmp": 2,
	"ipip": 4, "ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58, "ipv6-nonxt": 59,
	"ipv6-opts": 60, "ipv6-route": 43, "ospf": 89, "pgm": 113, "rsvp": 46, "sctp": 132,
	"tcp": 6, "udp": 17, "udplite": 136, "vrrp": 112,
}

// protocolNumber returns the IP protocol number of a normalized protocol, -1
// for any.
func protocolNumber(p *string) int {
	if p == nil {
		return -1
	}
	if n, ok := ipProtocols[*p]; ok {
		return n
	}
	n, _ := strconv.Atoi(*p)
	return n
}

// createRule validates and adds a rule the way Neutron does: 400 for an
// invalid rule, 404 for an unknown group, 409 for a duplicate.
func (c *Cloud) createRule(req *request, in *ruleRequest, now time.Time) *response {
	bad := func(typ, format string, args ...any) *response {
		return neutronError(http.StatusBadRequest, typ, format, args...)
	}
	project := req.tok.Project.ID
	for _, p := range []string{in.ProjectID, in.TenantID} {
		if p != "" && p != project {
			return policyDenied("create_security_group_rule")
		}
	}
	if in.SecurityGroupID == "" {
		return bad("HTTPBadRequest", "Failed to parse request. Required attribute 'security_group_id' not specified")
	}
	if in.Direction != "ingress" && in.Direction != "egress" {
		return bad("HTTPBadRequest", "Invalid input for direction. Reason: '%s' is not in ['ingress', 'egress'].", in.Direction)
	}
	r := &secRule{
		scope: scope{Project: project, Region: req.region}, GroupID: in.SecurityGroupID,
		Direction: in.Direction, Ethertype: in.Ethertype, PortMin: in.PortMin, PortMax: in.PortMax,
		RemoteGroupID: in.RemoteGroupID, Description: in.Description,
	}
	if r.Ethertype == "" {
		r.Ethertype = "IPv4"
	}
	if r.Ethertype != "IPv4" && r.Ethertype != "IPv6" {
		return bad("SecurityGroupRuleInvalidEtherType", "Security group rule for ethertype '%s' not supported. Allowed values are ['IPv4', 'IPv6'].", r.Ethertype)
	}

	// protocol: a name, a number (as a string or a number), or none/any.
	var proto any
	if len(in.Protocol) > 0 {
		if err := json.Unmarshal(in.Protocol, &proto); err != nil {
			return bad("HTTPBadRequest", "Invalid input for protocol.")
		}
	}
	switch p := proto.(type) {
	case nil:
	case float64:
		s := strconv.Itoa(int(p))
		r.Protocol = &s
	case string:
		if p != "" && !strings.EqualFold(p, "any") {
			s := strings.ToLower(p)
			r.Protocol = &s
		}
	default:
		return bad("HTTPBadRequest", "Invalid input for protocol.")
	}
	if r.Protocol != nil {
		if _, ok := ipProtocols[*r.Protocol]; !ok {
			n, err := strconv.Atoi(*r.Protocol)
			if err != nil || n < 0 || n > 255 {
				return bad("SecurityGroupRuleInvalidProtocol", "Security group rule protocol %s not supported. Only protocol values %v and integer representations [0 to 255] are supported.", *r.Protocol, sortedKeys(ipProtocols))
			}
		}
	}
	// Neutron turns the legacy IPv6 ICMP names and numbers into ipv6-icmp.
	if r.Ethertype == "IPv6" && r.Protocol != nil {
		switch *r.Protocol {
		case "icmp", "icmpv6":
			s := "ipv6-icmp"
			r.Protocol = &s
		case "1":
			s := "58"
			r.Protocol = &s
		}
	}
	num := protocolNumber(r.Protocol)
	if r.Ethertype == "IPv4" && slices.Contains([]int{41, 43, 44, 58, 59, 60}, num) {
		return bad("SecurityGroupEthertypeConflictWithProtocol", "Invalid ethertype IPv4 for protocol %s.", *r.Protocol)
	}

	// ports: a range for port-based protocols, type and code for ICMP.
	if r.PortMin != nil || r.PortMax != nil {
		switch num {
		case -1:
			return bad("SecurityGroupProtocolRequiredWithPorts", "Must also specify protocol if port range is given.")
		case 6, 17, 33, 132, 136:
			if r.PortMin == nil || r.PortMax == nil || *r.PortMin > *r.PortMax {
				return bad("SecurityGroupInvalidPortRange", "For TCP/UDP protocols, port_range_min must be <= port_range_max")
			}
			for _, v := range []int{*r.PortMin, *r.PortMax} {
				if v < 1 || v > 65535 {
					return bad("SecurityGroupInvalidPortValue", "Invalid value for port %d.", v)
				}
			}
		case 1, 58:
			if r.PortMin == nil {
				return bad("SecurityGroupMissingIcmpType", "ICMP code (port-range-max) %d is provided but ICMP type (port-range-min) is missing.", *r.PortMax)
			}
			for _, v := range []*int{r.PortMin, r.PortMax} {
				if v != nil && (*v < 0 || *v > 255) {
					return bad("SecurityGroupInvalidIcmpValue", "Invalid value for ICMP %d. It must be 0 to 255.", *v)
				}
			}
		default:
			return bad("SecurityGroupInvalidProtocolForPort", "Invalid protocol %s for port range, only supported for TCP, UDP, UDPLITE, SCTP and DCCP.", *r.Protocol)
		}
	}

	// remote: an address prefix of the rule's family, or a group.
	if in.RemoteIPPrefix != nil && r.RemoteGroupID != nil {
		return bad("SecurityGroupRemoteGroupAndRemoteIpPrefix", "Only remote_ip_prefix or remote_group_id may be provided.")
	}
	if in.RemoteIPPrefix != nil {
		prefix, err := parsePrefix(*in.RemoteIPPrefix)
		if err != nil {
			return bad("HTTPBadRequest", "Invalid input for remote_ip_prefix. Reason: '%s' is not a valid IP subnet.", *in.RemoteIPPrefix)
		}
		if prefix.Addr().Is4() != (r.Ethertype == "IPv4") {
			return bad("SecurityGroupRuleParameterConflict", "Conflicting value ethertype %s for CIDR %s", r.Ethertype, *in.RemoteIPPrefix)
		}
		s := prefix.String()
		r.RemoteIPPrefix = &s
	}
	g := c.findGroupByID(project, req.region, in.SecurityGroupID)
	if g == nil {
		return neutronError(http.StatusNotFound, "SecurityGroupNotFound", "Security group %s does not exist", in.SecurityGroupID)
	}
	if r.RemoteGroupID != nil && c.findGroupByID(project, req.region, *r.RemoteGroupID) == nil {
		return neutronError(http.StatusNotFound, "SecurityGroupNotFound", "Security group %s does not exist", *r.RemoteGroupID)
	}
	for _, x := range c.st.Rules {
		if x.GroupID == r.GroupID && sameRule(x, r) {
			return neutronError(http.StatusConflict, "SecurityGroupRuleExists", "Security group rule already exists. Rule id is %s.", x.ID)
		}
	}
	r.ID = newUUID()
	r.Created, r.Updated = now, now
	c.st.Rules = append(c.st.Rules, r)
	g.Updated = now
	g.Revision++
	c.dirty = true
	return jsonResp(http.StatusCreated, map[string]any{"security_group_rule": ruleBody(r)})
}

// parsePrefix parses a CIDR or a bare address (given its full mask). Like
// Neutron, it keeps host bits: 203.0.113.7/24 stays as it is.
func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	return netip.ParsePrefix(s)
}

// sameRule reports whether two rules of a group match the same traffic, as
// Neutron's duplicate check sees it (an any-address prefix equals none, a
// protocol name equals its number).
func sameRule(a, b *secRule) bool {
	prefix := func(p *string) string {
		if p == nil || *p == "0.0.0.0/0" || *p == "::/0" {
			return ""
		}
		return *p
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	ports := func(p *int) int {
		if p == nil {
			return -1
		}
		return *p
	}
	return a.Direction == b.Direction && a.Ethertype == b.Ethertype &&
		protocolNumber(a.Protocol) == protocolNumber(b.Protocol) &&
		ports(a.PortMin) == ports(b.PortMin) && ports(a.PortMax) == ports(b.PortMax) &&
		prefix(a.RemoteIPPrefix) == prefix(b.RemoteIPPrefix) && str(a.RemoteGroupID) == str(b.RemoteGroupID)
}
