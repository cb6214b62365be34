package openstack

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// neutronTime is the timestamp layout of Neutron.
const neutronTime = "2006-01-02T15:04:05Z"

// neutronError answers an error in Neutron's shape.
func neutronError(status int, typ, format string, args ...any) *response {
	return jsonResp(status, map[string]any{"NeutronError": map[string]any{
		"type": typ, "message": fmt.Sprintf(format, args...), "detail": "",
	}})
}

// neutronNotFound is Neutron's 404 for a path it does not know.
func neutronNotFound() *response {
	return neutronError(http.StatusNotFound, "HTTPNotFound", "The resource could not be found.")
}

// networkRoot is the URL of the Neutron API of a region.
func networkRoot(req *request) string { return req.base + "/network/" + req.region }

// neutronExtensions are the extensions Neutron advertises: those the local
// cloud implements.
var neutronExtensions = [][2]string{
	{"external-net", "Neutron external network"},
	{"security-group", "security-group"},
	{"port-security", "Port Security"},
	{"binding", "Port Binding"},
	{"project-id", "project_id field enabled"},
	{"standard-attr-description", "standard-attr-description"},
	{"standard-attr-revisions", "Resource revision numbers"},
	{"standard-attr-tag", "Tag support for resources with standard attribute: port, subnet, network, security_group, ..."},
	{"standard-attr-timestamp", "Resource timestamps"},
	{"tag-creation", "Tag support for resources on creation"},
	{"revision-if-match", "If-Match constraints based on revision_number"},
	{"stateful-security-group", "Stateful security group"},
	{"availability_zone", "Availability Zone"},
	{"network_availability_zone", "Network Availability Zone"},
	{"net-mtu", "Network MTU"},
}

// serveNetwork serves Neutron: /network/{region}/...
func (c *Cloud) serveNetwork(req *request) *response {
	segs := req.segs
	if len(segs) > 0 {
		segs[len(segs)-1] = strings.TrimSuffix(segs[len(segs)-1], ".json")
	}
	if len(segs) == 0 {
		if req.method() != http.MethodGet {
			return methodNotAllowed("GET")
		}
		return jsonResp(http.StatusOK, map[string]any{"versions": []any{map[string]any{
			"id": "v2.0", "status": "CURRENT",
			"links": []any{map[string]any{"rel": "self", "href": networkRoot(req) + "/v2.0/"}},
		}}})
	}
	if segs[0] != "v2.0" {
		return neutronNotFound()
	}
	if !c.authenticate(req) {
		return unauthorized(req)
	}
	segs = segs[1:]
	if len(segs) == 0 {
		var res []any
		for _, r := range []string{"network", "subnet", "port", "security_group", "security_group_rule"} {
			coll := strings.ReplaceAll(r, "_", "-") + "s"
			res = append(res, map[string]any{"name": r, "collection": coll, "links": []any{
				map[string]any{"rel": "self", "href": networkRoot(req) + "/v2.0/" + coll},
			}})
		}
		return jsonResp(http.StatusOK, map[string]any{"resources": res})
	}
	c.ensureDefaultGroup(req.tok.Project.ID, req.region)
	req.segs = segs
	switch segs[0] {
	case "extensions":
		return serveExtensions(req)
	case "networks":
		return c.serveNetworks(req)
	case "subnets":
		return c.serveSubnets(req)
	case "ports":
		return c.servePorts(req)
	case "security-groups":
		return c.serveSecGroups(req)
	case "security-group-rules":
		return c.serveRules(req)
	case "availability_zones":
		if len(segs) == 1 && req.method() == http.MethodGet {
			return c.listResources(req, "availability_zones", []map[string]any{
				{"name": "nova", "resource": "network", "state": "available"},
				{"name": "nova", "resource": "router", "state": "available"},
			})
		}
	case "floatingips", "routers":
		if len(segs) == 1 && req.method() == http.MethodGet {
			return c.listResources(req, segs[0], nil)
		}
	}
	return neutronNotFound()
}

