package ovhapi

import (
	"encoding/json"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Handlers of the parts of a cluster: advanced configuration, backups,
// certificates, databases, IP restrictions, nodes, roles and users.

func (a *API) getAdvancedConfiguration(rq *request) (any, *apiError) {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, c, err := a.lookup(rq)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for k, v := range c.AdvancedConfig {
		out[k] = v
	}
	return out, nil
}

// checkAdvanced validates one advanced configuration value.
func checkAdvanced(key, value string) *apiError {
	i := slices.IndexFunc(advancedProperties, func(p advancedProperty) bool { return p.name == key })
	if i < 0 {
		return badRequest("Advanced configuration %s does not exist; see capabilities/advancedConfiguration", key)
	}
	p := advancedProperties[i]
	bad := func() *apiError {
		return badRequest("Advanced configuration %s: %q is not a valid %s", key, value, p.typ)
	}
	var n float64
	switch p.typ {
	case "boolean":
		if value != "true" && value != "false" {
			return bad()
		}
		return nil
	case "long":
		v, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return bad()
		}
		n = float64(v)
	case "double":
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return bad()
		}
		n = v
	case "string":
		if len(p.values) > 0 && !slices.Contains(p.values, value) {
			return badRequest("Advanced configuration %s: %q is not one of %s", key, value, strings.Join(p.values, ", "))
		}
		return nil
	}
	if (p.minimum != nil && n < *p.minimum) || (p.maximum != nil && n > *p.maximum) {
		return badRequest("Advanced configuration %s: %s is out of range [%g, %g]", key, value, *p.minimum, *p.maximum)
	}
	return nil
}

func (a *API) putAdvancedConfiguration(rq *request) (any, *apiError) {
	var in map[string]string
	if err := decodeBody(rq.body, &in); err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(in))
	for k := range in {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := checkAdvanced(k, in[k]); err != nil {
			return nil, err
		}
	}
	a.mu.Lock()
	_, c, err := a.lookup(rq)
	if err == nil {
		err = requireReady(c, rq.now)
	}
	if err != nil {
		a.mu.Unlock()
		return nil, err
	}
	changed := false
	for k, v := range in {
		if c.AdvancedConfig[k] != v {
			c.AdvancedConfig[k] = v
			changed = true
		}
	}
	if changed {
		c.UpdatingUntil = rq.now.Add(a.cfg.UpdateDelay)
	}
	out := map[string]string{}
	for k, v := range c.AdvancedConfig {
		out[k] = v
	}
	a.mu.Unlock()
	a.changed()
	return out, nil
}

func (a *API) getAdvancedProperties(rq *request) (any, *apiError) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, _, err := a.lookup(rq); err != nil {
		return nil, err
	}
	return buildAdvancedProperties(), nil
}

func (a *API) getBackupRegions(rq *request) (any, *apiError) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, _, err := a.lookup(rq); err != nil {
		return nil, err
	}
	return slices.Clone(regions), nil
}

func (a *API) listBackups(rq *request) (any, *apiError) {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, c, err := a.lookup(rq)
	if err != nil {
		return nil, err
	}
	ids := []string{}
	for _, b := range c.backups(rq.now) {
		ids = append(ids, b.id)
	}
	return ids, nil
}

func (a *API) getBackup(rq *request) (any, *apiError) {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, c, err := a.lookup(rq)
	if err != nil {
		return nil, err
	}
	for _, b := range c.backups(rq.now) {
		if b.id != rq.params["backupId"] {
			continue
		}
		rs := []backupRegion{}
		for _, r := range c.BackupRegions {
			rs = append(rs, backupRegion{Name: r})
		}
		return backupOut{
			CreatedAt: formatTime(b.createdAt), Description: "automatic backup", ID: b.id, Region: c.Region,
			Regions: rs, Size: unitValue{Unit: "MB", Value: 64}, Status: statusReady, Type: "automatic",
		}, nil
	}
	return nil, notFound("Backup %s does not exist", rq.params["backupId"])
}

