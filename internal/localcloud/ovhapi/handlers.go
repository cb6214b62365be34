package ovhapi

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"
)

const pgPrefix = "/cloud/project/{serviceName}/database/postgresql/{clusterId}"

// routes is the route table: every operation the API serves, with the
// response model the schema gives it.
func (a *API) routes() []route {
	return []route{
		{method: "GET", path: "/auth/time", model: "long", noAuth: true, handle: a.authTime},
		{method: "GET", path: "/auth/details", model: "auth.Details", handle: a.authDetails},
		{method: "GET", path: "/cloud/project", model: "string[]", handle: a.listProjects},
		{method: "GET", path: "/cloud/project/{serviceName}", model: "cloud.ProjectWithIAM", handle: a.getProject},
		{method: "GET", path: "/cloud/project/{serviceName}/database/availability", model: "cloud.project.database.Availability[]", handle: a.getAvailability},
		{method: "GET", path: "/cloud/project/{serviceName}/database/capabilities", model: "cloud.project.database.Capabilities", handle: a.getCapabilities},
		{method: "GET", path: "/cloud/project/{serviceName}/database/service", model: "uuid[]", handle: a.listServices},
		{method: "GET", path: "/cloud/project/{serviceName}/database/service/{clusterId}", model: "cloud.project.database.Service", handle: a.getCluster},
		{method: "GET", path: "/cloud/project/{serviceName}/database/postgresql", model: "uuid[]", handle: a.listClusters},
		{method: "POST", path: "/cloud/project/{serviceName}/database/postgresql", model: "cloud.project.database.Service", handle: a.createCluster},
		{method: "GET", path: pgPrefix, model: "cloud.project.database.Service", handle: a.getCluster},
		{method: "PUT", path: pgPrefix, model: "cloud.project.database.Service", handle: a.updateCluster},
		{method: "DELETE", path: pgPrefix, model: "void", handle: a.deleteCluster},
		{method: "GET", path: pgPrefix + "/advancedConfiguration", model: "map[string]string", handle: a.getAdvancedConfiguration},
		{method: "PUT", path: pgPrefix + "/advancedConfiguration", model: "map[string]string", handle: a.putAdvancedConfiguration},
		{method: "GET", path: pgPrefix + "/backup", model: "uuid[]", handle: a.listBackups},
		{method: "GET", path: pgPrefix + "/backup/{backupId}", model: "cloud.project.database.Backup", handle: a.getBackup},
		{method: "GET", path: pgPrefix + "/capabilities/advancedConfiguration", model: "cloud.project.database.capabilities.advancedConfiguration.Property[]", handle: a.getAdvancedProperties},
		{method: "GET", path: pgPrefix + "/capabilities/backupRegions", model: "string[]", handle: a.getBackupRegions},
		{method: "GET", path: pgPrefix + "/certificates", model: "cloud.project.database.service.Certificates", handle: a.getCertificates},
		{method: "GET", path: pgPrefix + "/database", model: "uuid[]", handle: a.listDatabases},
		{method: "POST", path: pgPrefix + "/database", model: "cloud.project.database.service.Database", handle: a.createDatabase},
		{method: "GET", path: pgPrefix + "/database/{databaseId}", model: "cloud.project.database.service.Database", handle: a.getDatabase},
		{method: "DELETE", path: pgPrefix + "/database/{databaseId}", model: "void", handle: a.deleteDatabase},
		{method: "GET", path: pgPrefix + "/ipRestriction", model: "ipBlock[]", handle: a.listIPRestrictions},
		{method: "POST", path: pgPrefix + "/ipRestriction", model: "cloud.project.database.IpRestriction", handle: a.createIPRestriction},
		{method: "GET", path: pgPrefix + "/ipRestriction/{ipBlock}", model: "cloud.project.database.IpRestriction", handle: a.getIPRestriction},
		{method: "PUT", path: pgPrefix + "/ipRestriction/{ipBlock}", model: "cloud.project.database.IpRestriction", handle: a.updateIPRestriction},
		{method: "DELETE", path: pgPrefix + "/ipRestriction/{ipBlock}", model: "void", handle: a.deleteIPRestriction},
		{method: "GET", path: pgPrefix + "/maintenance", model: "uuid[]", handle: a.listMaintenances},
		{method: "GET", path: pgPrefix + "/node", model: "uuid[]", handle: a.listNodes},
		{method: "GET", path: pgPrefix + "/node/{nodeId}", model: "cloud.project.database.service.Node", handle: a.getNode},
		{method: "GET", path: pgPrefix + "/roles", model: "string[]", handle: a.listRoles},
		{method: "GET", path: pgPrefix + "/user", model: "uuid[]", handle: a.listUsers},
		{method: "POST", path: pgPrefix + "/user", model: "cloud.project.database.service.UserWithPasswordAndRoles", handle: a.createUser},
		{method: "GET", path: pgPrefix + "/user/{userId}", model: "cloud.project.database.service.UserWithRoles", handle: a.getUser},
		{method: "PUT", path: pgPrefix + "/user/{userId}", model: "cloud.project.database.service.UserWithRoles", handle: a.updateUser},
		{method: "DELETE", path: pgPrefix + "/user/{userId}", model: "void", handle: a.deleteUser},
		{method: "POST", path: pgPrefix + "/user/{userId}/credentials/reset", model: "cloud.project.database.service.UserWithPasswordAndRoles", handle: a.resetCredentials},
	}
}

