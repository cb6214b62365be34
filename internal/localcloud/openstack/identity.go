package openstack

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// keystoneTime is the timestamp layout of Keystone tokens.
const keystoneTime = "2006-01-02T15:04:05.000000Z"

// defaultDomain is OVH's only domain, as Keystone shows it.
func defaultDomain() map[string]any { return map[string]any{"id": "default", "name": "Default"} }

// token is an issued Keystone token. Tokens live in memory only.
type token struct {
	ID      string
	Project Project
	Methods []string
	AuditID string
	Issued  time.Time
	Expires time.Time
}

// validToken returns the unexpired token of an ID, or nil. Expired tokens are
// dropped as they are met.
func (c *Cloud) validToken(id string) *token {
	if id == "" {
		return nil
	}
	tok := c.tokens[id]
	if tok == nil {
		return nil
	}
	if !c.now().Before(tok.Expires) {
		delete(c.tokens, id)
		return nil
	}
	return tok
}

// issueToken records and returns a new token for a project's user.
func (c *Cloud) issueToken(p Project, methods []string) *token {
	now := c.now()
	for id, t := range c.tokens {
		if !now.Before(t.Expires) {
			delete(c.tokens, id)
		}
	}
	tok := &token{
		ID:      newTokenID(),
		Project: p,
		Methods: methods,
		AuditID: newSecret(22),
		Issued:  now,
		Expires: now.Add(c.cfg.TokenTTL),
	}
	c.tokens[tok.ID] = tok
	return tok
}

// keystoneError answers an error in Keystone's shape.
func keystoneError(status int, msg string) *response {
	return jsonResp(status, map[string]any{"error": map[string]any{
		"code":    status,
		"title":   http.StatusText(status),
		"message": msg,
	}})
}

// identityVersion is the version document of Keystone v3.
func identityVersion(req *request) map[string]any {
	return map[string]any{
		"id":      "v3.14",
		"status":  "stable",
		"updated": "2020-04-07T00:00:00Z",
		"links":   []any{map[string]any{"rel": "self", "href": req.base + "/identity/v3/"}},
		"media-types": []any{map[string]any{
			"base": "application/json",
			"type": "application/vnd.openstack.identity-v3+json",
		}},
	}
}

// serveIdentity serves Keystone: /identity/...
func (c *Cloud) serveIdentity(req *request) *response {
	segs := req.segs
	switch {
	case len(segs) == 0:
		if req.method() != http.MethodGet {
			return methodNotAllowed("GET")
		}
		return jsonResp(http.StatusMultipleChoices, map[string]any{"versions": map[string]any{"values": []any{identityVersion(req)}}})
	case segs[0] != "v3":
		return keystoneError(http.StatusNotFound, "The resource could not be found.")
	case len(segs) == 1:
		if req.method() != http.MethodGet {
			return methodNotAllowed("GET")
		}
		return jsonResp(http.StatusOK, map[string]any{"version": identityVersion(req)})
	}
	path := strings.Join(segs[1:], "/")
	if path == "auth/tokens" && req.method() == http.MethodPost {
		return c.createToken(req)
	}
	caller := c.validToken(req.r.Header.Get("X-Auth-Token"))
	if caller == nil {
		return unauthorized(req)
	}
	switch path {
	case "auth/tokens":
		subject := c.validToken(req.r.Header.Get("X-Subject-Token"))
		if subject == nil {
			return keystoneError(http.StatusNotFound, fmt.Sprintf("Could not find token: %s.", req.r.Header.Get("X-Subject-Token")))
		}
		switch req.method() {
		case http.MethodGet:
			resp := jsonResp(http.StatusOK, c.tokenBody(req, subject, req.query().Get("nocatalog") == ""))
			resp.header = http.Header{"X-Subject-Token": {subject.ID}}
			return resp
		case http.MethodDelete:
			delete(c.tokens, subject.ID)
			return noContent()
		}
		return methodNotAllowed("GET", "HEAD", "POST", "DELETE")
	case "auth/catalog":
		return jsonResp(http.StatusOK, map[string]any{"catalog": c.catalog(req, caller.Project)})
	case "auth/projects", "users/" + caller.Project.UserID() + "/projects":
		return jsonResp(http.StatusOK, map[string]any{"projects": []any{projectBody(caller.Project)}})
	case "projects/" + caller.Project.ID:
		return jsonResp(http.StatusOK, map[string]any{"project": projectBody(caller.Project)})
	case "users/" + caller.Project.UserID():
		return jsonResp(http.StatusOK, map[string]any{"user": map[string]any{
			"id": caller.Project.UserID(), "name": caller.Project.User, "domain_id": "default",
			"enabled": true, "default_project_id": caller.Project.ID, "password_expires_at": nil,
		}})
	}
	if strings.HasPrefix(path, "projects/") || strings.HasPrefix(path, "users/") {
		return keystoneError(http.StatusForbidden, "You are not authorized to perform the requested action.")
	}
	return keystoneError(http.StatusNotFound, "The resource could not be found.")
}

