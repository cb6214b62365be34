package ovhapi

import (
	"fmt"
	"time"
)

// The response documents, field for field as the schema's models name them.
// Fields the schema marks canBeNull are pointers written as null when unset;
// every other field is always written.

// serviceOut is cloud.project.database.Service.
type serviceOut struct {
	BackupTime         string                       `json:"backupTime"`
	Backups            *serviceBackupOut            `json:"backups"`
	Capabilities       map[string]capabilityActions `json:"capabilities"`
	Category           string                       `json:"category"`
	CreatedAt          string                       `json:"createdAt"`
	DeletionProtection *bool                        `json:"deletionProtection"`
	Description        string                       `json:"description"`
	Disk               diskOut                      `json:"disk"`
	EnablePrometheus   *bool                        `json:"enablePrometheus"`
	Endpoints          []endpointOut                `json:"endpoints"`
	Engine             string                       `json:"engine"`
	Flavor             string                       `json:"flavor"`
	ID                 string                       `json:"id"`
	IPRestrictions     []serviceIPRestrictionOut    `json:"ipRestrictions"`
	MaintenanceTime    string                       `json:"maintenanceTime"`
	NetworkID          *string                      `json:"networkId"`
	NetworkType        string                       `json:"networkType"`
	NodeNumber         int                          `json:"nodeNumber"`
	Nodes              []nodeOut                    `json:"nodes"`
	Plan               string                       `json:"plan"`
	Status             string                       `json:"status"`
	Storage            *storageOut                  `json:"storage"`
	SubnetID           *string                      `json:"subnetId"`
	Version            string                       `json:"version"`
}

// serviceBackupOut is cloud.project.database.service.Backup.
type serviceBackupOut struct {
	Pitr          *string  `json:"pitr"`
	Regions       []string `json:"regions"`
	RetentionDays *int     `json:"retentionDays"`
	Time          string   `json:"time"`
}

// capabilityActions is cloud.project.database.service.CapabilityActions.
type capabilityActions struct {
	Create *string `json:"create"`
	Delete *string `json:"delete"`
	Read   *string `json:"read"`
	Update *string `json:"update"`
}

// diskOut is cloud.project.database.service.Disk.
type diskOut struct {
	Size int    `json:"size"`
	Type string `json:"type"`
}

// storageOut is cloud.project.database.service.Storage.
type storageOut struct {
	Size unitValue `json:"size"`
	Type string    `json:"type"`
}

// endpointOut is cloud.project.database.service.Endpoint.
type endpointOut struct {
	Component string  `json:"component"`
	Domain    string  `json:"domain"`
	Path      *string `json:"path"`
	Port      *int    `json:"port"`
	Scheme    *string `json:"scheme"`
	SSL       bool    `json:"ssl"`
	SSLMode   *string `json:"sslMode"`
	URI       *string `json:"uri"`
}

// serviceIPRestrictionOut is cloud.project.database.service.IpRestriction.
type serviceIPRestrictionOut struct {
	Description string `json:"description"`
	IP          string `json:"ip"`
	Status      string `json:"status"`
}

// nodeOut is cloud.project.database.service.Node.
type nodeOut struct {
	CreatedAt string  `json:"createdAt"`
	Flavor    string  `json:"flavor"`
	ID        string  `json:"id"`
	Name      string  `json:"name"`
	Port      int     `json:"port"`
	Region    string  `json:"region"`
	Role      *string `json:"role"`
	Status    string  `json:"status"`
}

// userOut is cloud.project.database.service.UserWithRoles, and with Password
// set cloud.project.database.service.UserWithPasswordAndRoles.
type userOut struct {
	CreatedAt string   `json:"createdAt"`
	ID        string   `json:"id"`
	Password  *string  `json:"password,omitempty"`
	Roles     []string `json:"roles"`
	Status    string   `json:"status"`
	Username  string   `json:"username"`
}

// databaseOut is cloud.project.database.service.Database.
type databaseOut struct {
	Default bool   `json:"default"`
	ID      string `json:"id"`
	Name    string `json:"name"`
}