func serveExtensions(req *request) *response {
	body := func(alias, name string) map[string]any {
		return map[string]any{"alias": alias, "name": name, "description": name, "updated": "2019-03-07T10:00:00-00:00", "links": []any{}}
	}
	if len(req.segs) == 1 {
		var out []any
		for _, e := range neutronExtensions {
			out = append(out, body(e[0], e[1]))
		}
		return jsonResp(http.StatusOK, map[string]any{"extensions": out})
	}
	for _, e := range neutronExtensions {
		if e[0] == req.segs[1] {
			return jsonResp(http.StatusOK, map[string]any{"extension": body(e[0], e[1])})
		}
	}
	return neutronError(http.StatusNotFound, "HTTPNotFound", "Extension with alias %s does not exist", req.segs[1])
}

// policyDenied is Neutron's 403 for an action a project member may not do.
func policyDenied(action string) *response {
	return neutronError(http.StatusForbidden, "PolicyNotAuthorized", "(rule:%s) is disallowed by policy", action)
}

// --- networks and subnets (Ext-Net, read only) ---

func (c *Cloud) networkBody(region string) map[string]any {
	n := c.extNet(region)
	return map[string]any{
		"id": n.NetworkID, "name": "Ext-Net", "tenant_id": extNetOwner, "project_id": extNetOwner,
		"admin_state_up": true, "mtu": 1500, "status": "ACTIVE", "subnets": []string{n.SubnetID},
		"shared": true, "availability_zone_hints": []string{}, "availability_zones": []string{"nova"},
		"ipv4_address_scope": nil, "ipv6_address_scope": nil, "router:external": true,
		"description": "", "port_security_enabled": true, "l2_adjacency": true, "qos_policy_id": nil,
		"tags": []string{}, "created_at": n.Created.Format(neutronTime), "updated_at": n.Created.Format(neutronTime),
		"revision_number": 3,
	}
}

func (c *Cloud) subnetBody(region string) map[string]any {
	n := c.extNet(region)
	last := n.Prefix.Addr()
	for a := last; n.Prefix.Contains(a.Next()); a = a.Next() {
		last = a
	}
	return map[string]any{
		"id": n.SubnetID, "name": "Ext-Net", "tenant_id": extNetOwner, "project_id": extNetOwner,
		"network_id": n.NetworkID, "ip_version": 4, "subnetpool_id": nil, "enable_dhcp": true,
		"ipv6_ra_mode": nil, "ipv6_address_mode": nil, "gateway_ip": n.Gateway.String(),
		"cidr": n.Prefix.String(), "allocation_pools": []any{map[string]any{"start": n.Gateway.Next().String(), "end": last.String()}},
		"host_routes": []any{}, "dns_nameservers": []string{"213.186.33.99"}, "description": "",
		"service_types": []string{}, "tags": []string{}, "created_at": n.Created.Format(neutronTime),
		"updated_at": n.Created.Format(neutronTime), "revision_number": 0,
	}
}

func (c *Cloud) serveNetworks(req *request) *response {
	return c.serveReadOnly(req, "network", c.networkBody(req.region), "NetworkNotFound", "Network %s could not be found.")
}

func (c *Cloud) serveSubnets(req *request) *response {
	return c.serveReadOnly(req, "subnet", c.subnetBody(req.region), "SubnetNotFound", "Subnet %s could not be found.")
}

// serveReadOnly serves a collection holding one resource that projects may
// read but not change.
func (c *Cloud) serveReadOnly(req *request, kind string, item map[string]any, notFound, msg string) *response {
	segs := req.segs[1:]
	switch {
	case len(segs) == 0 && req.method() == http.MethodGet:
		return c.listResources(req, kind+"s", []map[string]any{item})
	case len(segs) == 0 && req.method() == http.MethodPost:
		return policyDenied("create_" + kind)
	case len(segs) == 0:
		return methodNotAllowed("GET", "POST")
	case segs[0] != item["id"]:
		return neutronError(http.StatusNotFound, notFound, msg, segs[0])
	case len(segs) == 1 && req.method() == http.MethodGet:
		return jsonResp(http.StatusOK, map[string]any{kind: selectFields(req, item)})
	case len(segs) == 1 && req.method() == http.MethodPut:
		return policyDenied("update_" + kind)
	case len(segs) == 1 && req.method() == http.MethodDelete:
		return policyDenied("delete_" + kind)
	case len(segs) >= 2 && segs[1] == "tags":
		return policyDenied("update_" + kind + ":tags")
	}
	return neutronNotFound()
}