func (a *API) getCertificates(rq *request) (any, *apiError) {
	a.mu.Lock()
	_, c, err := a.lookup(rq)
	var provisioned bool
	if err == nil {
		provisioned = c.Provisioned
	}
	a.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if cs, ok := a.cfg.Postgres.(CertificateSource); ok && provisioned {
		pem, cerr := cs.CACertificate(rq.ctx, c.ID)
		if cerr != nil {
			return nil, internalError(cerr)
		}
		return certificatesOut{CA: pem}, nil
	}
	pem, cerr := a.fakeCA()
	if cerr != nil {
		return nil, internalError(cerr)
	}
	return certificatesOut{CA: pem}, nil
}

func (a *API) listDatabases(rq *request) (any, *apiError) {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, c, err := a.lookup(rq)
	if err != nil {
		return nil, err
	}
	ids := []string{}
	for _, d := range c.liveDatabases() {
		ids = append(ids, d.ID)
	}
	return ids, nil
}

func (a *API) getDatabase(rq *request) (any, *apiError) {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, c, err := a.lookup(rq)
	if err != nil {
		return nil, err
	}
	d := c.databaseByID(rq.params["databaseId"])
	if d == nil {
		return nil, notFound("Database %s does not exist", rq.params["databaseId"])
	}
	return databaseOut{Default: d.Default, ID: d.ID, Name: d.Name}, nil
}

// reservedDatabases cannot be created by users.
var reservedDatabases = []string{"postgres", "template0", "template1", "_aiven"}

func (a *API) createDatabase(rq *request) (any, *apiError) {
	var in struct {
		Default json.RawMessage `json:"default"`
		ID      json.RawMessage `json:"id"`
		Name    string          `json:"name"`
	}
	if err := decodeBody(rq.body, &in); err != nil {
		return nil, err
	}
	if in.Name == "" {
		return nil, badRequest("Invalid body: [name] Property is mandatory")
	}
	if !dbNamePattern.MatchString(in.Name) || slices.Contains(reservedDatabases, strings.ToLower(in.Name)) {
		return nil, badRequest("Database name %q is not valid", in.Name)
	}
	a.mu.Lock()
	_, c, err := a.lookup(rq)
	if err == nil {
		err = requireReady(c, rq.now)
	}
	if err == nil && c.databaseByName(in.Name) != nil {
		err = conflict("Client::Conflict::DatabaseAlreadyExists", "Database %s already exists", in.Name)
	}
	if err != nil {
		a.mu.Unlock()
		return nil, err
	}
	d := &logicalDB{ID: newUUID(), Name: in.Name, pending: true}
	c.Databases = append(c.Databases, d)
	a.mu.Unlock()

	if aerr := a.onBackend(func(b Backend) error {
		return b.CreateDatabase(backendContext(rq), c.ID, in.Name)
	}, func(ok bool) {
		if ok {
			d.pending = false
		} else {
			c.removeDatabase(d)
		}
	}); aerr != nil {
		return nil, aerr
	}
	a.changed()
	return databaseOut{Default: false, ID: d.ID, Name: d.Name}, nil
}

func (a *API) deleteDatabase(rq *request) (any, *apiError) {
	a.mu.Lock()
	_, c, err := a.lookup(rq)
	var d *logicalDB
	if err == nil {
		if d = c.databaseByID(rq.params["databaseId"]); d == nil {
			err = notFound("Database %s does not exist", rq.params["databaseId"])
		}
	}
	if err == nil {
		err = requireReady(c, rq.now)
	}
	if err == nil && d.Default {
		err = forbidden("Database %s is the default database: it cannot be deleted", d.Name)
	}
	if err != nil {
		a.mu.Unlock()
		return nil, err
	}
	d.pending = true
	a.mu.Unlock()

	if aerr := a.onBackend(func(b Backend) error {
		return b.DropDatabase(backendContext(rq), c.ID, d.Name)
	}, func(ok bool) {
		if ok {
			c.removeDatabase(d)
		} else {
			d.pending = false
		}
	}); aerr != nil {
		return nil, aerr
	}
	a.changed()
	return nil, nil
}