// ipRestrictionOut is cloud.project.database.IpRestriction.
type ipRestrictionOut struct {
	Description string `json:"description"`
	IP          string `json:"ip"`
	Status      string `json:"status"`
}

// backupOut is cloud.project.database.Backup.
type backupOut struct {
	CreatedAt   string         `json:"createdAt"`
	Description string         `json:"description"`
	ID          string         `json:"id"`
	Region      string         `json:"region"`
	Regions     []backupRegion `json:"regions"`
	Size        unitValue      `json:"size"`
	Status      string         `json:"status"`
	Type        string         `json:"type"`
}

type backupRegion struct {
	Name string `json:"name"`
}

// certificatesOut is cloud.project.database.service.Certificates.
type certificatesOut struct {
	CA string `json:"ca"`
}

// projectOut is cloud.ProjectWithIAM.
type projectOut struct {
	Access       string  `json:"access"`
	CreationDate string  `json:"creationDate"`
	Description  *string `json:"description"`
	Expiration   *string `json:"expiration"`
	IAM          *iamOut `json:"iam"`
	ManualQuota  bool    `json:"manualQuota"`
	OrderID      *int    `json:"orderId"`
	PlanCode     string  `json:"planCode"`
	ProjectName  *string `json:"projectName"`
	ProjectID    string  `json:"project_id"`
	Status       string  `json:"status"`
	Unleash      bool    `json:"unleash"`
}

// iamOut is iam.ResourceMetadata.
type iamOut struct {
	DisplayName *string           `json:"displayName"`
	ID          string            `json:"id"`
	State       *string           `json:"state"`
	Tags        map[string]string `json:"tags"`
	URN         string            `json:"urn"`
}

// formatTime writes a datetime as OVH does (RFC 3339, second precision).
func formatTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339)
}

func ptr[T any](v T) *T { return &v }

// capabilityTable says which actions a PostgreSQL service allows, by
// capability (cloud.project.database.service.CapabilityEnum).
var capabilityTable = map[string]string{
	"advancedConfiguration":      "ru",
	"backupRestore":              "c",
	"backupTime":                 "u",
	"backups":                    "r",
	"certificates":               "r",
	"connectionPools":            "crud",
	"currentQueries":             "r",
	"currentQueriesCancel":       "c",
	"databases":                  "crd",
	"deletionProtection":         "u",
	"enableWrites":               "c",
	"fork":                       "c",
	"integrations":               "crd",
	"ipRestrictions":             "crud",
	"maintenanceApply":           "c",
	"maintenanceTime":            "u",
	"maintenances":               "r",
	"nodes":                      "r",
	"prometheus":                 "r",
	"prometheusCredentialsReset": "c",
	"queryStatistics":            "r",
	"queryStatisticsReset":       "c",
	"service":                    "crud",
	"serviceDisk":                "u",
	"serviceFlavor":              "u",
	"serviceIpRestriction":       "u",
	"userCredentialsReset":       "c",
	"users":                      "crud",
}

// serviceCapabilities renders capabilityTable.
func serviceCapabilities() map[string]capabilityActions {
	out := make(map[string]capabilityActions, len(capabilityTable))
	for name, acts := range capabilityTable {
		var ca capabilityActions
		for _, a := range acts {
			enabled := ptr("enabled")
			switch a {
			case 'c':
				ca.Create = enabled
			case 'r':
				ca.Read = enabled
			case 'u':
				ca.Update = enabled
			case 'd':
				ca.Delete = enabled
			}
		}
		out[name] = ca
	}
	return out
}

// ipStatus is the status of an allow-list entry of a cluster.
func ipStatus(clusterStatus string) string {
	switch clusterStatus {
	case statusCreating:
		return statusPending
	case statusDeleting, statusError:
		return clusterStatus
	}
	return statusReady
}

