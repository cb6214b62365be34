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

// glanceTime is the timestamp layout of Glance.
const glanceTime = "2006-01-02T15:04:05Z"

// glanceError answers an error the way Glance does: a small HTML page.
func glanceError(status int, msg string) *response {
	title := fmt.Sprintf("%d %s", status, http.StatusText(status))
	page := fmt.Sprintf("<html>\n <head>\n  <title>%s</title>\n </head>\n <body>\n  <h1>%s</h1>\n  %s<br /><br />\n\n\n\n </body>\n</html>", title, title, msg)
	return &response{status: status, body: []byte(page), ctype: "text/html; charset=UTF-8"}
}

// imageRoot is the URL of the Glance API of a region.
func imageRoot(req *request) string { return req.base + "/image/" + req.region }

// imageVersions is Glance's version list.
func imageVersions(req *request) map[string]any {
	var vs []any
	for minor := 9; minor >= 0; minor-- {
		status := "SUPPORTED"
		if minor == 9 {
			status = "CURRENT"
		}
		vs = append(vs, map[string]any{
			"id": fmt.Sprintf("v2.%d", minor), "status": status,
			"links": []any{map[string]any{"rel": "self", "href": imageRoot(req) + "/v2/"}},
		})
	}
	return map[string]any{"versions": vs}
}

// imageBody is an image as Glance shows it.
func imageBody(region string, im imageSpec) map[string]any {
	id := imageID(region, im.Name)
	md5Hex, sha := imageDigests(region, im.Name)
	return map[string]any{
		"id": id, "name": im.Name, "status": "active", "visibility": "public", "protected": false,
		"os_hidden": false, "container_format": "bare", "disk_format": "qcow2", "size": im.Size,
		"virtual_size": im.VirtualSize, "checksum": md5Hex, "os_hash_algo": "sha512", "os_hash_value": sha,
		"min_disk": 0, "min_ram": 0, "owner": imageOwner, "tags": []string{},
		"created_at": im.Built.Format(glanceTime), "updated_at": im.Built.Format(glanceTime),
		"self": "/v2/images/" + id, "file": "/v2/images/" + id + "/file", "schema": "/v2/schemas/image",
		"os_distro": im.Distro, "os_version": im.Version, "os_type": "linux",
		"image_original_user": im.User, "hw_qemu_guest_agent": "yes", "hw_rng_model": "virtio",
		"image_build_date": im.Built.Format("2006-01-02"),
	}
}

// serveImage serves Glance: /image/{region}/...
func (c *Cloud) serveImage(req *request) *response {
	segs := req.segs
	switch {
	case len(segs) == 0 && req.method() == http.MethodGet:
		return jsonResp(http.StatusMultipleChoices, imageVersions(req))
	case len(segs) == 1 && segs[0] == "versions" && req.method() == http.MethodGet:
		return jsonResp(http.StatusOK, imageVersions(req))
	case len(segs) == 0 || segs[0] != "v2":
		return glanceError(http.StatusNotFound, "The resource could not be found.")
	}
	if !c.authenticate(req) {
		return unauthorized(req)
	}
	segs = segs[1:]
	if len(segs) == 0 || segs[0] != "images" {
		return glanceError(http.StatusNotFound, "The resource could not be found.")
	}
	if req.method() != http.MethodGet {
		return glanceError(http.StatusForbidden, "You are not authorized to complete this action.")
	}
	if len(segs) == 1 {
		return c.listImages(req)
	}
	for _, im := range imageTable {
		if imageID(req.region, im.Name) == segs[1] && len(segs) == 2 {
			return jsonResp(http.StatusOK, imageBody(req.region, im))
		}
	}
	return glanceError(http.StatusNotFound, "No image found with ID "+segs[1])
}

// listImages serves GET /v2/images with Glance's filters (any attribute,
// "in:a,b" lists), sorting and pagination.
func (c *Cloud) listImages(req *request) *response {
	q := req.query()
	filters := url.Values{}
	for k, vs := range q {
		switch k {
		case "limit", "marker", "sort_key", "sort_dir", "sort", "member_status":
			continue
		case "visibility":
			if vs[0] == "all" || vs[0] == "public" {
				continue
			}
		}
		for _, v := range vs {
			if list, ok := strings.CutPrefix(v, "in:"); ok {
				filters[k] = append(filters[k], strings.Split(list, ",")...)
			} else {
				filters[k] = append(filters[k], v)
			}
		}
	}
	var items []map[string]any
	for _, im := range imageTable {
		body := imageBody(req.region, im)
		if matches(body, filters) && (q.Get("visibility") == "" || q.Get("visibility") == "all" || q.Get("visibility") == "public") {
			items = append(items, body)
		}
	}
	sort.SliceStable(items, func(i, j int) bool {
		a, b := items[i]["created_at"].(string), items[j]["created_at"].(string)
		if a != b {
			return a > b
		}
		return items[i]["id"].(string) > items[j]["id"].(string)
	})
	if m := q.Get("marker"); m != "" {
		i := slices.IndexFunc(items, func(it map[string]any) bool { return it["id"] == m })
		if i < 0 {
			return glanceError(http.StatusBadRequest, "marker could not be found")
		}
		items = items[i+1:]
	}
	body := map[string]any{"schema": "/v2/schemas/images", "first": "/v2/images"}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			return glanceError(http.StatusBadRequest, "limit param must be an integer")
		}
		if n < len(items) {
			items = items[:n]
			next := url.Values{}
			for k, vs := range q {
				next[k] = vs
			}
			if n > 0 {
				next.Set("marker", items[n-1]["id"].(string))
			}
			body["next"] = "/v2/images?" + next.Encode()
		}
	}
	list := []any{}
	for _, it := range items {
		list = append(list, it)
	}
	body["images"] = list
	return jsonResp(http.StatusOK, body)
}