// --- listing ---

// listControls are the query parameters that are not filters.
var listControls = []string{"fields", "limit", "marker", "sort_key", "sort_dir", "page_reverse", "tags", "tags-any", "not-tags", "not-tags-any"}

// listResources answers a Neutron list: items filtered by the query (any
// attribute, repeated values ORed, tags filters), sorted, paginated and cut
// to the requested fields.
func (c *Cloud) listResources(req *request, collection string, items []map[string]any) *response {
	q := req.query()
	var out []map[string]any
	for _, it := range items {
		if matches(it, q) {
			out = append(out, it)
		}
	}
	if key := q.Get("sort_key"); key != "" {
		desc := q.Get("sort_dir") == "desc"
		sort.SliceStable(out, func(i, j int) bool {
			a, b := fmt.Sprint(out[i][key]), fmt.Sprint(out[j][key])
			if desc {
				return a > b
			}
			return a < b
		})
	}
	if m := q.Get("marker"); m != "" {
		i := slices.IndexFunc(out, func(it map[string]any) bool { return it["id"] == m })
		if i < 0 {
			return neutronError(http.StatusNotFound, "HTTPNotFound", "Marker %s could not be found.", m)
		}
		out = out[i+1:]
	}
	body := map[string]any{}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			return neutronError(http.StatusBadRequest, "HTTPBadRequest", "Invalid input for limit. Reason: '%s' is not an integer.", l)
		}
		if n > 0 && n < len(out) {
			out = out[:n]
			next := url.Values{}
			for k, vs := range q {
				next[k] = vs
			}
			next.Set("marker", fmt.Sprint(out[n-1]["id"]))
			body[collection+"_links"] = []any{map[string]any{
				"rel": "next", "href": networkRoot(req) + "/v2.0/" + strings.ReplaceAll(collection, "_", "-") + "?" + next.Encode(),
			}}
		}
	}
	list := []any{}
	for _, it := range out {
		list = append(list, selectFields(req, it))
	}
	body[collection] = list
	return jsonResp(http.StatusOK, body)
}

// selectFields cuts a resource to the fields the query asks for, if any.
func selectFields(req *request, item map[string]any) map[string]any {
	fields := req.query()["fields"]
	if len(fields) == 0 {
		return item
	}
	out := map[string]any{}
	for _, f := range fields {
		for _, name := range strings.Split(f, ",") {
			if v, ok := item[name]; ok {
				out[name] = v
			}
		}
	}
	return out
}

// matches reports whether a resource passes the filters of a query.
func matches(item map[string]any, q url.Values) bool {
	for key, want := range q {
		if slices.Contains(listControls, key) {
			continue
		}
		v, ok := item[key]
		if !ok {
			continue // Neutron ignores filters on attributes a resource lacks
		}
		if !slices.ContainsFunc(want, func(w string) bool { return valueMatches(key, v, w) }) {
			return false
		}
	}
	tags, _ := item["tags"].([]string)
	has := func(csv string, all bool) bool {
		for _, t := range strings.Split(csv, ",") {
			if slices.Contains(tags, t) != all {
				return !all
			}
		}
		return all
	}
	if v := q.Get("tags"); v != "" && !has(v, true) {
		return false
	}
	if v := q.Get("tags-any"); v != "" && !has(v, false) {
		return false
	}
	if v := q.Get("not-tags"); v != "" && has(v, true) {
		return false
	}
	if v := q.Get("not-tags-any"); v != "" && has(v, false) {
		return false
	}
	return true
}