// renderService renders a cluster at now.
func (a *API) renderService(c *cluster, now time.Time) serviceOut {
	status := c.status(now)
	plan, _ := planByName(c.Plan)
	retention := plan.retentionDays
	s := serviceOut{
		BackupTime: c.BackupTime,
		Backups: &serviceBackupOut{
			Regions:       append([]string{}, c.BackupRegions...),
			RetentionDays: &retention,
			Time:          c.BackupTime,
		},
		Capabilities:       serviceCapabilities(),
		Category:           engineCategory,
		CreatedAt:          formatTime(c.CreatedAt),
		DeletionProtection: ptr(c.DeletionProtection),
		Description:        c.Description,
		Disk:               diskOut{Size: c.DiskSize, Type: plan.diskType()},
		EnablePrometheus:   ptr(c.EnablePrometheus),
		Endpoints:          []endpointOut{},
		Engine:             engineName,
		Flavor:             c.Flavor,
		ID:                 c.ID,
		IPRestrictions:     []serviceIPRestrictionOut{},
		MaintenanceTime:    c.MaintenanceTime,
		NetworkType:        "public",
		NodeNumber:         len(c.Nodes),
		Nodes:              []nodeOut{},
		Plan:               c.Plan,
		Status:             status,
		Storage:            &storageOut{Size: unitValue{Unit: "GB", Value: c.DiskSize}, Type: plan.diskType()},
		Version:            c.Version,
	}
	if c.NetworkID != "" {
		s.NetworkID = ptr(c.NetworkID)
		s.NetworkType = "private"
	}
	if c.SubnetID != "" {
		s.SubnetID = ptr(c.SubnetID)
	}
	if status == statusReady || status == statusUpdating {
		s.Backups.Pitr = ptr(formatTime(now))
		s.Endpoints = append(s.Endpoints, endpointOut{
			Component: engineName,
			Domain:    c.Host,
			Path:      ptr("/defaultdb"),
			Port:      ptr(c.Port),
			Scheme:    ptr("postgresql"),
			SSL:       true,
			SSLMode:   ptr(sslMode),
			URI:       ptr(fmt.Sprintf("postgresql://<username>:<password>@%s:%d/defaultdb?sslmode=%s", c.Host, c.Port, sslMode)),
		})
	}
	for _, ip := range c.IPRestrictions {
		s.IPRestrictions = append(s.IPRestrictions, serviceIPRestrictionOut{Description: ip.Description, IP: ip.IP, Status: ipStatus(status)})
	}
	for _, n := range c.Nodes {
		s.Nodes = append(s.Nodes, a.renderNode(c, n, status))
	}
	return s
}

// renderNode renders one node of a cluster whose status is status.
func (a *API) renderNode(c *cluster, n *node, status string) nodeOut {
	port := c.Port
	if port == 0 {
		port = fakePort
	}
	return nodeOut{
		CreatedAt: formatTime(n.CreatedAt), Flavor: c.Flavor, ID: n.ID, Name: n.Name,
		Port: port, Region: c.Region, Role: ptr("STANDARD"), Status: status,
	}
}

// renderUser renders a user; password is set only when one was just made.
func renderUser(u *dbUser, password string) userOut {
	out := userOut{
		CreatedAt: formatTime(u.CreatedAt), ID: u.ID, Roles: append([]string{}, u.Roles...),
		Status: statusReady, Username: u.Name,
	}
	if password != "" {
		out.Password = ptr(password)
	}
	return out
}

// renderProject renders a project.
func renderProject(sn string, p *project) projectOut {
	name := "acco local cloud " + sn[:8]
	return projectOut{
		Access:       "full",
		CreationDate: formatTime(p.CreatedAt),
		Description:  ptr(name),
		IAM: &iamOut{
			DisplayName: ptr(name),
			ID:          derivedUUID("project", sn),
			State:       ptr("OK"),
			Tags:        map[string]string{},
			URN:         "urn:v1:eu:resource:publicCloudProject:" + sn,
		},
		PlanCode:    "project.2018",
		ProjectName: ptr(name),
		ProjectID:   sn,
		Status:      "ok",
	}
}
