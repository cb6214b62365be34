package openstack

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// serverState is the status of a server at a time, as Nova reports it.
type serverState struct {
	Status  string
	VMState string
	Task    any // string or nil
	Power   int
	Fault   string // the fault message, in ERROR
}

// state computes the status of a server at now: from its machine when
// Config sets Machines, else from the clock.
func (c *Cloud) state(s *server, now time.Time) serverState {
	if c.cfg.Machines != nil && s.Fault == "" {
		return machineState(c.cfg.Machines.Status(s.ID))
	}
	return s.state(now)
}

// state computes the status of a server at now from the clock.
func (s *server) state(now time.Time) serverState {
	switch {
	case now.Before(s.ActiveAt):
		return serverState{"BUILD", "building", "spawning", 0, ""}
	case s.Fault != "":
		return serverState{"ERROR", "error", nil, 0, s.Fault}
	case s.RebootType == "HARD" && now.Before(s.RebootUntil):
		return serverState{"HARD_REBOOT", "active", "reboot_started_hard", 1, ""}
	case s.RebootType != "" && now.Before(s.RebootUntil):
		return serverState{"REBOOT", "active", "reboot_started", 1, ""}
	case s.Stopped:
		return serverState{"SHUTOFF", "stopped", nil, 4, ""}
	}
	return serverState{"ACTIVE", "active", nil, 1, ""}
}

// findServer returns the caller's server of an ID in the region.
func (c *Cloud) findServer(req *request, id string) *server {
	for _, s := range c.st.Servers {
		if s.ID == id && s.Project == req.tok.Project.ID && s.Region == req.region {
			return s
		}
	}
	return nil
}

// serverPorts returns the ports of a server.
func (c *Cloud) serverPorts(s *server) []*port {
	var ps []*port
	for _, p := range c.st.Ports {
		if p.DeviceID == s.ID {
			ps = append(ps, p)
		}
	}
	return ps
}

// serverGroups returns the security groups on a server's ports, in order.
func (c *Cloud) serverGroups(s *server) []*secGroup {
	var gs []*secGroup
	for _, p := range c.serverPorts(s) {
		for _, id := range p.SecGroups {
			if g := c.findGroupByID(s.Project, s.Region, id); g != nil && !slices.Contains(gs, g) {
				gs = append(gs, g)
			}
		}
	}
	return gs
}

// addresses returns the addresses of a server as Nova shows them: the
// Ext-Net address shows once AddressAt has passed.
func (c *Cloud) addresses(s *server, now time.Time) map[string]any {
	out := map[string]any{}
	if now.Before(s.AddressAt) || s.Fault != "" {
		return out
	}
	var ext []any
	for _, p := range c.serverPorts(s) {
		ext = append(ext, map[string]any{
			"version": 4, "addr": p.IP, "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": p.MAC,
		})
	}
	if len(ext) > 0 {
		out["Ext-Net"] = ext
	}
	return out
}

