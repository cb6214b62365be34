// Package ovhdb is acco's narrow, context-first view of the OVH API v1 for
// Public Cloud Databases (the PostgreSQL engine), and the real implementation
// over go-ovh.
//
// Paths are /cloud/project/{serviceName}/database/postgresql/...; the
// serviceName is the environment's project. The IP allow-list is the
// ipRestrictions array of the cluster, always sent whole with a PUT on the
// cluster (the per-IP endpoints are deprecated). Errors for missing
// resources wrap ErrNotFound.
package ovhdb

import (
	"context"
	"errors"
)

// ErrNotFound is wrapped by errors for resources that do not exist. It is
// not retryable: for a lookup by ID it means the resource is gone.
var ErrNotFound = errors.New("not found")

// ErrConflict is wrapped by errors for HTTP 409 answers (e.g. a user that
// already exists, or a cluster busy UPDATING). It is retryable for updates.
var ErrConflict = errors.New("conflict")

// Cluster statuses (cloud.project.database.StatusEnum) acco acts on.
const (
	StatusReady    = "READY"
	StatusCreating = "CREATING"
	StatusUpdating = "UPDATING"
	StatusPending  = "PENDING"
	StatusDeleting = "DELETING"
	StatusError    = "ERROR"
)

// Cluster is a managed database cluster (cloud.project.database.Service),
// reduced to what acco reads.
type Cluster struct {
	ID                 string          `json:"id"`
	Description        string          `json:"description"`
	Engine             string          `json:"engine"`
	Version            string          `json:"version"`
	Plan               string          `json:"plan"`
	Flavor             string          `json:"flavor"`
	Status             string          `json:"status"`
	NodeNumber         int             `json:"nodeNumber"`
	Nodes              []Node          `json:"nodes"`
	Disk               Disk            `json:"disk"`
	IPRestrictions     []IPRestriction `json:"ipRestrictions"`
	DeletionProtection *bool           `json:"deletionProtection,omitempty"`
	Backups            *Backups        `json:"backups,omitempty"`
	MaintenanceTime    string          `json:"maintenanceTime"`
	Endpoints          []Endpoint      `json:"endpoints"`
}

// Region returns the region of the cluster's first node, or "".
func (c Cluster) Region() string {
	if len(c.Nodes) > 0 {
		return c.Nodes[0].Region
	}
	return ""
}

// Endpoint returns the endpoint of a component (postgresql), or false.
func (c Cluster) Endpoint(component string) (Endpoint, bool) {
	for _, e := range c.Endpoints {
		if e.Component == component {
			return e, true
		}
	}
	return Endpoint{}, false
}

// Node is one node of a cluster.
type Node struct {
	ID     string `json:"id"`
	Flavor string `json:"flavor"`
	Region string `json:"region"`
	Status string `json:"status"`
}

// Disk is a cluster's disk; Size in GB.
type Disk struct {
	Size int `json:"size"`
}

// IPRestriction is one entry of a cluster's allow-list.
type IPRestriction struct {
	IP          string `json:"ip"`
	Description string `json:"description"`
	Status      string `json:"status,omitempty"`
}

// Backups is a cluster's backup setting.
type Backups struct {
	Time    string   `json:"time,omitempty"`
	Regions []string `json:"regions,omitempty"`
}

// Endpoint is how a component of the cluster is reached.
type Endpoint struct {
	Component string  `json:"component"`
	Domain    string  `json:"domain"`
	Port      *int    `json:"port"`
	SSL       bool    `json:"ssl"`
	SSLMode   *string `json:"sslMode"`
}

// NodesPattern is the shape of the nodes of a new cluster.
type NodesPattern struct {
	Flavor string `json:"flavor"`
	Number int    `json:"number"`
	Region string `json:"region"`
}

// ClusterCreate is the body of a cluster creation
// (cloud.project.database.ServiceCreation).
type ClusterCreate struct {
	Description     string          `json:"description"`
	Plan            string          `json:"plan"`
	Version         string          `json:"version"`
	NodesPattern    NodesPattern    `json:"nodesPattern"`
	Disk            *Disk           `json:"disk,omitempty"`
	IPRestrictions  []IPRestriction `json:"ipRestrictions"`
	Backups         *Backups        `json:"backups,omitempty"`
	MaintenanceTime string          `json:"maintenanceTime,omitempty"`
}