// projectBody is a project as Keystone shows it.
func projectBody(p Project) map[string]any {
	return map[string]any{
		"id": p.ID, "name": p.Name, "domain_id": "default", "description": "",
		"enabled": true, "is_domain": false, "parent_id": "default", "tags": []string{},
	}
}

// domainRef names a domain by ID or name.
type domainRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// isDefault reports whether a domain reference names domain Default.
func (d *domainRef) isDefault() bool {
	return d != nil && (d.ID == "default" || (d.ID == "" && strings.EqualFold(d.Name, "Default")))
}

// authRequest is the body of POST /v3/auth/tokens.
type authRequest struct {
	Auth *struct {
		Identity *struct {
			Methods  []string `json:"methods"`
			Password *struct {
				User *struct {
					ID       string     `json:"id"`
					Name     string     `json:"name"`
					Password string     `json:"password"`
					Domain   *domainRef `json:"domain"`
				} `json:"user"`
			} `json:"password"`
			Token *struct {
				ID string `json:"id"`
			} `json:"token"`
		} `json:"identity"`
		Scope json.RawMessage `json:"scope"`
	} `json:"auth"`
}

// scopeRequest is the scope of an auth request.
type scopeRequest struct {
	Project *struct {
		ID     string     `json:"id"`
		Name   string     `json:"name"`
		Domain *domainRef `json:"domain"`
	} `json:"project"`
	Domain *domainRef `json:"domain"`
	System any        `json:"system"`
}

// expecting is Keystone's 400 for a missing attribute.
func expecting(attr, target string) *response {
	return keystoneError(http.StatusBadRequest, fmt.Sprintf(
		"Expecting to find %s in %s. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.",
		attr, target))
}