// valueMatches compares one attribute with one filter value.
func valueMatches(key string, v any, want string) bool {
	switch x := v.(type) {
	case nil:
		return want == ""
	case string:
		return x == want
	case bool:
		return strings.EqualFold(strconv.FormatBool(x), want)
	case []string:
		return slices.Contains(x, want)
	case []any:
		if key == "fixed_ips" {
			k, val, _ := strings.Cut(want, "=")
			return slices.ContainsFunc(x, func(e any) bool {
				m, _ := e.(map[string]any)
				return fmt.Sprint(m[k]) == val
			})
		}
		return false
	case *string:
		return (x == nil && want == "") || (x != nil && *x == want)
	case *int:
		return (x == nil && want == "") || (x != nil && strconv.Itoa(*x) == want)
	}
	return fmt.Sprint(v) == want
}

// checkRevision enforces an If-Match: revision_number=N header.
func checkRevision(req *request, rev int) *response {
	h := req.r.Header.Get("If-Match")
	if h == "" {
		return nil
	}
	for _, part := range strings.Split(h, ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(part), "revision_number="); ok && v != strconv.Itoa(rev) {
			return neutronError(http.StatusPreconditionFailed, "RevisionNumberConstraintFailed",
				"Constrained to %s, but current revision is %d", v, rev)
		}
	}
	return nil
}

// --- tags ---

// serveTags serves /{collection}/{id}/tags[/{tag}] on a resource's tags.
func serveTags(req *request, tags *[]string, touch func(), segs []string) *response {
	valid := func(t string) bool { return t != "" && len(t) <= 60 && !strings.Contains(t, ",") }
	if len(segs) == 0 {
		switch req.method() {
		case http.MethodGet:
			return jsonResp(http.StatusOK, map[string]any{"tags": *tags})
		case http.MethodPut:
			var body struct {
				Tags []string `json:"tags"`
			}
			if err := req.decode(&body); err != nil || body.Tags == nil {
				return neutronError(http.StatusBadRequest, "HTTPBadRequest", "Invalid input: a tags list is required")
			}
			var out []string
			for _, t := range body.Tags {
				if !valid(t) {
					return neutronError(http.StatusBadRequest, "InvalidInput", "Invalid input for operation: '%s' is not a valid tag.", t)
				}
				if !slices.Contains(out, t) {
					out = append(out, t)
				}
			}
			if out == nil {
				out = []string{}
			}
			*tags = out
			touch()
			return jsonResp(http.StatusOK, map[string]any{"tags": *tags})
		case http.MethodDelete:
			*tags = []string{}
			touch()
			return noContent()
		}
		return methodNotAllowed("GET", "PUT", "DELETE")
	}
	tag := segs[0]
	switch req.method() {
	case http.MethodGet:
		if slices.Contains(*tags, tag) {
			return noContent()
		}
		return neutronError(http.StatusNotFound, "TagNotFound", "Tag %s could not be found.", tag)
	case http.MethodPut:
		if !valid(tag) {
			return neutronError(http.StatusBadRequest, "InvalidInput", "Invalid input for operation: '%s' is not a valid tag.", tag)
		}
		if !slices.Contains(*tags, tag) {
			*tags = append(*tags, tag)
			touch()
		}
		return &response{status: http.StatusCreated}
	case http.MethodDelete:
		if !slices.Contains(*tags, tag) {
			return neutronError(http.StatusNotFound, "TagNotFound", "Tag %s could not be found.", tag)
		}
		*tags = slices.DeleteFunc(*tags, func(t string) bool { return t == tag })
		touch()
		return noContent()
	}
	return methodNotAllowed("GET", "PUT", "DELETE")
}

// --- ports ---

// portStatus is ACTIVE once the port's server runs, DOWN before and while
// it is shut off.
func (c *Cloud) portStatus(p *port) string {
	for _, s := range c.st.Servers {
		if s.ID == p.DeviceID {
			if st := c.state(s, c.now()).Status; st == "BUILD" || st == "SHUTOFF" || st == "ERROR" {
				return "DOWN"
			}
			return "ACTIVE"
		}
	}
	return "DOWN"
}