// ClusterUpdate is a partial update of a cluster; nil fields are left out.
type ClusterUpdate struct {
	Description        *string          `json:"description,omitempty"`
	Plan               *string          `json:"plan,omitempty"`
	Flavor             *string          `json:"flavor,omitempty"`
	Version            *string          `json:"version,omitempty"`
	Disk               *Disk            `json:"disk,omitempty"`
	IPRestrictions     *[]IPRestriction `json:"ipRestrictions,omitempty"`
	DeletionProtection *bool            `json:"deletionProtection,omitempty"`
	Backups            *Backups         `json:"backups,omitempty"`
	MaintenanceTime    *string          `json:"maintenanceTime,omitempty"`
}

// User is a database user (cloud.project.database.service.UserWithRoles).
type User struct {
	ID       string   `json:"id"`
	Username string   `json:"username"`
	Roles    []string `json:"roles"`
	Status   string   `json:"status"`
	// Password is set only by CreateUser and ResetPassword: OVH returns it
	// once and never again.
	Password string `json:"password,omitempty"`
}

// Database is a logical database of a cluster.
type Database struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Default bool   `json:"default"`
}

// Availability is one offer of /database/availability.
type Availability struct {
	Engine         string `json:"engine"`
	Version        string `json:"version"`
	Plan           string `json:"plan"`
	Region         string `json:"region"`
	Flavor         string `json:"flavor"`
	MinNodeNumber  int    `json:"minNodeNumber"`
	MaxNodeNumber  int    `json:"maxNodeNumber"`
	MinDiskSize    int    `json:"minDiskSize"`
	MaxDiskSize    int    `json:"maxDiskSize"`
	Specifications struct {
		Flavor string `json:"flavor"`
	} `json:"specifications"`
	Lifecycle struct {
		Status string `json:"status"`
	} `json:"lifecycle"`
}

// FlavorName returns the offer's flavor.
func (a Availability) FlavorName() string {
	if a.Specifications.Flavor != "" {
		return a.Specifications.Flavor
	}
	return a.Flavor
}

// API is the part of the OVH Cloud Databases API acco uses, for one project.
type API interface {
	// Availability lists the PostgreSQL offers (version, plan, flavor,
	// region) of the project.
	Availability(ctx context.Context) ([]Availability, error)
	// ListClusters returns every PostgreSQL cluster of the project.
	ListClusters(ctx context.Context) ([]Cluster, error)
	// ClusterIDs returns the IDs of the project's PostgreSQL clusters (one
	// call: what ListClusters starts with).
	ClusterIDs(ctx context.Context) ([]string, error)
	// GetCluster returns one cluster; a missing one wraps ErrNotFound.
	GetCluster(ctx context.Context, id string) (Cluster, error)
	// CACertificate returns the PEM certificate of the CA that signed the
	// cluster's server certificate ("" when the cluster has none yet).
	CACertificate(ctx context.Context, clusterID string) (string, error)
	// CreateCluster orders a cluster; it starts CREATING.
	CreateCluster(ctx context.Context, c ClusterCreate) (Cluster, error)
	// UpdateCluster changes a cluster; it goes UPDATING.
	UpdateCluster(ctx context.Context, id string, u ClusterUpdate) error
	// DeleteCluster deletes a cluster; a missing one wraps ErrNotFound.
	DeleteCluster(ctx context.Context, id string) error

	// ListUsers returns the users of a cluster (without passwords).
	ListUsers(ctx context.Context, clusterID string) ([]User, error)
	// GetUser returns one user (without its password); a missing one
	// wraps ErrNotFound.
	GetUser(ctx context.Context, clusterID, id string) (User, error)
	// CreateUser creates a user and returns it with its password.
	CreateUser(ctx context.Context, clusterID, name string, roles []string) (User, error)
	// UpdateUserRoles sets a user's roles.
	UpdateUserRoles(ctx context.Context, clusterID, userID string, roles []string) error
	// ResetPassword gives a user a new password and returns it.
	ResetPassword(ctx context.Context, clusterID, userID string) (User, error)
	// DeleteUser deletes a user; a missing one wraps ErrNotFound.
	DeleteUser(ctx context.Context, clusterID, userID string) error

	// ListDatabases returns the logical databases of a cluster.
	ListDatabases(ctx context.Context, clusterID string) ([]Database, error)
	// CreateDatabase creates a logical database.
	CreateDatabase(ctx context.Context, clusterID, name string) (Database, error)
	// DeleteDatabase deletes a logical database; a missing one wraps
	// ErrNotFound.
	DeleteDatabase(ctx context.Context, clusterID, id string) error
}