// serverBody is a server as Nova shows it in GET /servers/detail.
func (c *Cloud) serverBody(req *request, s *server) map[string]any {
	now := c.now()
	st := c.state(s, now)
	hostID := sha256.Sum224([]byte(s.Project + "compute-" + strings.ToLower(s.Region) + "-" + s.ID[:2]))
	m := map[string]any{
		"id":        s.ID,
		"name":      s.Name,
		"status":    st.Status,
		"tenant_id": s.Project,
		"user_id":   req.tok.Project.UserID(),
		"metadata":  s.Metadata,
		"hostId":    hex.EncodeToString(hostID[:]),
		"image": map[string]any{"id": s.ImageID, "links": []any{map[string]any{
			"rel": "bookmark", "href": computeRoot(req) + "/" + s.Project + "/images/" + s.ImageID,
		}}},
		"created":                              s.Created.Format(novaTime),
		"updated":                              s.Updated.Format(novaTime),
		"addresses":                            c.addresses(s, now),
		"accessIPv4":                           "",
		"accessIPv6":                           "",
		"links":                                links(req, "servers", s.ID),
		"OS-DCF:diskConfig":                    "MANUAL",
		"OS-EXT-AZ:availability_zone":          "nova",
		"config_drive":                         "",
		"key_name":                             nil,
		"OS-SRV-USG:launched_at":               nil,
		"OS-SRV-USG:terminated_at":             nil,
		"OS-EXT-STS:task_state":                st.Task,
		"OS-EXT-STS:vm_state":                  st.VMState,
		"OS-EXT-STS:power_state":               st.Power,
		"os-extended-volumes:volumes_attached": []any{},
	}
	if s.KeyName != "" {
		m["key_name"] = s.KeyName
	}
	if st.Status == "BUILD" || st.Status == "ACTIVE" {
		m["progress"] = 0
	}
	if st.Status != "BUILD" && st.Fault == "" {
		m["OS-SRV-USG:launched_at"] = s.ActiveAt.Format(novaTimeMicros)
	}
	if st.Status == "BUILD" {
		m["OS-EXT-AZ:availability_zone"] = ""
	}
	var groups []any
	for _, g := range c.serverGroups(s) {
		groups = append(groups, map[string]any{"name": g.Name})
	}
	if len(groups) > 0 {
		m["security_groups"] = groups
	}
	if f, ok := findFlavor(s.Region, s.FlavorID); ok && req.mv.atLeast(47) {
		m["flavor"] = map[string]any{
			"vcpus": f.VCPUs, "ram": f.RAM, "disk": f.Disk, "ephemeral": 0, "swap": 0,
			"original_name": f.Name, "extra_specs": map[string]string{},
		}
	} else {
		m["flavor"] = map[string]any{"id": s.FlavorID, "links": []any{map[string]any{
			"rel": "bookmark", "href": computeRoot(req) + "/" + s.Project + "/flavors/" + s.FlavorID,
		}}}
	}
	if st.Fault != "" && st.Status == "ERROR" {
		m["fault"] = map[string]any{"code": 500, "created": s.ActiveAt.Format(novaTime), "message": st.Fault}
	}
	if req.mv.atLeast(9) {
		m["locked"] = false
	}
	if req.mv.atLeast(19) {
		if s.Description != "" {
			m["description"] = s.Description
		} else {
			m["description"] = nil
		}
	}
	if req.mv.atLeast(26) {
		m["tags"] = []string{}
	}
	if req.mv.atLeast(63) {
		m["trusted_image_certificates"] = nil
	}
	if req.mv.atLeast(73) {
		m["locked_reason"] = nil
	}
	return m
}

func (c *Cloud) serveServers(req *request) *response {
	segs := req.segs[1:]
	if len(segs) == 0 || (len(segs) == 1 && segs[0] == "detail") {
		switch {
		case req.method() == http.MethodGet:
			return c.listServers(req, len(segs) == 1)
		case req.method() == http.MethodPost && len(segs) == 0:
			return c.createServer(req)
		}
		return methodNotAllowed("GET", "POST")
	}
	s := c.findServer(req, segs[0])
	if s == nil {
		return novaError(http.StatusNotFound, "Instance %s could not be found.", segs[0])
	}
	if len(segs) == 1 {
		switch req.method() {
		case http.MethodGet:
			body := c.serverBody(req, s)
			if req.mv.atLeast(71) {
				body["server_groups"] = []string{}
			}
			return jsonResp(http.StatusOK, map[string]any{"server": body})
		case http.MethodPut:
			return c.updateServer(req, s)
		case http.MethodDelete:
			if c.cfg.Machines != nil {
				c.cfg.Machines.Delete(s.ID)
			}
			c.st.Ports = slices.DeleteFunc(c.st.Ports, func(p *port) bool { return p.DeviceID == s.ID })
			c.st.Servers = slices.DeleteFunc(c.st.Servers, func(x *server) bool { return x == s })
			c.dirty = true
			return noContent()
		}
		return methodNotAllowed("GET", "PUT", "DELETE")
	}
	switch segs[1] {
	case "action":
		if req.method() != http.MethodPost {
			return methodNotAllowed("POST")
		}
		return c.serverAction(req, s)
	case "metadata":
		return c.serveMetadata(req, s, segs[2:])
	case "ips":
		if req.method() != http.MethodGet {
			return methodNotAllowed("GET")
		}
		return jsonResp(http.StatusOK, map[string]any{"addresses": c.addresses(s, c.now())})
	case "os-security-groups":
		if req.method() != http.MethodGet {
			return methodNotAllowed("GET")
		}
		out := []any{}
		for _, g := range c.serverGroups(s) {
			out = append(out, c.novaGroupBody(g))
		}
		return jsonResp(http.StatusOK, map[string]any{"security_groups": out})
	case "os-interface":
		if req.method() != http.MethodGet {
			return methodNotAllowed("GET")
		}
		out := []any{}
		for _, p := range c.serverPorts(s) {
			out = append(out, map[string]any{
				"port_id": p.ID, "net_id": p.NetworkID, "mac_addr": p.MAC, "port_state": c.portStatus(p),
				"fixed_ips": []any{map[string]any{"subnet_id": p.SubnetID, "ip_address": p.IP}},
			})
		}
		return jsonResp(http.StatusOK, map[string]any{"interfaceAttachments": out})
	}
	return novaError(http.StatusNotFound, "The resource could not be found.")
}