func (c *Cloud) portBody(p *port) map[string]any {
	return map[string]any{
		"id": p.ID, "name": p.Name, "description": p.Description, "network_id": p.NetworkID,
		"tenant_id": p.Project, "project_id": p.Project, "mac_address": p.MAC, "admin_state_up": true,
		"status": c.portStatus(p), "device_id": p.DeviceID, "device_owner": p.DeviceOwner,
		"fixed_ips":             []any{map[string]any{"subnet_id": p.SubnetID, "ip_address": p.IP}},
		"allowed_address_pairs": []any{}, "extra_dhcp_opts": []any{}, "security_groups": slices.Clone(p.SecGroups),
		"binding:vnic_type": "normal", "port_security_enabled": true, "qos_policy_id": nil,
		"qos_network_policy_id": nil, "tags": slices.Clone(p.Tags), "dns_name": "",
		"created_at": p.Created.Format(neutronTime), "updated_at": p.Updated.Format(neutronTime),
		"revision_number": p.Revision,
	}
}

func (c *Cloud) servePorts(req *request) *response {
	segs := req.segs[1:]
	if len(segs) == 0 {
		switch req.method() {
		case http.MethodGet:
			var items []map[string]any
			for _, p := range c.st.Ports {
				if p.Project == req.tok.Project.ID && p.Region == req.region {
					items = append(items, c.portBody(p))
				}
			}
			return c.listResources(req, "ports", items)
		case http.MethodPost:
			return policyDenied("create_port:fixed_ips")
		}
		return methodNotAllowed("GET", "POST")
	}
	var p *port
	for _, x := range c.st.Ports {
		if x.ID == segs[0] && x.Project == req.tok.Project.ID && x.Region == req.region {
			p = x
		}
	}
	if p == nil {
		return neutronError(http.StatusNotFound, "PortNotFound", "Port %s could not be found.", segs[0])
	}
	touch := func() {
		p.Updated = c.now()
		p.Revision++
		c.dirty = true
	}
	if len(segs) >= 2 && segs[1] == "tags" {
		return serveTags(req, &p.Tags, touch, segs[2:])
	}
	if len(segs) != 1 {
		return neutronNotFound()
	}
	switch req.method() {
	case http.MethodGet:
		return jsonResp(http.StatusOK, map[string]any{"port": selectFields(req, c.portBody(p))})
	case http.MethodPut:
		if errResp := checkRevision(req, p.Revision); errResp != nil {
			return errResp
		}
		var body struct {
			Port *struct {
				Name           *string   `json:"name"`
				Description    *string   `json:"description"`
				SecurityGroups *[]string `json:"security_groups"`
			} `json:"port"`
		}
		if err := req.decode(&body); err != nil || body.Port == nil {
			return neutronError(http.StatusBadRequest, "HTTPBadRequest", "Resource body required")
		}
		u := body.Port
		if u.SecurityGroups != nil {
			var ids []string
			for _, id := range *u.SecurityGroups {
				if c.findGroupByID(req.tok.Project.ID, req.region, id) == nil {
					return neutronError(http.StatusNotFound, "SecurityGroupNotFound", "Security group %s does not exist", id)
				}
				if !slices.Contains(ids, id) {
					ids = append(ids, id)
				}
			}
			if ids == nil {
				ids = []string{}
			}
			p.SecGroups = ids
		}
		if u.Name != nil {
			p.Name = *u.Name
		}
		if u.Description != nil {
			p.Description = *u.Description
		}
		touch()
		return jsonResp(http.StatusOK, map[string]any{"port": c.portBody(p)})
	case http.MethodDelete:
		return neutronError(http.StatusConflict, "PortInUse", "Unable to complete operation on port %s for network %s. Port already has an attached device %s.", p.ID, p.NetworkID, p.DeviceID)
	}
	return methodNotAllowed("GET", "PUT", "DELETE")
}
