package ovhapi

import (
	"net/http"
	"net/url"
	"strings"
)

// route is one operation of the API.
type route struct {
	method string
	// path is the schema's path, "{name}" segments being parameters.
	path string
	// model is the schema's responseType of the operation, which its
	// answers follow (tests check every body against it).
	model  string
	noAuth bool
	handle func(*request) (any, *apiError)
}

// router matches requests against routes, segment by segment, on the
// escaped path so that a parameter may hold an escaped slash (ipBlock).
type router struct {
	routes []route
}

func newRouter(routes []route) *router {
	return &router{routes: routes}
}

// apiPrefixes are the path prefixes the API answers under: go-ovh's
// endpoint ends with /1.0, and it sends /v1/... paths without it.
var apiPrefixes = []string{"/1.0", "/v1"}

// match finds the route of r and its parameters.
func (rt *router) match(r *http.Request) (route, map[string]string, bool) {
	path := r.URL.EscapedPath()
	trimmed := ""
	for _, p := range apiPrefixes {
		if rest, ok := strings.CutPrefix(path, p); ok && strings.HasPrefix(rest, "/") {
			trimmed = rest
			break
		}
	}
	if trimmed == "" {
		return route{}, nil, false
	}
	segs := strings.Split(strings.TrimPrefix(trimmed, "/"), "/")
	for _, ro := range rt.routes {
		if ro.method != r.Method {
			continue
		}
		if params, ok := matchPath(ro.path, segs); ok {
			return ro, params, true
		}
	}
	return route{}, nil, false
}

// matchPath matches escaped path segments against a route path.
func matchPath(pattern string, segs []string) (map[string]string, bool) {
	pat := strings.Split(strings.TrimPrefix(pattern, "/"), "/")
	if len(pat) != len(segs) {
		return nil, false
	}
	params := map[string]string{}
	for i, p := range pat {
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
			v, err := url.PathUnescape(segs[i])
			if err != nil || v == "" {
				return nil, false
			}
			params[p[1:len(p)-1]] = v
			continue
		}
		if p != segs[i] {
			return nil, false
		}
	}
	return params, true
}