// onBackend runs call against the PostgreSQL backend, if there is one, with
// the API unlocked (the object it works on is marked pending meanwhile), then
// settles the object under the lock: settle(true) when the call succeeded.
func (a *API) onBackend(call func(Backend) error, settle func(ok bool)) *apiError {
	var err error
	if a.cfg.Postgres != nil {
		err = call(a.cfg.Postgres)
	}
	a.mu.Lock()
	settle(err == nil)
	a.mu.Unlock()
	if err != nil {
		return internalError(err)
	}
	return nil
}

func (a *API) listIPRestrictions(rq *request) (any, *apiError) {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, c, err := a.lookup(rq)
	if err != nil {
		return nil, err
	}
	ips := []string{}
	for _, r := range c.IPRestrictions {
		ips = append(ips, r.IP)
	}
	return ips, nil
}

// findIPRule finds the allow-list entry a request names.
func findIPRule(c *cluster, raw string) (*ipRule, *apiError) {
	ip, err := normalizeIPBlock(raw)
	if err != nil {
		return nil, err
	}
	for _, r := range c.IPRestrictions {
		if r.IP == ip {
			return r, nil
		}
	}
	return nil, notFound("IP block %s does not exist", ip)
}

func (a *API) createIPRestriction(rq *request) (any, *apiError) {
	var in struct {
		Description string `json:"description"`
		IP          string `json:"ip"`
	}
	if err := decodeBody(rq.body, &in); err != nil {
		return nil, err
	}
	ip, err := normalizeIPBlock(in.IP)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	_, c, err := a.lookup(rq)
	if err == nil {
		err = requireReady(c, rq.now)
	}
	if err == nil && slices.ContainsFunc(c.IPRestrictions, func(r *ipRule) bool { return r.IP == ip }) {
		err = conflict("", "IP block %s already exists", ip)
	}
	if err != nil {
		a.mu.Unlock()
		return nil, err
	}
	c.IPRestrictions = append(c.IPRestrictions, &ipRule{IP: ip, Description: in.Description})
	c.UpdatingUntil = rq.now.Add(a.cfg.UpdateDelay)
	out := ipRestrictionOut{Description: in.Description, IP: ip, Status: ipStatus(c.status(rq.now))}
	a.mu.Unlock()
	a.changed()
	return out, nil
}

func (a *API) getIPRestriction(rq *request) (any, *apiError) {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, c, err := a.lookup(rq)
	if err != nil {
		return nil, err
	}
	r, err := findIPRule(c, rq.params["ipBlock"])
	if err != nil {
		return nil, err
	}
	return ipRestrictionOut{Description: r.Description, IP: r.IP, Status: ipStatus(c.status(rq.now))}, nil
}

func (a *API) updateIPRestriction(rq *request) (any, *apiError) {
	var in struct {
		Description *string         `json:"description"`
		IP          json.RawMessage `json:"ip"`
		Status      json.RawMessage `json:"status"`
	}
	if err := decodeBody(rq.body, &in); err != nil {
		return nil, err
	}
	a.mu.Lock()
	_, c, err := a.lookup(rq)
	var r *ipRule
	if err == nil {
		r, err = findIPRule(c, rq.params["ipBlock"])
	}
	if err == nil {
		err = requireReady(c, rq.now)
	}
	if err != nil {
		a.mu.Unlock()
		return nil, err
	}
	if in.Description != nil {
		r.Description = *in.Description
	}
	out := ipRestrictionOut{Description: r.Description, IP: r.IP, Status: ipStatus(c.status(rq.now))}
	a.mu.Unlock()
	a.changed()
	return out, nil
}