// novaGroupBody is a security group in Nova's (nova-network era) shape, with
// its ingress rules.
func (c *Cloud) novaGroupBody(g *secGroup) map[string]any {
	rules := []any{}
	for _, r := range c.st.Rules {
		if r.GroupID != g.ID || r.Direction != "ingress" {
			continue
		}
		ipRange, group := map[string]any{}, map[string]any{}
		if r.RemoteIPPrefix != nil {
			ipRange["cidr"] = *r.RemoteIPPrefix
		}
		if r.RemoteGroupID != nil {
			if rg := c.findGroupByID(g.Project, g.Region, *r.RemoteGroupID); rg != nil {
				group = map[string]any{"name": rg.Name, "tenant_id": rg.Project}
			}
		}
		rules = append(rules, map[string]any{
			"id": r.ID, "parent_group_id": g.ID, "ip_protocol": r.Protocol,
			"from_port": r.PortMin, "to_port": r.PortMax, "ip_range": ipRange, "group": group,
		})
	}
	return map[string]any{"id": g.ID, "name": g.Name, "description": g.Description, "tenant_id": g.Project, "rules": rules}
}

// listServers serves GET /servers and /servers/detail, with Nova's filters:
// name (a regular expression), status, image, flavor, ip (a regular
// expression), and, as an extension, metadata (a JSON object every pair of
// which the server must have).
func (c *Cloud) listServers(req *request, detail bool) *response {
	q := req.query()
	var nameRE, ipRE *regexp.Regexp
	for key, dst := range map[string]**regexp.Regexp{"name": &nameRE, "ip": &ipRE} {
		if v := q.Get(key); v != "" {
			re, err := regexp.Compile(v)
			if err != nil {
				re = regexp.MustCompile(regexp.QuoteMeta(v))
			}
			*dst = re
		}
	}
	var wantMeta map[string]string
	if v := q.Get("metadata"); v != "" {
		if err := json.Unmarshal([]byte(v), &wantMeta); err != nil {
			return novaError(http.StatusBadRequest, "Invalid input for query parameters metadata. Value: %s. It must be a JSON object of strings.", v)
		}
	}
	now := c.now()
	var list []*server
	for _, s := range c.st.Servers {
		if s.Project != req.tok.Project.ID || s.Region != req.region {
			continue
		}
		if nameRE != nil && !nameRE.MatchString(s.Name) {
			continue
		}
		if st := q.Get("status"); st != "" && !strings.EqualFold(st, c.state(s, now).Status) {
			continue
		}
		if im := q.Get("image"); im != "" && !strings.HasSuffix(im, s.ImageID) {
			continue
		}
		if fl := q.Get("flavor"); fl != "" && !strings.HasSuffix(fl, s.FlavorID) {
			continue
		}
		if ipRE != nil && !slices.ContainsFunc(c.serverPorts(s), func(p *port) bool { return ipRE.MatchString(p.IP) }) {
			continue
		}
		if !hasAll(s.Metadata, wantMeta) {
			continue
		}
		list = append(list, s)
	}
	sort.SliceStable(list, func(i, j int) bool {
		if !list[i].Created.Equal(list[j].Created) {
			return list[i].Created.After(list[j].Created)
		}
		return list[i].ID > list[j].ID
	})
	collection := "servers"
	if detail {
		collection = "servers/detail"
	}
	page, next, errResp := paginate(req, list, func(s *server) string { return s.ID }, collection)
	if errResp != nil {
		return errResp
	}
	out := []any{}
	for _, s := range page {
		if detail {
			out = append(out, c.serverBody(req, s))
		} else {
			out = append(out, map[string]any{"id": s.ID, "name": s.Name, "links": links(req, "servers", s.ID)})
		}
	}
	body := map[string]any{"servers": out}
	if next != nil {
		body["servers_links"] = next
	}
	return jsonResp(http.StatusOK, body)
}