// Validation patterns.
var (
	uuidPattern     = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	timePattern     = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$`)
	userNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,62}$`)
	dbNamePattern   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]{0,62}$`)
)

// adminUser is the admin role every cluster comes with.
const adminUser = "avnadmin"

// defaultDatabase is the database every cluster comes with.
const defaultDatabase = "defaultdb"

// backendContext detaches a backend call from the HTTP request: a client
// that goes away must not leave a half-made server behind.
func backendContext(rq *request) context.Context {
	return context.WithoutCancel(rq.ctx)
}

// lookup returns the project and cluster a request names; the caller holds
// a.mu.
func (a *API) lookup(rq *request) (*project, *cluster, *apiError) {
	a.st.sweep(rq.now)
	p := a.st.project(rq.params["serviceName"], rq.now)
	id := rq.params["clusterId"]
	if id == "" {
		return p, nil, nil
	}
	c := p.cluster(id)
	if c == nil {
		return p, nil, notFound("Service %s does not exist", id)
	}
	return p, c, nil
}

// requireReady refuses changes to a cluster that is not READY, as OVH does
// while a service is being created, updated or deleted.
func requireReady(c *cluster, now time.Time) *apiError {
	if s := c.status(now); s != statusReady {
		return conflict("Client::Conflict::ServiceNotReady", "Service %s is %s: wait until it is READY", c.ID, s)
	}
	return nil
}

func (a *API) authTime(rq *request) (any, *apiError) {
	return rq.now.Unix(), nil
}

// authDetails describes the credential that signed the call, as OVH's
// GET /auth/details does for an application-key credential.
func (a *API) authDetails(rq *request) (any, *apiError) {
	ak := rq.r.Header.Get("X-Ovh-Application")
	var appID int64
	for _, b := range []byte(ak) {
		appID = (appID*31 + int64(b)) % 1000000
	}
	return authDetails{
		Account:       localAccount,
		AllowedRoutes: []accessRule{{Method: "GET", Path: "/*"}, {Method: "POST", Path: "/*"}, {Method: "PUT", Path: "/*"}, {Method: "DELETE", Path: "/*"}},
		ApplicationID: appID,
		Description:   "acco local cloud credential",
		Method:        "account",
		Roles:         []string{},
		User:          nil,
	}, nil
}

// localAccount is the OVH account (nichandle) of the local cloud.
const localAccount = "ac00000-ovh"

// authDetails is auth.Details.
type authDetails struct {
	Account       string       `json:"account"`
	AllowedRoutes []accessRule `json:"allowedRoutes"`
	ApplicationID int64        `json:"applicationId"`
	Description   string       `json:"description"`
	Method        string       `json:"method"`
	Roles         []string     `json:"roles"`
	User          *string      `json:"user"`
}

// accessRule is auth.AccessRule.
type accessRule struct {
	Method string `json:"method"`
	Path   string `json:"path"`
}

func (a *API) listProjects(*request) (any, *apiError) {
	return slices.Clone(a.cfg.Projects), nil
}

func (a *API) getProject(rq *request) (any, *apiError) {
	a.mu.Lock()
	defer a.mu.Unlock()
	sn := rq.params["serviceName"]
	return renderProject(sn, a.st.project(sn, rq.now)), nil
}

func (a *API) getAvailability(rq *request) (any, *apiError) {
	q := rq.r.URL.Query()
	af := availabilityFilter{action: q.Get("action"), target: q.Get("target")}
	if af.action != "" && !slices.Contains([]string{"fork", "read", "update"}, af.action) {
		return nil, badRequest("Invalid parameter action: %q is not one of fork, read, update", af.action)
	}
	if af.target != "" && !slices.Contains([]string{"flavor", "plan", "self", "version"}, af.target) {
		return nil, badRequest("Invalid parameter target: %q is not one of flavor, plan, self, version", af.target)
	}
	if id := q.Get("clusterId"); id != "" {
		a.mu.Lock()
		a.st.sweep(rq.now)
		c := a.st.project(rq.params["serviceName"], rq.now).cluster(id)
		var snapshot cluster
		if c != nil {
			snapshot = *c
		}
		a.mu.Unlock()
		if c == nil {
			return nil, notFound("Service %s does not exist", id)
		}
		af.c = &snapshot
	}
	return buildAvailability(af), nil
}

func (a *API) getCapabilities(*request) (any, *apiError) {
	return buildCapabilities(), nil
}

func (a *API) listServices(rq *request) (any, *apiError) {
	if cat := rq.r.URL.Query().Get("category"); cat != "" && cat != engineCategory {
		if !slices.Contains([]string{"analysis", "operational", "streaming"}, cat) {
			return nil, badRequest("Invalid parameter category: %q", cat)
		}
		return []string{}, nil
	}
	return a.listClusters(rq)
}

func (a *API) listClusters(rq *request) (any, *apiError) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p, _, _ := a.lookup(rq)
	ids := []string{}
	for _, c := range p.Clusters {
		ids = append(ids, c.ID)
	}
	return ids, nil
}

func (a *API) getCluster(rq *request) (any, *apiError) {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, c, err := a.lookup(rq)
	if err != nil {
		return nil, err
	}
	return a.renderService(c, rq.now), nil
}

// Request bodies. Read-only fields of a model are accepted and ignored, as
// clients echo them back; unknown fields are refused.

type backupsIn struct {
	Pitr          json.RawMessage `json:"pitr"`
	Regions       []string        `json:"regions"`
	RetentionDays json.RawMessage `json:"retentionDays"`
	Time          *string         `json:"time"`
}

type diskIn struct {
	Size *int            `json:"size"`
	Type json.RawMessage `json:"type"`
}

type ipRestrictionIn struct {
	Description string          `json:"description"`
	IP          string          `json:"ip"`
	Status      json.RawMessage `json:"status"`
}

type nodePatternIn struct {
	Flavor string `json:"flavor"`
	Number int    `json:"number"`
	Region string `json:"region"`
}

type nodeCreationIn struct {
	CreatedAt json.RawMessage `json:"createdAt"`
	Flavor    string          `json:"flavor"`
	ID        json.RawMessage `json:"id"`
	Name      json.RawMessage `json:"name"`
	Port      json.RawMessage `json:"port"`
	Region    string          `json:"region"`
	Role      *string         `json:"role"`
	Status    json.RawMessage `json:"status"`
}

// serviceCreationIn is cloud.project.database.ServiceCreation.
type serviceCreationIn struct {
	Backup          json.RawMessage   `json:"backup"`
	BackupTime      *string           `json:"backupTime"`
	Backups         *backupsIn        `json:"backups"`
	Description     string            `json:"description"`
	Disk            *diskIn           `json:"disk"`
	ForkFrom        json.RawMessage   `json:"forkFrom"`
	IPRestrictions  []ipRestrictionIn `json:"ipRestrictions"`
	MaintenanceTime *string           `json:"maintenanceTime"`
	NetworkID       *string           `json:"networkId"`
	NodesList       []nodeCreationIn  `json:"nodesList"`
	NodesPattern    *nodePatternIn    `json:"nodesPattern"`
	Plan            string            `json:"plan"`
	SubnetID        *string           `json:"subnetId"`
	Version         string            `json:"version"`
}

// serviceUpdateIn is cloud.project.database.Service as a PUT body: every
// field optional.
type serviceUpdateIn struct {
	BackupTime         *string            `json:"backupTime"`
	Backups            *backupsIn         `json:"backups"`
	Capabilities       json.RawMessage    `json:"capabilities"`
	Category           json.RawMessage    `json:"category"`
	CreatedAt          json.RawMessage    `json:"createdAt"`
	DeletionProtection *bool              `json:"deletionProtection"`
	Description        *string            `json:"description"`
	Disk               *diskIn            `json:"disk"`
	EnablePrometheus   *bool              `json:"enablePrometheus"`
	Endpoints          json.RawMessage    `json:"endpoints"`
	Engine             json.RawMessage    `json:"engine"`
	Flavor             *string            `json:"flavor"`
	ID                 json.RawMessage    `json:"id"`
	IPRestrictions     *[]ipRestrictionIn `json:"ipRestrictions"`
	MaintenanceTime    *string            `json:"maintenanceTime"`
	NetworkID          json.RawMessage    `json:"networkId"`
	NetworkType        json.RawMessage    `json:"networkType"`
	NodeNumber         *int               `json:"nodeNumber"`
	Nodes              json.RawMessage    `json:"nodes"`
	Plan               *string            `json:"plan"`
	Status             json.RawMessage    `json:"status"`
	Storage            *struct {
		Size *struct {
			Unit  string `json:"unit"`
			Value int    `json:"value"`
		} `json:"size"`
		Type json.RawMessage `json:"type"`
	} `json:"storage"`
	SubnetID json.RawMessage `json:"subnetId"`
	Version  *string         `json:"version"`
}

// rawSet reports whether a raw JSON field holds a value other than null.
func rawSet(m json.RawMessage) bool {
	return len(m) > 0 && string(m) != "null"
}

// normalizeIPBlock parses an IPv4 or IPv6 address or block into its CIDR form
// (1.2.3.4 → 1.2.3.4/32), as OVH stores it.
func normalizeIPBlock(s string) (string, *apiError) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "/") {
		addr, err := netip.ParseAddr(s)
		if err != nil {
			return "", badRequest("Invalid IP block %q", s)
		}
		return netip.PrefixFrom(addr, addr.BitLen()).String(), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return "", badRequest("Invalid IP block %q", s)
	}
	return p.Masked().String(), nil
}

// ipRules validates an allow-list.
func ipRules(in []ipRestrictionIn) ([]*ipRule, *apiError) {
	out := []*ipRule{}
	seen := map[string]bool{}
	for _, r := range in {
		ip, err := normalizeIPBlock(r.IP)
		if err != nil {
			return nil, err
		}
		if seen[ip] {
			return nil, badRequest("IP block %s is listed twice", ip)
		}
		seen[ip] = true
		out = append(out, &ipRule{IP: ip, Description: r.Description})
	}
	return out, nil
}

// checkTime validates an "HH:MM:SS" field.
func checkTime(field, v string) *apiError {
	if !timePattern.MatchString(v) {
		return badRequest("Invalid body: [%s] Given data (%s) is not valid for type time", field, v)
	}
	return nil
}

// checkBackupRegions validates backups.regions for a cluster in region.
func checkBackupRegions(rs []string, region string) *apiError {
	if len(rs) < 1 || len(rs) > 2 {
		return badRequest("backups.regions must hold one or two regions")
	}
	for _, r := range rs {
		if !slices.Contains(regions, r) {
			return badRequest("Backup region %s does not exist", r)
		}
	}
	if !slices.Contains(rs, region) {
		return badRequest("backups.regions must include the region of the service (%s)", region)
	}
	return nil
}

// noMatchingCompute is OVH's answer to an offer it does not sell.
func noMatchingCompute() *apiError {
	return errorf(http.StatusNotFound, "Client::NotFound::NoMatchingCompute", "no compute matches your expectations, please refer to the availability endpoint")
}

// checkOffer validates (version, plan, flavor, region, nodes) against the
// availability list.
func checkOffer(version, plan, flavor, region string, nodes int) *apiError {
	p, ok := planByName(plan)
	if !ok {
		return notFound("Plan %s does not exist", plan)
	}
	if !offered(version, plan, flavor, region) || nodes < p.minNodes || nodes > p.maxNodes {
		return noMatchingCompute()
	}
	return nil
}

// hostFor returns the fake host name of a cluster run without a backend,
// shaped like OVH's.
func hostFor(id string) string {
	sum := sha1.Sum([]byte(id))
	return fmt.Sprintf("postgresql-%s-o%s.database.cloud.ovh.net", id[:8], hex.EncodeToString(sum[:4]))
}

func (a *API) createCluster(rq *request) (any, *apiError) {
	var in serviceCreationIn
	if err := decodeBody(rq.body, &in); err != nil {
		return nil, err
	}
	if rawSet(in.ForkFrom) || rawSet(in.Backup) {
		return nil, badRequest("Forking a service from a backup is not supported by the local cloud")
	}
	if in.Plan == "" || in.Version == "" {
		return nil, badRequest("Invalid body: [plan] and [version] are mandatory")
	}
	var flavor, region string
	var count int
	switch {
	case in.NodesPattern != nil && len(in.NodesList) > 0:
		return nil, badRequest("nodesPattern is not compatible with nodesList")
	case in.NodesPattern != nil:
		flavor, region, count = in.NodesPattern.Flavor, in.NodesPattern.Region, in.NodesPattern.Number
		if count == 0 {
			if p, ok := planByName(in.Plan); ok {
				count = p.minNodes
			}
		}
	case len(in.NodesList) > 0:
		flavor, region, count = in.NodesList[0].Flavor, in.NodesList[0].Region, len(in.NodesList)
		for _, n := range in.NodesList[1:] {
			if n.Flavor != flavor || n.Region != region {
				return nil, badRequest("All the nodes of nodesList must have the same flavor and region")
			}
		}
	default:
		return nil, badRequest("Invalid body: one of nodesPattern or nodesList is mandatory")
	}
	if flavor == "" || region == "" {
		return nil, badRequest("Invalid body: the nodes need a flavor and a region")
	}
	if err := checkOffer(in.Version, in.Plan, flavor, region, count); err != nil {
		return nil, err
	}
	f, _ := flavorByName(flavor)
	size := 0
	if in.Disk != nil && in.Disk.Size != nil {
		size = *in.Disk.Size
	}
	size, derr := checkDisk(f, size)
	if derr != nil {
		return nil, badRequest("%v", derr)
	}
	rules, aerr := ipRules(in.IPRestrictions)
	if aerr != nil {
		return nil, aerr
	}
	backupTime, maintenanceTime := "01:00:00", "03:00:00"
	backupRegions := []string{region}
	if in.BackupTime != nil {
		backupTime = *in.BackupTime
	}
	if in.Backups != nil {
		if in.Backups.Time != nil {
			backupTime = *in.Backups.Time
		}
		if in.Backups.Regions != nil {
			if err := checkBackupRegions(in.Backups.Regions, region); err != nil {
				return nil, err
			}
			backupRegions = in.Backups.Regions
		}
	}
	if err := checkTime("backups.time", backupTime); err != nil {
		return nil, err
	}
	if in.MaintenanceTime != nil {
		maintenanceTime = *in.MaintenanceTime
	}
	if err := checkTime("maintenanceTime", maintenanceTime); err != nil {
		return nil, err
	}
	networkID, subnetID := "", ""
	if in.NetworkID != nil {
		networkID = *in.NetworkID
	}
	if in.SubnetID != nil {
		subnetID = *in.SubnetID
	}
	if (networkID == "") != (subnetID == "") {
		return nil, badRequest("networkId and subnetId go together")
	}
	for _, id := range []string{networkID, subnetID} {
		if id != "" && !uuidPattern.MatchString(id) {
			return nil, badRequest("Invalid body: %q is not a valid uuid", id)
		}
	}

	now := rq.now.UTC().Truncate(time.Second)
	id := newUUID()
	c := &cluster{
		ID: id, Description: in.Description, Plan: in.Plan, Version: in.Version, Flavor: flavor, Region: region,
		DiskSize: size, IPRestrictions: rules, BackupRegions: backupRegions, BackupTime: backupTime,
		MaintenanceTime: maintenanceTime, NetworkID: networkID, SubnetID: subnetID,
		CreatedAt: now, ReadyAt: now.Add(a.cfg.CreateDelay),
		Users:          []*dbUser{{ID: derivedUUID(id, "user", adminUser), Name: adminUser, Roles: []string{}, CreatedAt: now}},
		Databases:      []*logicalDB{{ID: derivedUUID(id, "database", defaultDatabase), Name: defaultDatabase, Default: true}},
		AdvancedConfig: map[string]string{},
	}
	if c.Description == "" {
		c.Description = "postgresql-" + id[:8]
	}
	for i := range count {
		c.Nodes = append(c.Nodes, &node{
			ID: newUUID(), Name: fmt.Sprintf("postgresql-%s-%d", id[:8], i+1), CreatedAt: now,
		})
	}

	a.mu.Lock()
	p := a.st.project(rq.params["serviceName"], rq.now)
	p.Clusters = append(p.Clusters, c)
	a.mu.Unlock()

	host, port, berr := hostFor(id), fakePort, error(nil)
	if a.cfg.Postgres != nil {
		host, port, berr = a.cfg.Postgres.CreateCluster(backendContext(rq), id)
	}

	a.mu.Lock()
	if berr != nil {
		c.Failure = berr.Error()
	} else {
		c.Host, c.Port, c.Provisioned = host, port, true
	}
	out := a.renderService(c, a.now())
	a.mu.Unlock()
	a.changed()
	return out, nil
}

func (a *API) updateCluster(rq *request) (any, *apiError) {
	var in serviceUpdateIn
	if err := decodeBody(rq.body, &in); err != nil {
		return nil, err
	}
	a.mu.Lock()
	out, aerr := a.applyUpdate(rq, &in)
	a.mu.Unlock()
	if aerr != nil {
		return nil, aerr
	}
	a.changed()
	return out, nil
}

// applyUpdate validates and applies a PUT on a cluster; the caller holds
// a.mu.
func (a *API) applyUpdate(rq *request, in *serviceUpdateIn) (any, *apiError) {
	_, c, aerr := a.lookup(rq)
	if aerr != nil {
		return nil, aerr
	}
	if err := requireReady(c, rq.now); err != nil {
		return nil, err
	}
	next := *c
	if in.Description != nil {
		next.Description = *in.Description
	}
	if in.Version != nil {
		if !versionAtLeast(*in.Version, c.Version) {
			return nil, badRequest("Version %s is older than %s: a major version cannot be downgraded", *in.Version, c.Version)
		}
		next.Version = *in.Version
	}
	if in.Plan != nil && *in.Plan != c.Plan {
		newPlan, ok := planByName(*in.Plan)
		if !ok {
			return nil, notFound("Plan %s does not exist", *in.Plan)
		}
		oldPlan, _ := planByName(c.Plan)
		if newPlan.order < oldPlan.order {
			return nil, badRequest("Plan %s cannot be downgraded to %s", c.Plan, newPlan.name)
		}
		next.Plan = newPlan.name
	}
	if in.Flavor != nil {
		next.Flavor = *in.Flavor
	}
	nodes := len(c.Nodes)
	if in.NodeNumber != nil && *in.NodeNumber != 0 {
		nodes = *in.NodeNumber
	}
	if p, ok := planByName(next.Plan); ok && in.NodeNumber == nil {
		nodes = max(min(nodes, p.maxNodes), p.minNodes)
	}
	if err := checkOffer(next.Version, next.Plan, next.Flavor, next.Region, nodes); err != nil {
		return nil, err
	}
	f, _ := flavorByName(next.Flavor)
	size := max(c.DiskSize, f.storageGB)
	if in.Disk != nil && in.Disk.Size != nil {
		size = *in.Disk.Size
	}
	if in.Storage != nil && in.Storage.Size != nil {
		if in.Storage.Size.Unit != "" && in.Storage.Size.Unit != "GB" {
			return nil, badRequest("storage.size.unit must be GB")
		}
		size = in.Storage.Size.Value
	}
	if size < c.DiskSize {
		return nil, badRequest("Disk size cannot be decreased (from %d GB to %d GB)", c.DiskSize, size)
	}
	size, derr := checkDisk(f, size)
	if derr != nil {
		return nil, badRequest("%v", derr)
	}
	next.DiskSize = size
	if in.IPRestrictions != nil {
		rules, err := ipRules(*in.IPRestrictions)
		if err != nil {
			return nil, err
		}
		next.IPRestrictions = rules
	}
	if in.BackupTime != nil {
		next.BackupTime = *in.BackupTime
	}
	if in.Backups != nil {
		if in.Backups.Time != nil {
			next.BackupTime = *in.Backups.Time
		}
		if in.Backups.Regions != nil {
			if err := checkBackupRegions(in.Backups.Regions, c.Region); err != nil {
				return nil, err
			}
			next.BackupRegions = in.Backups.Regions
		}
	}
	if err := checkTime("backups.time", next.BackupTime); err != nil {
		return nil, err
	}
	if in.MaintenanceTime != nil {
		if err := checkTime("maintenanceTime", *in.MaintenanceTime); err != nil {
			return nil, err
		}
		next.MaintenanceTime = *in.MaintenanceTime
	}
	if in.DeletionProtection != nil {
		next.DeletionProtection = *in.DeletionProtection
	}
	if in.EnablePrometheus != nil {
		next.EnablePrometheus = *in.EnablePrometheus
	}
	next.Nodes = slices.Clone(c.Nodes)
	for len(next.Nodes) < nodes {
		next.Nodes = append(next.Nodes, &node{
			ID: newUUID(), Name: fmt.Sprintf("postgresql-%s-%d", c.ID[:8], len(next.Nodes)+1),
			CreatedAt: rq.now.UTC().Truncate(time.Second),
		})
	}
	next.Nodes = next.Nodes[:nodes]
	if !sameService(c, &next) {
		next.UpdatingUntil = rq.now.Add(a.cfg.UpdateDelay)
	}
	*c = next
	return a.renderService(c, rq.now), nil
}

// sameService reports whether an update changes nothing a client sees.
func sameService(a, b *cluster) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func (a *API) deleteCluster(rq *request) (any, *apiError) {
	a.mu.Lock()
	_, c, aerr := a.lookup(rq)
	if aerr == nil {
		switch {
		case c.DeletionProtection:
			aerr = forbidden("Deletion protection is enabled on service %s: disable it before deleting the service", c.ID)
		case !c.DeletingSince.IsZero():
			aerr = conflict("", "Service %s is already being deleted", c.ID)
		case !c.Provisioned && c.Failure == "":
			aerr = conflict("Client::Conflict::ServiceNotReady", "Service %s is being created: wait until it is READY", c.ID)
		}
	}
	if aerr != nil {
		a.mu.Unlock()
		return nil, aerr
	}
	c.DeletingSince = rq.now
	c.GoneAt = rq.now.Add(a.cfg.DeleteDelay)
	provisioned := c.Provisioned
	a.mu.Unlock()

	if provisioned && a.cfg.Postgres != nil {
		if err := a.cfg.Postgres.DeleteCluster(backendContext(rq), c.ID); err != nil {
			a.mu.Lock()
			c.DeletingSince, c.GoneAt = time.Time{}, time.Time{}
			a.mu.Unlock()
			return nil, internalError(err)
		}
	}
	a.changed()
	return nil, nil
}
