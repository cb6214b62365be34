package openstack

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Nova timestamp layouts.
const (
	novaTime       = "2006-01-02T15:04:05Z"
	novaTimeMicros = "2006-01-02T15:04:05.000000"
)

// Microversions of the compute API: from 2.1 to maxMinor (Nova Train's
// maximum, 2.79).
const maxMinor = 79

// microversion is a Nova API microversion 2.minor.
type microversion struct{ minor int }

func (m microversion) String() string { return fmt.Sprintf("2.%d", m.minor) }

// atLeast reports whether m is 2.minor or later.
func (m microversion) atLeast(minor int) bool { return m.minor >= minor }

// parseMicroversion reads the requested compute microversion from the
// OpenStack-API-Version (or legacy X-OpenStack-Nova-API-Version) header;
// 2.1 when none is asked. On error it returns the status (400 for a
// malformed version, 406 for one outside the supported range) and Nova's
// message.
func parseMicroversion(h http.Header) (microversion, int, string) {
	v := ""
	for _, hv := range h.Values("OpenStack-API-Version") {
		for _, part := range strings.Split(hv, ",") {
			f := strings.Fields(part)
			if len(f) == 2 && strings.EqualFold(f[0], "compute") {
				v = f[1]
			}
		}
	}
	if v == "" {
		v = strings.TrimSpace(h.Get("X-OpenStack-Nova-API-Version"))
	}
	switch {
	case v == "":
		return microversion{1}, 0, ""
	case strings.EqualFold(v, "latest"):
		return microversion{maxMinor}, 0, ""
	}
	major, minor, ok := strings.Cut(v, ".")
	mi, err := strconv.Atoi(minor)
	if !ok || err != nil || mi < 0 || strings.HasPrefix(minor, "+") {
		return microversion{}, http.StatusBadRequest, fmt.Sprintf("Invalid format of the API version: %s. The format must be MajorNum.MinorNum", v)
	}
	if major != "2" || mi < 1 || mi > maxMinor {
		return microversion{}, http.StatusNotAcceptable, fmt.Sprintf("Version %s is not supported by the API. Minimum is 2.1 and maximum is 2.%d.", v, maxMinor)
	}
	return microversion{mi}, 0, ""
}

// novaFaultNames are the keys of Nova's error documents by status.
var novaFaultNames = map[int]string{
	400: "badRequest", 403: "forbidden", 404: "itemNotFound", 405: "badMethod",
	409: "conflictingRequest", 413: "overLimit", 415: "badMediaType", 429: "overLimit",
	501: "notImplemented", 503: "serviceUnavailable",
}

// novaError answers an error in Nova's shape.
func novaError(status int, format string, args ...any) *response {
	name, ok := novaFaultNames[status]
	if !ok {
		name = "computeFault"
	}
	return jsonResp(status, map[string]any{name: map[string]any{"code": status, "message": fmt.Sprintf(format, args...)}})
}

// computeRoot is the URL of the unversioned compute API of a region.
func computeRoot(req *request) string { return req.base + "/compute/" + req.region }

// computeVersion is the version document of Nova v2.1.
func computeVersion(req *request) map[string]any {
	return map[string]any{
		"id":          "v2.1",
		"status":      "CURRENT",
		"version":     microversion{maxMinor}.String(),
		"min_version": "2.1",
		"updated":     "2013-07-23T11:33:21Z",
		"links": []any{
			map[string]any{"rel": "self", "href": computeRoot(req) + "/v2.1/"},
			map[string]any{"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"},
		},
		"media-types": []any{map[string]any{
			"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1",
		}},
	}
}

// serveCompute serves Nova: /compute/{region}/...
func (c *Cloud) serveCompute(req *request) *response {
	segs := req.segs
	if len(segs) == 0 {
		if req.method() != http.MethodGet {
			return methodNotAllowed("GET")
		}
		return jsonResp(http.StatusOK, map[string]any{"versions": []any{computeVersion(req)}})
	}
	if segs[0] != "v2.1" {
		return novaError(http.StatusNotFound, "The resource could not be found.")
	}
	if len(segs) == 1 {
		if req.method() != http.MethodGet {
			return methodNotAllowed("GET")
		}
		return jsonResp(http.StatusOK, map[string]any{"version": computeVersion(req)})
	}
	mv, status, msg := parseMicroversion(req.r.Header)
	if status != 0 {
		return novaError(status, "%s", msg)
	}
	req.mv = mv
	resp := c.serveComputeV21(req)
	if resp.header == nil {
		resp.header = http.Header{}
	}
	resp.header.Set("OpenStack-API-Version", "compute "+mv.String())
	resp.header.Set("X-OpenStack-Nova-API-Version", mv.String())
	resp.header.Set("Vary", "OpenStack-API-Version, X-OpenStack-Nova-API-Version")
	return resp
}