// createToken serves POST /v3/auth/tokens: password or token
// authentication, scoped to the user's project.
func (c *Cloud) createToken(req *request) *response {
	var ar authRequest
	if err := req.decode(&ar); err != nil {
		return keystoneError(http.StatusBadRequest, err.Error())
	}
	if ar.Auth == nil {
		return expecting("auth", "request body")
	}
	if ar.Auth.Identity == nil {
		return expecting("identity", "auth")
	}
	id := ar.Auth.Identity
	if len(id.Methods) == 0 {
		return expecting("methods", "identity")
	}
	denied := keystoneError(http.StatusUnauthorized, "The request you have made requires authentication.")
	var user Project
	switch id.Methods[0] {
	case "password":
		if id.Password == nil || id.Password.User == nil {
			return expecting("user", "password")
		}
		u := id.Password.User
		found := false
		for _, p := range c.cfg.Projects {
			switch {
			case u.ID != "":
				found = p.UserID() == u.ID
			case u.Name != "":
				if u.Domain == nil {
					return expecting("domain", "user")
				}
				found = p.User == u.Name && u.Domain.isDefault()
			default:
				return expecting("id or name", "user")
			}
			if found {
				user = p
				break
			}
		}
		if !found || u.Password != user.Password {
			return denied
		}
	case "token":
		if id.Token == nil || id.Token.ID == "" {
			return expecting("id", "token")
		}
		t := c.validToken(id.Token.ID)
		if t == nil {
			return keystoneError(http.StatusNotFound, fmt.Sprintf("Could not find token: %s.", id.Token.ID))
		}
		user = t.Project
	default:
		return keystoneError(http.StatusUnauthorized, fmt.Sprintf("Attempted to authenticate with an unsupported method: %s.", id.Methods[0]))
	}

	// With no scope, Keystone scopes to the user's default project, which on
	// OVH is the user's project.
	if raw := ar.Auth.Scope; len(raw) > 0 && string(raw) != "null" && string(raw) != `"unscoped"` {
		var sc scopeRequest
		if err := json.Unmarshal(raw, &sc); err != nil {
			return keystoneError(http.StatusBadRequest, "Invalid scope: "+err.Error())
		}
		switch {
		case sc.Project != nil:
			p := sc.Project
			switch {
			case p.ID != "":
				if p.ID != user.ID {
					return keystoneError(http.StatusUnauthorized, fmt.Sprintf("User %s has no access to project %s", user.UserID(), p.ID))
				}
			case p.Name != "":
				if p.Domain == nil {
					return expecting("domain", "project")
				}
				if p.Name != user.Name || !p.Domain.isDefault() {
					return keystoneError(http.StatusUnauthorized, fmt.Sprintf("User %s has no access to project %s", user.UserID(), p.Name))
				}
			default:
				return expecting("id or name", "project")
			}
		case sc.Domain != nil:
			return keystoneError(http.StatusUnauthorized, fmt.Sprintf("User %s has no access to domain %s", user.UserID(), sc.Domain.ID+sc.Domain.Name))
		case sc.System != nil:
			return keystoneError(http.StatusUnauthorized, fmt.Sprintf("User %s has no access to the system", user.UserID()))
		}
	}
	tok := c.issueToken(user, []string{id.Methods[0]})
	resp := jsonResp(http.StatusCreated, c.tokenBody(req, tok, req.query().Get("nocatalog") == ""))
	resp.header = http.Header{"X-Subject-Token": {tok.ID}}
	return resp
}

// tokenBody is a token as Keystone shows it.
func (c *Cloud) tokenBody(req *request, tok *token, withCatalog bool) map[string]any {
	p := tok.Project
	t := map[string]any{
		"methods": tok.Methods,
		"user": map[string]any{
			"domain": defaultDomain(), "id": p.UserID(), "name": p.User, "password_expires_at": nil,
		},
		"audit_ids":  []string{tok.AuditID},
		"expires_at": tok.Expires.Format(keystoneTime),
		"issued_at":  tok.Issued.Format(keystoneTime),
		"project":    map[string]any{"domain": defaultDomain(), "id": p.ID, "name": p.Name},
		"is_domain":  false,
		"roles": []any{
			map[string]any{"id": hexID("role", "member"), "name": "member"},
			map[string]any{"id": hexID("role", "reader"), "name": "reader"},
		},
	}
	if withCatalog {
		t["catalog"] = c.catalog(req, p)
	}
	return map[string]any{"token": t}
}

// catalog is the service catalog of a project: absolute URLs of this server,
// public and internal endpoints in every region.
func (c *Cloud) catalog(req *request, p Project) []any {
	services := []struct{ typ, name, path string }{
		{"identity", "keystone", "/identity/v3/"},
		{"compute", "nova", "/compute/{region}/v2.1/" + p.ID},
		{"network", "neutron", "/network/{region}/"},
		{"image", "glance", "/image/{region}/"},
	}
	var out []any
	for _, s := range services {
		var eps []any
		for _, region := range c.cfg.Regions {
			u := req.base + strings.ReplaceAll(s.path, "{region}", region)
			for _, iface := range []string{"public", "internal"} {
				eps = append(eps, map[string]any{
					"id":        stableUUID("endpoint", s.typ, region, iface),
					"interface": iface,
					"region_id": region,
					"region":    region,
					"url":       u,
				})
			}
		}
		out = append(out, map[string]any{
			"id": stableUUID("service", s.typ), "type": s.typ, "name": s.name, "endpoints": eps,
		})
	}
	return out
}