func (a *API) deleteIPRestriction(rq *request) (any, *apiError) {
	a.mu.Lock()
	_, c, err := a.lookup(rq)
	var r *ipRule
	if err == nil {
		r, err = findIPRule(c, rq.params["ipBlock"])
	}
	if err == nil {
		err = requireReady(c, rq.now)
	}
	if err != nil {
		a.mu.Unlock()
		return nil, err
	}
	c.IPRestrictions = slices.DeleteFunc(c.IPRestrictions, func(x *ipRule) bool { return x == r })
	c.UpdatingUntil = rq.now.Add(a.cfg.UpdateDelay)
	a.mu.Unlock()
	a.changed()
	return nil, nil
}

func (a *API) listMaintenances(rq *request) (any, *apiError) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, _, err := a.lookup(rq); err != nil {
		return nil, err
	}
	return []string{}, nil
}

func (a *API) listNodes(rq *request) (any, *apiError) {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, c, err := a.lookup(rq)
	if err != nil {
		return nil, err
	}
	ids := []string{}
	for _, n := range c.Nodes {
		ids = append(ids, n.ID)
	}
	return ids, nil
}

func (a *API) getNode(rq *request) (any, *apiError) {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, c, err := a.lookup(rq)
	if err != nil {
		return nil, err
	}
	for _, n := range c.Nodes {
		if n.ID == rq.params["nodeId"] {
			return a.renderNode(c, n, c.status(rq.now)), nil
		}
	}
	return nil, notFound("Node %s does not exist", rq.params["nodeId"])
}

// pgRoles are the roles a PostgreSQL user may be given.
var pgRoles = []string{"replication"}

func (a *API) listRoles(rq *request) (any, *apiError) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, _, err := a.lookup(rq); err != nil {
		return nil, err
	}
	return slices.Clone(pgRoles), nil
}

