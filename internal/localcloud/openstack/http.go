package openstack

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// maxBody is the largest request body accepted (Nova's user_data alone may
// be 64 KiB once base64-decoded).
const maxBody = 1 << 20

// Handler returns the HTTP handler serving every service of the cloud.
// baseURL is the absolute URL the clients reach the handler at (it goes into
// the catalog); when it is empty, it is derived from each request's Host.
// When baseURL has a path, requests may come with or without that prefix.
func (c *Cloud) Handler(baseURL string) http.Handler {
	baseURL = strings.TrimSuffix(baseURL, "/")
	prefix := ""
	if u, err := url.Parse(baseURL); err == nil {
		prefix = strings.TrimSuffix(u.Path, "/")
	}
	return &handler{c: c, base: baseURL, prefix: prefix}
}

// handler routes requests to the services.
type handler struct {
	c      *Cloud
	base   string
	prefix string
}

// request is one request being served.
type request struct {
	r      *http.Request
	base   string   // absolute base URL of the cloud, without a trailing slash
	region string   // region of a regional service
	segs   []string // path segments left to route
	tok    *token   // the caller's token, once authenticated
	body   []byte
	mv     microversion // Nova microversion
}

// response is what a handler answers, written after the lock is released.
type response struct {
	status int
	header http.Header
	body   any    // encoded as JSON unless it is []byte
	ctype  string // content type of a []byte body
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if h.prefix != "" && (p == h.prefix || strings.HasPrefix(p, h.prefix+"/")) {
		p = strings.TrimPrefix(p, h.prefix)
	}
	base := h.base
	if base == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	req := &request{r: r, base: base, segs: splitPath(p), body: body}
	var resp *response
	switch {
	case err != nil:
		resp = plainError(http.StatusBadRequest, "cannot read request body")
	case len(body) > maxBody:
		resp = plainError(http.StatusRequestEntityTooLarge, "request body too large")
	default:
		resp = h.route(req)
	}
	h.c.changed()
	writeResponse(w, r, resp)
}

// route dispatches a request to its service, under the cloud's lock.
func (h *handler) route(req *request) *response {
	c := h.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(req.segs) == 0 {
		return plainError(http.StatusNotFound, "this is the local OpenStack: see /identity/v3")
	}
	svc := req.segs[0]
	req.segs = req.segs[1:]
	if svc == "identity" {
		return c.serveIdentity(req)
	}
	if len(req.segs) == 0 || !slices.Contains(c.cfg.Regions, req.segs[0]) {
		return plainError(http.StatusNotFound, "unknown region")
	}
	req.region = req.segs[0]
	req.segs = req.segs[1:]
	switch svc {
	case "compute":
		return c.serveCompute(req)
	case "network":
		return c.serveNetwork(req)
	case "image":
		return c.serveImage(req)
	}
	return plainError(http.StatusNotFound, "unknown service "+svc)
}

// splitPath splits a URL path into its non-empty segments.
func splitPath(p string) []string {
	var segs []string
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			segs = append(segs, s)
		}
	}
	return segs
}

func writeResponse(w http.ResponseWriter, r *http.Request, resp *response) {
	for k, vs := range resp.header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	var data []byte
	switch b := resp.body.(type) {
	case nil:
	case []byte:
		data = b
		w.Header().Set("Content-Type", resp.ctype)
	default:
		var err error
		data, err = json.Marshal(b)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
	}
	w.Header().Set("X-Openstack-Request-Id", "req-"+newUUID())
	if resp.status == http.StatusNoContent || resp.status == http.StatusNotModified {
		data = nil
		w.Header().Del("Content-Type")
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(data)))
	w.WriteHeader(resp.status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(data)
	}
}

// jsonResp answers a JSON document.
func jsonResp(status int, body any) *response {
	return &response{status: status, body: body}
}

// noContent answers 204.
func noContent() *response { return &response{status: http.StatusNoContent} }

// plainError answers a text error (for paths no service claims).
func plainError(status int, msg string) *response {
	return &response{status: status, body: []byte(msg + "\n"), ctype: "text/plain; charset=utf-8"}
}

// unauthorized is the 401 of keystonemiddleware, shared by every service.
func unauthorized(req *request) *response {
	resp := jsonResp(http.StatusUnauthorized, map[string]any{"error": map[string]any{
		"code":    http.StatusUnauthorized,
		"title":   "Unauthorized",
		"message": "The request you have made requires authentication.",
	}})
	resp.header = http.Header{"Www-Authenticate": {fmt.Sprintf("Keystone uri=%q", req.base+"/identity/v3")}}
	return resp
}

// authenticate checks the X-Auth-Token of a request to a service and, when
// it is valid, records the token: its project scopes the request.
func (c *Cloud) authenticate(req *request) bool {
	tok := c.validToken(req.r.Header.Get("X-Auth-Token"))
	if tok == nil {
		return false
	}
	req.tok = tok
	return true
}

// decode unmarshals the JSON request body into v.
func (req *request) decode(v any) error {
	if len(bytes.TrimSpace(req.body)) == 0 {
		return fmt.Errorf("the request body is empty")
	}
	if err := json.Unmarshal(req.body, v); err != nil {
		return fmt.Errorf("malformed JSON in request body: %v", err)
	}
	return nil
}

// methodNotAllowed answers 405 for a known path with an unknown method.
func methodNotAllowed(allow ...string) *response {
	resp := plainError(http.StatusMethodNotAllowed, "The method is not allowed for the requested URL.")
	resp.header = http.Header{"Allow": {strings.Join(allow, ", ")}}
	return resp
}

// query returns the request's query values.
func (req *request) query() url.Values { return req.r.URL.Query() }

// method returns the HTTP method, HEAD counting as GET.
func (req *request) method() string {
	if req.r.Method == http.MethodHead {
		return http.MethodGet
	}
	return req.r.Method
}