// hasAll reports whether m holds every pair of want.
func hasAll(m, want map[string]string) bool {
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// lastSegment returns what follows the last slash of a reference that may
// be an ID or a URL.
func lastSegment(ref string) string {
	if i := strings.LastIndex(ref, "/"); i >= 0 {
		return ref[i+1:]
	}
	return ref
}

// createServerBody is the body of POST /servers.
type createServerBody struct {
	Server *struct {
		Name           string            `json:"name"`
		ImageRef       string            `json:"imageRef"`
		FlavorRef      string            `json:"flavorRef"`
		KeyName        string            `json:"key_name"`
		Metadata       map[string]string `json:"metadata"`
		UserData       *string           `json:"user_data"`
		Description    *string           `json:"description"`
		SecurityGroups []struct {
			Name string `json:"name"`
		} `json:"security_groups"`
		Networks json.RawMessage `json:"networks"`
		MinCount *int            `json:"min_count"`
		MaxCount *int            `json:"max_count"`
	} `json:"server"`
}

// validMetadata checks server metadata as Nova does.
func validMetadata(md map[string]string) *response {
	if len(md) > 128 {
		return novaError(http.StatusForbidden, "Quota exceeded for metadata_items: Requested %d, but already used 0 of 128 metadata_items", len(md))
	}
	for k, v := range md {
		if k == "" || len(k) > 255 || len(v) > 255 {
			return novaError(http.StatusBadRequest, "Invalid input for field/attribute metadata. Value: %s. metadata keys must be 1 to 255 characters and values at most 255", k)
		}
	}
	return nil
}

// createServer serves POST /servers: one server with one Ext-Net port per
// requested network, carrying the requested security groups (default when
// none are named).
func (c *Cloud) createServer(req *request) *response {
	var body createServerBody
	if err := req.decode(&body); err != nil {
		return novaError(http.StatusBadRequest, "%s", err.Error())
	}
	sv := body.Server
	if sv == nil {
		return novaError(http.StatusBadRequest, "Invalid input for field/attribute server. Value: None. 'server' is a required property")
	}
	if strings.TrimSpace(sv.Name) == "" || len(sv.Name) > 255 {
		return novaError(http.StatusBadRequest, "Invalid input for field/attribute name. Value: %s. The name must be 1 to 255 characters and not only spaces", sv.Name)
	}
	if (sv.MinCount != nil && *sv.MinCount != 1) || (sv.MaxCount != nil && *sv.MaxCount != 1) {
		return novaError(http.StatusBadRequest, "This cloud creates one server per request: min_count and max_count must be 1")
	}
	if sv.Description != nil && !req.mv.atLeast(19) {
		return novaError(http.StatusBadRequest, "Invalid input for field/attribute server. Additional properties are not allowed ('description' was unexpected)")
	}
	if sv.FlavorRef == "" {
		return novaError(http.StatusBadRequest, "Invalid input for field/attribute flavorRef. Value: None. 'flavorRef' is a required property")
	}
	flavor := lastSegment(sv.FlavorRef)
	if _, ok := findFlavor(req.region, flavor); !ok {
		return novaError(http.StatusBadRequest, "Flavor %s could not be found.", flavor)
	}
	image := lastSegment(sv.ImageRef)
	if _, ok := findImage(req.region, image); !ok {
		return novaError(http.StatusBadRequest, "Can not find requested image")
	}
	if sv.KeyName != "" && c.findKeypair(req, sv.KeyName) == nil {
		return novaError(http.StatusBadRequest, "Invalid key_name provided.")
	}
	if errResp := validMetadata(sv.Metadata); errResp != nil {
		return errResp
	}
	if sv.UserData != nil {
		if _, err := base64.StdEncoding.DecodeString(*sv.UserData); err != nil {
			return novaError(http.StatusBadRequest, "Invalid input for field/attribute user_data. Value: %.20s. '%.20s' is not a 'base64'", *sv.UserData, *sv.UserData)
		}
		if len(*sv.UserData) > 65535 {
			return novaError(http.StatusBadRequest, "User data too large. User data must be no larger than 65535 bytes once base64 encoded.")
		}
	}
	nets, errResp := c.requestedNetworks(req, sv.Networks)
	if errResp != nil {
		return errResp
	}
	c.ensureDefaultGroup(req.tok.Project.ID, req.region)
	var groupIDs, groupNames []string
	for _, sg := range sv.SecurityGroups {
		g, errResp := c.resolveGroup(req, sg.Name)
		if errResp != nil {
			return errResp
		}
		if !slices.Contains(groupIDs, g.ID) {
			groupIDs = append(groupIDs, g.ID)
			groupNames = append(groupNames, sg.Name)
		}
	}
	if len(groupIDs) == 0 {
		g := c.findGroupByName(req.tok.Project.ID, req.region, "default")
		groupIDs, groupNames = []string{g.ID}, []string{"default"}
	}

	hostKey, err := newHostKey(sv.Name)
	if err != nil {
		return novaError(http.StatusInternalServerError, "generate host key: %v", err)
	}
	now := c.now()
	s := &server{
		scope:     scope{Project: req.tok.Project.ID, Region: req.region},
		ID:        newUUID(),
		Name:      sv.Name,
		FlavorID:  flavor,
		ImageID:   image,
		KeyName:   sv.KeyName,
		Metadata:  sv.Metadata,
		Created:   now,
		Updated:   now,
		ActiveAt:  now.Add(c.cfg.BuildDelay),
		AddressAt: now.Add(c.cfg.BuildDelay + c.cfg.AddressDelay),
		Boots:     1,
		HostKey:   hostKey,
		AdminPass: newSecret(12),
	}
	if c.cfg.Machines != nil {
		// The machine says when the server is ACTIVE; its address is bound
		// from the start.
		s.ActiveAt, s.AddressAt = now, now
	}
	if s.Metadata == nil {
		s.Metadata = map[string]string{}
	}
	if k := c.findKeypair(req, sv.KeyName); k != nil {
		s.AuthorizedKey = k.PublicKey
	}
	if sv.UserData != nil {
		s.UserData = *sv.UserData
	}
	if sv.Description != nil {
		s.Description = *sv.Description
	}
	if i := slices.IndexFunc(c.st.Injections, func(in *injection) bool {
		return in.Project == s.Project && (in.ServerName == "" || in.ServerName == s.Name)
	}); i >= 0 {
		c.st.Injections = slices.Delete(c.st.Injections, i, i+1)
		s.Fault = "No valid host was found. There are not enough hosts available."
	}
	if s.Fault == "" {
		for range nets {
			ip, ok := c.allocIP(req.region)
			if !ok {
				s.Fault = "Build of instance " + s.ID + " aborted: No more IP addresses available on network Ext-Net."
				c.st.Ports = slices.DeleteFunc(c.st.Ports, func(p *port) bool { return p.DeviceID == s.ID })
				break
			}
			n := c.extNet(req.region)
			c.st.Ports = append(c.st.Ports, &port{
				scope:       s.scope,
				ID:          newUUID(),
				NetworkID:   n.NetworkID,
				SubnetID:    n.SubnetID,
				IP:          ip,
				MAC:         newMAC(),
				DeviceID:    s.ID,
				DeviceOwner: "compute:nova",
				SecGroups:   slices.Clone(groupIDs),
				Tags:        []string{},
				Created:     now,
				Updated:     now,
				Revision:    1,
			})
		}
	}
	c.st.Servers = append(c.st.Servers, s)
	c.dirty = true
	if c.cfg.Machines != nil && s.Fault == "" {
		c.cfg.Machines.Create(c.machineSpec(s))
	}

	var sgs []any
	for _, n := range groupNames {
		sgs = append(sgs, map[string]any{"name": n})
	}
	resp := jsonResp(http.StatusAccepted, map[string]any{"server": map[string]any{
		"id": s.ID, "links": links(req, "servers", s.ID), "OS-DCF:diskConfig": "MANUAL",
		"security_groups": sgs, "adminPass": s.AdminPass,
	}})
	resp.header = http.Header{"Location": {computeURL(req) + "/servers/" + s.ID}}
	return resp
}

// requestedNetworks resolves the networks of a create request to the
// Ext-Net of the region, once per requested network.
func (c *Cloud) requestedNetworks(req *request, raw json.RawMessage) ([]string, *response) {
	ext := c.extNet(req.region).NetworkID
	if len(raw) == 0 || string(raw) == "null" {
		if req.mv.atLeast(37) {
			return nil, novaError(http.StatusBadRequest, "Invalid input for field/attribute server. Value: networks. 'networks' is a required property")
		}
		return []string{ext}, nil
	}
	var word string
	if json.Unmarshal(raw, &word) == nil {
		switch {
		case !req.mv.atLeast(37):
			return nil, novaError(http.StatusBadRequest, "Invalid input for field/attribute networks. Value: %s. '%s' is not of type 'array'", word, word)
		case word == "auto":
			return []string{ext}, nil
		case word == "none":
			return nil, nil
		}
		return nil, novaError(http.StatusBadRequest, "Invalid input for field/attribute networks. Value: %s. '%s' is not one of ['none', 'auto']", word, word)
	}
	var list []struct {
		UUID string `json:"uuid"`
		Port string `json:"port"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, novaError(http.StatusBadRequest, "Invalid input for field/attribute networks. Value: %s.", string(raw))
	}
	var nets []string
	for _, n := range list {
		switch {
		case n.Port != "":
			return nil, novaError(http.StatusBadRequest, "Port %s could not be found.", n.Port)
		case n.UUID != ext:
			return nil, novaError(http.StatusBadRequest, "Network %s could not be found.", n.UUID)
		}
		nets = append(nets, ext)
	}
	return nets, nil
}

// newHostKey generates an ed25519 SSH host key and returns it as an OpenSSH
// private key file.
func newHostKey(hostname string) (string, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	block, err := ssh.MarshalPrivateKey(priv, "root@"+hostnameOf(hostname))
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(block)), nil
}

// updateServer serves PUT /servers/{id}: name and description.
func (c *Cloud) updateServer(req *request, s *server) *response {
	var body struct {
		Server *struct {
			Name        *string `json:"name"`
			Description *string `json:"description"`
		} `json:"server"`
	}
	if err := req.decode(&body); err != nil {
		return novaError(http.StatusBadRequest, "%s", err.Error())
	}
	if body.Server == nil {
		return novaError(http.StatusBadRequest, "Invalid input for field/attribute server. Value: None. 'server' is a required property")
	}
	if n := body.Server.Name; n != nil {
		if strings.TrimSpace(*n) == "" || len(*n) > 255 {
			return novaError(http.StatusBadRequest, "Invalid input for field/attribute name. Value: %s.", *n)
		}
		s.Name = *n
	}
	if d := body.Server.Description; d != nil {
		if !req.mv.atLeast(19) {
			return novaError(http.StatusBadRequest, "Invalid input for field/attribute server. Additional properties are not allowed ('description' was unexpected)")
		}
		s.Description = *d
	}
	s.Updated = c.now()
	c.dirty = true
	return jsonResp(http.StatusOK, map[string]any{"server": c.serverBody(req, s)})
}

// serveMetadata serves /servers/{id}/metadata[/{key}].
func (c *Cloud) serveMetadata(req *request, s *server, segs []string) *response {
	set := func(md map[string]string) *response {
		if errResp := validMetadata(md); errResp != nil {
			return errResp
		}
		s.Metadata = md
		s.Updated = c.now()
		c.dirty = true
		return nil
	}
	if len(segs) == 0 {
		switch req.method() {
		case http.MethodGet:
			return jsonResp(http.StatusOK, map[string]any{"metadata": s.Metadata})
		case http.MethodPut, http.MethodPost:
			var body struct {
				Metadata map[string]string `json:"metadata"`
			}
			if err := req.decode(&body); err != nil || body.Metadata == nil {
				return novaError(http.StatusBadRequest, "Malformed request body: a metadata object is required")
			}
			md := body.Metadata
			if req.method() == http.MethodPost {
				md = mergeMaps(s.Metadata, body.Metadata)
			}
			if errResp := set(md); errResp != nil {
				return errResp
			}
			return jsonResp(http.StatusOK, map[string]any{"metadata": s.Metadata})
		}
		return methodNotAllowed("GET", "PUT", "POST")
	}
	key := segs[0]
	switch req.method() {
	case http.MethodGet:
		v, ok := s.Metadata[key]
		if !ok {
			return novaError(http.StatusNotFound, "Metadata item was not found")
		}
		return jsonResp(http.StatusOK, map[string]any{"meta": map[string]string{key: v}})
	case http.MethodPut:
		var body struct {
			Meta map[string]string `json:"meta"`
		}
		if err := req.decode(&body); err != nil || len(body.Meta) != 1 {
			return novaError(http.StatusBadRequest, "Request body and URI mismatch")
		}
		if _, ok := body.Meta[key]; !ok {
			return novaError(http.StatusBadRequest, "Request body and URI mismatch")
		}
		if errResp := set(mergeMaps(s.Metadata, body.Meta)); errResp != nil {
			return errResp
		}
		return jsonResp(http.StatusOK, map[string]any{"meta": body.Meta})
	case http.MethodDelete:
		if _, ok := s.Metadata[key]; !ok {
			return novaError(http.StatusNotFound, "Metadata item was not found")
		}
		md := mergeMaps(s.Metadata, nil)
		delete(md, key)
		_ = set(md)
		return noContent()
	}
	return methodNotAllowed("GET", "PUT", "DELETE")
}

// mergeMaps returns a new map holding a, then b.
func mergeMaps(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// serverAction serves POST /servers/{id}/action.
func (c *Cloud) serverAction(req *request, s *server) *response {
	var body map[string]json.RawMessage
	if err := req.decode(&body); err != nil {
		return novaError(http.StatusBadRequest, "%s", err.Error())
	}
	if len(body) != 1 {
		return novaError(http.StatusBadRequest, "Malformed request body: one action is expected")
	}
	action := sortedKeys(body)[0]
	arg := body[action]
	now := c.now()
	st := c.state(s, now)
	notIn := func(op string) *response {
		return novaError(http.StatusConflict, "Cannot '%s' instance %s while it is in vm_state %s", op, s.ID, st.VMState)
	}
	switch action {
	case "reboot":
		var a struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal(arg, &a)
		typ := strings.ToUpper(a.Type)
		if typ != "SOFT" && typ != "HARD" {
			return novaError(http.StatusBadRequest, "Invalid input for field/attribute type. Value: %s. '%s' is not one of ['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']", a.Type, a.Type)
		}
		switch {
		case st.Status == "BUILD" || st.Status == "ERROR":
			return notIn("reboot")
		case st.Status == "REBOOT" && typ == "SOFT", st.Status == "HARD_REBOOT", st.Task == "powering-off", st.Task == "powering-on":
			return novaError(http.StatusConflict, "Cannot 'reboot' instance %s while it is in task_state %v", s.ID, st.Task)
		case st.Status == "SHUTOFF" && typ == "SOFT":
			return notIn("reboot")
		}
		if c.cfg.Machines != nil {
			c.cfg.Machines.Reboot(c.machineSpec(s), typ == "HARD")
		}
		s.RebootType = typ
		s.RebootUntil = now.Add(c.cfg.RebootDelay)
		s.Stopped = false
		s.Boots++
		s.BootedAt = now
	case "os-stop":
		if st.Status != "ACTIVE" {
			return notIn("stop")
		}
		if st.Task != nil {
			return novaError(http.StatusConflict, "Cannot 'stop' instance %s while it is in task_state %v", s.ID, st.Task)
		}
		if c.cfg.Machines != nil {
			c.cfg.Machines.Stop(s.ID)
		}
		s.Stopped = true
	case "os-start":
		if st.Status != "SHUTOFF" {
			return notIn("start")
		}
		if st.Task != nil {
			return novaError(http.StatusConflict, "Cannot 'start' instance %s while it is in task_state %v", s.ID, st.Task)
		}
		if c.cfg.Machines != nil {
			c.cfg.Machines.Start(c.machineSpec(s))
		}
		s.Stopped = false
		s.Boots++
		s.BootedAt = now
	case "os-getConsoleOutput":
		var a struct {
			Length any `json:"length"`
		}
		_ = json.Unmarshal(arg, &a)
		n := -1
		switch v := a.Length.(type) {
		case float64:
			n = int(v)
		case string:
			if i, err := strconv.Atoi(v); err == nil {
				n = i
			} else {
				return novaError(http.StatusBadRequest, "Invalid input for field/attribute length. Value: %s.", v)
			}
		}
		if st.Status == "BUILD" || st.Status == "ERROR" {
			return novaError(http.StatusConflict, "Instance %s is not ready", s.ID)
		}
		var out string
		if c.cfg.Machines != nil && s.Fault == "" {
			log, err := c.cfg.Machines.ConsoleOutput(s.ID)
			if err != nil {
				return novaError(http.StatusConflict, "The console of instance %s is not available: %v", s.ID, err)
			}
			out = log
		} else {
			out = c.consoleLog(s, now)
		}
		if n >= 0 && out != "" {
			lines := strings.SplitAfter(out, "\n")
			if lines[len(lines)-1] == "" {
				lines = lines[:len(lines)-1]
			}
			if n < len(lines) {
				lines = lines[len(lines)-n:]
			}
			out = strings.Join(lines, "")
		}
		return jsonResp(http.StatusOK, map[string]any{"output": out})
	case "addSecurityGroup", "removeSecurityGroup":
		var a struct {
			Name string `json:"name"`
		}
		_ = json.Unmarshal(arg, &a)
		g, errResp := c.resolveGroup(req, a.Name)
		if errResp != nil {
			return novaError(http.StatusNotFound, "Security group %s not found.", a.Name)
		}
		ports := c.serverPorts(s)
		if len(ports) == 0 {
			return novaError(http.StatusBadRequest, "Server %s has no port to change the security groups of", s.ID)
		}
		for _, p := range ports {
			has := slices.Contains(p.SecGroups, g.ID)
			switch {
			case action == "addSecurityGroup" && has:
				return novaError(http.StatusBadRequest, "Security group %s is already associated with the instance %s", a.Name, s.ID)
			case action == "removeSecurityGroup" && !has:
				return novaError(http.StatusBadRequest, "Security group %s not associated with the instance %s", a.Name, s.ID)
			}
		}
		for _, p := range ports {
			if action == "addSecurityGroup" {
				p.SecGroups = append(p.SecGroups, g.ID)
			} else {
				p.SecGroups = slices.DeleteFunc(p.SecGroups, func(id string) bool { return id == g.ID })
			}
			p.Updated = now
			p.Revision++
		}
	default:
		return novaError(http.StatusBadRequest, "There is no such action: %s", action)
	}
	s.Updated = now
	c.dirty = true
	return &response{status: http.StatusAccepted}
}
