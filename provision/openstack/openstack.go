// Package openstack is acco's narrow, context-first view of the OpenStack
// APIs it uses on OVHcloud Public Cloud (Nova, Neutron, Glance), and the
// real implementation over gophercloud v2.
//
// The engine in package provision depends only on the interfaces here
// (Compute, Network, Image), never on gophercloud types. Every method takes
// a context first. Errors for missing resources wrap ErrNotFound; list
// methods return everything the project holds in one call per resource
// type, so a refresh costs one round trip per type.
package openstack

import (
	"context"
	"errors"
)

// ErrNotFound is wrapped by errors for resources that do not exist. It is
// not retryable: for a lookup by ID it means the resource is gone.
var ErrNotFound = errors.New("not found")

// Flavor is a compute flavor.
type Flavor struct {
	ID    string
	Name  string
	VCPUs int
	RAMMB int
	Disk  int
}

// Image is a Glance image.
type Image struct {
	ID     string
	Name   string
	Status string
}

// NetworkInfo is a Neutron network.
type NetworkInfo struct {
	ID       string
	Name     string
	External bool
}

// Keypair is a Nova SSH keypair. Nova identifies keypairs by name.
type Keypair struct {
	Name        string
	PublicKey   string
	Fingerprint string
}

// Server is a Nova server with what acco reads from it.
type Server struct {
	ID       string
	Name     string
	Status   string // BUILD, ACTIVE, ERROR, ...
	FlavorID string
	ImageID  string
	KeyName  string
	// SecurityGroups are the names of the server's security groups.
	SecurityGroups []string
	// Metadata are the server's metadata (acco_env, acco_name).
	Metadata map[string]string
	// Addresses are the server's addresses by network name.
	Addresses map[string][]Address
	// Fault is Nova's message for a server in ERROR.
	Fault string
}

// Address is one address of a server on a network.
type Address struct {
	Addr    string
	Version int
}

// IPv4 returns the first IPv4 address of the server on network, or "".
func (s Server) IPv4(network string) string {
	for _, a := range s.Addresses[network] {
		if a.Version == 4 {
			return a.Addr
		}
	}
	return ""
}

// IPv6 returns the first IPv6 address of the server on network, or "".
func (s Server) IPv6(network string) string {
	for _, a := range s.Addresses[network] {
		if a.Version == 6 {
			return a.Addr
		}
	}
	return ""
}

// ServerSpec is what CreateServer needs.
type ServerSpec struct {
	Name           string
	FlavorID       string
	ImageID        string
	NetworkID      string
	KeyName        string
	SecurityGroups []string // names or IDs; never "default"
	UserData       []byte
	Metadata       map[string]string
}

// SecurityGroup is a Neutron security group with its rules.
type SecurityGroup struct {
	ID          string
	Name        string
	Description string
	Tags        []string
	Rules       []Rule
}

// Rule is a Neutron security group rule.
type Rule struct {
	ID             string
	GroupID        string
	Direction      string // ingress or egress
	EtherType      string // IPv4 or IPv6
	Protocol       string // tcp, udp, icmp or "" (any)
	PortMin        int
	PortMax        int
	RemoteIPPrefix string
	Description    string
}

// Compute is the part of Nova acco uses.
type Compute interface {
	// ListFlavors returns every flavor, with details.
	ListFlavors(ctx context.Context) ([]Flavor, error)
	// ListKeypairs returns every keypair of the user.
	ListKeypairs(ctx context.Context) ([]Keypair, error)
	// CreateKeypair imports a public key under name.
	CreateKeypair(ctx context.Context, name, publicKey string) (Keypair, error)
	// DeleteKeypair deletes a keypair; a missing one wraps ErrNotFound.
	DeleteKeypair(ctx context.Context, name string) error
	// ListServers returns every server of the project, with details.
	ListServers(ctx context.Context) ([]Server, error)
	// GetServer returns one server; a missing one wraps ErrNotFound.
	GetServer(ctx context.Context, id string) (Server, error)
	// CreateServer boots a server and returns it (usually in BUILD).
	CreateServer(ctx context.Context, spec ServerSpec) (Server, error)
	// DeleteServer deletes a server; a missing one wraps ErrNotFound.
	DeleteServer(ctx context.Context, id string) error
	// UpdateServer renames a server (unless name is empty) and sets the
	// metadata items given (others are kept).
	UpdateServer(ctx context.Context, id, name string, metadata map[string]string) error
	// AddSecurityGroup attaches a security group (by name) to a server's
	// ports.
	AddSecurityGroup(ctx context.Context, serverID, group string) error
	// RemoveSecurityGroup detaches a security group (by name) from a
	// server's ports.
	RemoveSecurityGroup(ctx context.Context, serverID, group string) error
	// ConsoleOutput returns the last lines of the server's console log
	// (all of it when lines <= 0).
	ConsoleOutput(ctx context.Context, id string, lines int) (string, error)
	// RebootServer reboots a server: soft (an ACPI request to the guest,
	// as an operator would) or hard.
	RebootServer(ctx context.Context, id string, hard bool) error
}

// Network is the part of Neutron acco uses.
type Network interface {
	// ListNetworks returns the networks the project sees.
	ListNetworks(ctx context.Context) ([]NetworkInfo, error)
	// ListSecurityGroups returns the project's security groups with their
	// rules.
	ListSecurityGroups(ctx context.Context) ([]SecurityGroup, error)
	// GetSecurityGroup returns one group; a missing one wraps ErrNotFound.
	GetSecurityGroup(ctx context.Context, id string) (SecurityGroup, error)
	// CreateSecurityGroup creates a group and sets its tags.
	CreateSecurityGroup(ctx context.Context, name, description string, tags []string) (SecurityGroup, error)
	// UpdateSecurityGroup sets a group's description.
	UpdateSecurityGroup(ctx context.Context, id, description string) error
	// RenameSecurityGroup sets a group's name.
	RenameSecurityGroup(ctx context.Context, id, name string) error
	// SetSecurityGroupTags replaces a group's tags.
	SetSecurityGroupTags(ctx context.Context, id string, tags []string) error
	// DeleteSecurityGroup deletes a group; a missing one wraps ErrNotFound.
	DeleteSecurityGroup(ctx context.Context, id string) error
	// CreateRule adds a rule to a group.
	CreateRule(ctx context.Context, r Rule) (Rule, error)
	// DeleteRule deletes a rule; a missing one wraps ErrNotFound.
	DeleteRule(ctx context.Context, id string) error
}

// ImageService is the part of Glance acco uses.
type ImageService interface {
	// ListImages returns the images the project sees.
	ListImages(ctx context.Context) ([]Image, error)
}

// Clients are the three services of one project in one region.
type Clients struct {
	Compute Compute
	Network Network
	Image   ImageService
}