// projectIDPattern matches a project ID in a compute URL.
var projectIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// serveComputeV21 serves the authenticated part of Nova v2.1.
func (c *Cloud) serveComputeV21(req *request) *response {
	if !c.authenticate(req) {
		return unauthorized(req)
	}
	segs := req.segs[1:]
	if len(segs) > 0 && (projectIDPattern.MatchString(segs[0]) || segs[0] == req.tok.Project.ID) {
		if segs[0] != req.tok.Project.ID {
			return novaError(http.StatusBadRequest, "Malformed request URL: URL's project_id '%s' doesn't match Context's project_id '%s'", segs[0], req.tok.Project.ID)
		}
		segs = segs[1:]
	}
	if len(segs) == 0 {
		return novaError(http.StatusNotFound, "The resource could not be found.")
	}
	req.segs = segs
	switch segs[0] {
	case "flavors":
		return c.serveFlavors(req)
	case "os-keypairs":
		return c.serveKeypairs(req)
	case "servers":
		return c.serveServers(req)
	case "limits":
		return c.serveLimits(req)
	case "os-availability-zone":
		return serveAvailabilityZones(req)
	case "os-security-groups":
		return c.serveNovaGroups(req)
	}
	return novaError(http.StatusNotFound, "The resource could not be found.")
}

// computeURL is the versioned compute URL of the caller's project.
func computeURL(req *request) string {
	return computeRoot(req) + "/v2.1/" + req.tok.Project.ID
}

// links are the self and bookmark links of a compute resource.
func links(req *request, collection, id string) []any {
	return []any{
		map[string]any{"rel": "self", "href": computeURL(req) + "/" + collection + "/" + id},
		map[string]any{"rel": "bookmark", "href": computeRoot(req) + "/" + req.tok.Project.ID + "/" + collection + "/" + id},
	}
}

// paginate applies Nova's limit and marker to items (sorted already) whose
// IDs are given by key; it returns the page and the links to the next one.
func paginate[T any](req *request, items []T, key func(T) string, collection string) ([]T, []any, *response) {
	q := req.query()
	if m := q.Get("marker"); m != "" {
		i := slices.IndexFunc(items, func(t T) bool { return key(t) == m })
		if i < 0 {
			return nil, nil, novaError(http.StatusBadRequest, "marker [%s] not found", m)
		}
		items = items[i+1:]
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			return nil, nil, novaError(http.StatusBadRequest, "Invalid input for query parameters limit. Value: %s.", l)
		}
		if n < len(items) {
			items = items[:n]
			next := url.Values{}
			for k, vs := range q {
				next[k] = vs
			}
			next.Set("marker", key(items[len(items)-1]))
			href := computeURL(req) + "/" + collection + "?" + next.Encode()
			return items, []any{map[string]any{"rel": "next", "href": href}}, nil
		}
	}
	return items, nil, nil
}

// --- flavors ---

// flavorBody is a flavor as Nova shows it.
func flavorBody(req *request, f flavorSpec, detail bool) map[string]any {
	id := flavorID(req.region, f.Name)
	m := map[string]any{"id": id, "name": f.Name, "links": links(req, "flavors", id)}
	if req.mv.atLeast(55) {
		m["description"] = nil
	}
	if !detail {
		return m
	}
	m["ram"] = f.RAM
	m["vcpus"] = f.VCPUs
	m["disk"] = f.Disk
	m["swap"] = ""
	m["OS-FLV-EXT-DATA:ephemeral"] = 0
	m["OS-FLV-DISABLED:disabled"] = false
	m["os-flavor-access:is_public"] = true
	m["rxtx_factor"] = 1.0
	if req.mv.atLeast(61) {
		m["extra_specs"] = map[string]string{}
	}
	return m
}