// checkRoles validates the roles of a user.
func checkRoles(roles []string) ([]string, *apiError) {
	out := []string{}
	for _, r := range roles {
		if !slices.Contains(pgRoles, r) {
			return nil, badRequest("Role %q does not exist; the roles are: %s", r, strings.Join(pgRoles, ", "))
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (a *API) listUsers(rq *request) (any, *apiError) {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, c, err := a.lookup(rq)
	if err != nil {
		return nil, err
	}
	ids := []string{}
	for _, u := range c.liveUsers() {
		ids = append(ids, u.ID)
	}
	return ids, nil
}

func (a *API) getUser(rq *request) (any, *apiError) {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, c, err := a.lookup(rq)
	if err != nil {
		return nil, err
	}
	u := c.userByID(rq.params["userId"])
	if u == nil {
		return nil, notFound("User %s does not exist", rq.params["userId"])
	}
	return renderUser(u, ""), nil
}

// reservedUserPrefixes cannot start a user name.
var reservedUserPrefixes = []string{"pg_", "_aiven", "postgres", "repmgr"}

func (a *API) createUser(rq *request) (any, *apiError) {
	var in struct {
		Name  string   `json:"name"`
		Roles []string `json:"roles"`
	}
	if err := decodeBody(rq.body, &in); err != nil {
		return nil, err
	}
	if in.Name == "" {
		return nil, badRequest("Invalid body: [name] Property is mandatory")
	}
	if !userNamePattern.MatchString(in.Name) || slices.ContainsFunc(reservedUserPrefixes, func(p string) bool {
		return strings.HasPrefix(strings.ToLower(in.Name), p)
	}) {
		return nil, badRequest("User name %q is not valid", in.Name)
	}
	roles, rerr := checkRoles(in.Roles)
	if rerr != nil {
		return nil, rerr
	}
	a.mu.Lock()
	_, c, err := a.lookup(rq)
	if err == nil {
		err = requireReady(c, rq.now)
	}
	if err == nil && c.userByName(in.Name) != nil {
		err = conflict("Client::Conflict::PostgresUserAlreadyExist", "User %s already exists", in.Name)
	}
	if err != nil {
		a.mu.Unlock()
		return nil, err
	}
	u := &dbUser{ID: newUUID(), Name: in.Name, Roles: roles, CreatedAt: rq.now.UTC().Truncate(time.Second), pending: true}
	c.Users = append(c.Users, u)
	a.mu.Unlock()

	password := newPassword()
	if aerr := a.onBackend(func(b Backend) error {
		return b.CreateUser(backendContext(rq), c.ID, u.Name, password)
	}, func(ok bool) {
		if ok {
			u.pending = false
		} else {
			c.removeUser(u)
		}
	}); aerr != nil {
		return nil, aerr
	}
	a.changed()
	return renderUser(u, password), nil
}

func (a *API) updateUser(rq *request) (any, *apiError) {
	var in struct {
		CreatedAt json.RawMessage `json:"createdAt"`
		ID        json.RawMessage `json:"id"`
		Roles     []string        `json:"roles"`
		Status    json.RawMessage `json:"status"`
		Username  json.RawMessage `json:"username"`
	}
	if err := decodeBody(rq.body, &in); err != nil {
		return nil, err
	}
	roles, rerr := checkRoles(in.Roles)
	if rerr != nil {
		return nil, rerr
	}
	a.mu.Lock()
	_, c, err := a.lookup(rq)
	var u *dbUser
	if err == nil {
		if u = c.userByID(rq.params["userId"]); u == nil {
			err = notFound("User %s does not exist", rq.params["userId"])
		}
	}
	if err == nil {
		err = requireReady(c, rq.now)
	}
	if err != nil {
		a.mu.Unlock()
		return nil, err
	}
	if in.Roles != nil {
		u.Roles = roles
	}
	out := renderUser(u, "")
	a.mu.Unlock()
	a.changed()
	return out, nil
}

func (a *API) deleteUser(rq *request) (any, *apiError) {
	a.mu.Lock()
	_, c, err := a.lookup(rq)
	var u *dbUser
	if err == nil {
		if u = c.userByID(rq.params["userId"]); u == nil {
			err = notFound("User %s does not exist", rq.params["userId"])
		}
	}
	if err == nil {
		err = requireReady(c, rq.now)
	}
	if err == nil && u.Name == adminUser {
		err = forbidden("User %s is the admin user: it cannot be deleted", adminUser)
	}
	if err != nil {
		a.mu.Unlock()
		return nil, err
	}
	u.pending = true
	a.mu.Unlock()

	if aerr := a.onBackend(func(b Backend) error {
		return b.DropUser(backendContext(rq), c.ID, u.Name)
	}, func(ok bool) {
		if ok {
			c.removeUser(u)
		} else {
			u.pending = false
		}
	}); aerr != nil {
		return nil, aerr
	}
	a.changed()
	return nil, nil
}

func (a *API) resetCredentials(rq *request) (any, *apiError) {
	if len(rq.body) > 0 && strings.TrimSpace(string(rq.body)) != "null" && strings.TrimSpace(string(rq.body)) != "{}" {
		return nil, badRequest("Invalid body: this call takes no body")
	}
	a.mu.Lock()
	_, c, err := a.lookup(rq)
	var u *dbUser
	if err == nil {
		if u = c.userByID(rq.params["userId"]); u == nil {
			err = notFound("User %s does not exist", rq.params["userId"])
		}
	}
	if err == nil {
		err = requireReady(c, rq.now)
	}
	if err != nil {
		a.mu.Unlock()
		return nil, err
	}
	name, id := u.Name, c.ID
	out := renderUser(u, "")
	a.mu.Unlock()

	password := newPassword()
	if a.cfg.Postgres != nil {
		if berr := a.cfg.Postgres.SetPassword(backendContext(rq), id, name, password); berr != nil {
			return nil, internalError(berr)
		}
	}
	out.Password = ptr(password)
	return out, nil
}