func (c *Cloud) serveFlavors(req *request) *response {
	segs := req.segs[1:]
	if req.method() != http.MethodGet {
		return novaError(http.StatusForbidden, "Policy doesn't allow os_compute_api:os-flavor-manage to be performed.")
	}
	if len(segs) == 0 || (len(segs) == 1 && segs[0] == "detail") {
		detail := len(segs) == 1
		flavors := slices.Clone(flavorTable)
		q := req.query()
		minRAM, _ := strconv.Atoi(q.Get("minRam"))
		minDisk, _ := strconv.Atoi(q.Get("minDisk"))
		flavors = slices.DeleteFunc(flavors, func(f flavorSpec) bool { return f.RAM < minRAM || f.Disk < minDisk })
		sort.Slice(flavors, func(i, j int) bool {
			return flavorID(req.region, flavors[i].Name) < flavorID(req.region, flavors[j].Name)
		})
		page, next, errResp := paginate(req, flavors, func(f flavorSpec) string { return flavorID(req.region, f.Name) }, "flavors")
		if errResp != nil {
			return errResp
		}
		out := []any{}
		for _, f := range page {
			out = append(out, flavorBody(req, f, detail))
		}
		body := map[string]any{"flavors": out}
		if next != nil {
			body["flavors_links"] = next
		}
		return jsonResp(http.StatusOK, body)
	}
	f, ok := findFlavor(req.region, segs[0])
	if !ok {
		return novaError(http.StatusNotFound, "Flavor %s could not be found.", segs[0])
	}
	switch {
	case len(segs) == 1:
		return jsonResp(http.StatusOK, map[string]any{"flavor": flavorBody(req, f, true)})
	case len(segs) == 2 && segs[1] == "os-extra_specs":
		return jsonResp(http.StatusOK, map[string]any{"extra_specs": map[string]string{}})
	}
	return novaError(http.StatusNotFound, "The resource could not be found.")
}

// serveLimits serves GET /limits with OVH-like quotas.
func (c *Cloud) serveLimits(req *request) *response {
	used := 0
	for _, s := range c.st.Servers {
		if s.Project == req.tok.Project.ID && s.Region == req.region {
			used++
		}
	}
	return jsonResp(http.StatusOK, map[string]any{"limits": map[string]any{
		"rate": []any{},
		"absolute": map[string]any{
			"maxServerMeta": 128, "maxPersonality": 5, "maxPersonalitySize": 10240,
			"maxTotalKeypairs": 100, "maxServerGroups": 10, "maxServerGroupMembers": 10,
			"maxTotalCores": 200, "maxTotalInstances": 50, "maxTotalRAMSize": 512000,
			"totalCoresUsed": 0, "totalInstancesUsed": used, "totalRAMUsed": 0, "totalServerGroupsUsed": 0,
		},
	}})
}

// serveAvailabilityZones serves GET /os-availability-zone: one zone, nova,
// as in an OVH region; the detailed list is for admins.
func serveAvailabilityZones(req *request) *response {
	if req.method() != http.MethodGet {
		return methodNotAllowed("GET")
	}
	switch {
	case len(req.segs) == 1:
		return jsonResp(http.StatusOK, map[string]any{"availabilityZoneInfo": []any{map[string]any{
			"zoneName": "nova", "zoneState": map[string]any{"available": true}, "hosts": nil,
		}}})
	case len(req.segs) == 2 && req.segs[1] == "detail":
		return novaError(http.StatusForbidden, "Policy doesn't allow os_compute_api:os-availability-zone:detail to be performed.")
	}
	return novaError(http.StatusNotFound, "The resource could not be found.")
}

// serveNovaGroups serves the read side of Nova's security group proxy
// (GET /os-security-groups[/{id}]), gone from 2.36 as in Nova.
func (c *Cloud) serveNovaGroups(req *request) *response {
	if req.mv.atLeast(36) {
		return novaError(http.StatusNotFound, "The resource could not be found.")
	}
	if req.method() != http.MethodGet {
		return novaError(http.StatusBadRequest, "This cloud manages security groups through the network API only")
	}
	c.ensureDefaultGroup(req.tok.Project.ID, req.region)
	if len(req.segs) == 1 {
		out := []any{}
		for _, g := range c.st.SecGroups {
			if g.Project == req.tok.Project.ID && g.Region == req.region {
				out = append(out, c.novaGroupBody(g))
			}
		}
		return jsonResp(http.StatusOK, map[string]any{"security_groups": out})
	}
	g := c.findGroupByID(req.tok.Project.ID, req.region, req.segs[1])
	if g == nil || len(req.segs) != 2 {
		return novaError(http.StatusNotFound, "Security group %s not found.", req.segs[1])
	}
	return jsonResp(http.StatusOK, map[string]any{"security_group": c.novaGroupBody(g)})
}
