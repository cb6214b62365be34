package openstack

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// formatVersion is the version of the snapshot document.
const formatVersion = 1

// Project is one OVH Public Cloud project and its one OpenStack user.
type Project struct {
	// ID is the project ID (on OVH: 32 hex digits, also the OVH serviceName).
	ID string
	// Name is the Keystone project name.
	Name string
	// User is the OpenStack user name (domain Default).
	User string
	// Password is the user's password.
	Password string
}

// UserID returns the Keystone ID of the project's user, derived from its name.
func (p Project) UserID() string { return hexID("user", p.User) }

// Config configures a Cloud. The zero value is usable: every field has a
// default.
type Config struct {
	// Regions are the OpenStack regions; default GRA11 and SBG5.
	Regions []string
	// Projects are the projects and their users; default test, preprod and
	// prod (see DefaultProjects).
	Projects []Project
	// TokenTTL is the lifetime of a Keystone token; default 1h.
	TokenTTL time.Duration
	// BuildDelay is how long a new server stays in BUILD before ACTIVE.
	BuildDelay time.Duration
	// AddressDelay is how long after ACTIVE the Ext-Net address of a server
	// shows in its addresses (on OVH it is not there right away).
	AddressDelay time.Duration
	// RebootDelay is how long a server stays in REBOOT or HARD_REBOOT;
	// default BuildDelay.
	RebootDelay time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Machines, when set, runs a real machine behind every server: the
	// server's status follows its machine, its console output is the
	// machine's, and Ext-Net hands out loopback addresses (MachineNet).
	Machines Machines
	// OnChange, when set, is called after every mutation, outside the cloud's
	// lock, so that the owner can save a Snapshot.
	OnChange func()
}

// DefaultRegions are the regions of a Config that names none.
func DefaultRegions() []string { return []string{"GRA11", "SBG5"} }

// DefaultProjects are the projects of a Config that names none: test,
// preprod and prod, with users user-<name> and passwords password-<name>.
func DefaultProjects() []Project {
	var ps []Project
	for _, name := range []string{"test", "preprod", "prod"} {
		ps = append(ps, Project{
			ID:       hexID("project", name),
			Name:     name,
			User:     "user-" + name,
			Password: "password-" + name,
		})
	}
	return ps
}

// hexID derives a stable 32-hex-digit ID from a kind and a name.
func hexID(kind, name string) string {
	sum := sha256.Sum256([]byte("acco-localcloud/" + kind + "/" + name))
	return hex.EncodeToString(sum[:16])
}

// withDefaults returns cfg with defaults filled in, or an error when it is
// inconsistent.
func (cfg Config) withDefaults() (Config, error) {
	if len(cfg.Regions) == 0 {
		cfg.Regions = DefaultRegions()
	}
	if len(cfg.Projects) == 0 {
		cfg.Projects = DefaultProjects()
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = time.Hour
	}
	if cfg.RebootDelay <= 0 {
		cfg.RebootDelay = cfg.BuildDelay
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	seen := map[string]bool{}
	for _, r := range cfg.Regions {
		if r == "" || seen["region:"+r] {
			return cfg, fmt.Errorf("openstack: region %q is empty or repeated", r)
		}
		seen["region:"+r] = true
	}
	for _, p := range cfg.Projects {
		if p.ID == "" || p.Name == "" || p.User == "" || p.Password == "" {
			return cfg, fmt.Errorf("openstack: project %q needs an ID, a name, a user and a password", p.Name)
		}
		for _, k := range []string{"id:" + p.ID, "name:" + p.Name, "user:" + p.User} {
			if seen[k] {
				return cfg, fmt.Errorf("openstack: project %s repeats %s", p.Name, k)
			}
			seen[k] = true
		}
	}
	return cfg, nil
}

// Cloud is the local OpenStack. It is safe for concurrent use.
type Cloud struct {
	cfg Config

	mu     sync.Mutex
	st     *state
	tokens map[string]*token
	dirty  bool // a mutation happened since the last OnChange
}

// state is everything a snapshot holds.
type state struct {
	FormatVersion int          `json:"format_version"`
	KeypairSeq    int          `json:"keypair_seq"`
	Keypairs      []*keypair   `json:"keypairs"`
	Servers       []*server    `json:"servers"`
	SecGroups     []*secGroup  `json:"security_groups"`
	Rules         []*secRule   `json:"security_group_rules"`
	Ports         []*port      `json:"ports"`
	Injections    []*injection `json:"injections"`
}

// scope is the part of a resource that says whose it is and where.
type scope struct {
	Project string `json:"project_id"`
	Region  string `json:"region"`
}

// keypair is a Nova key pair.
type keypair struct {
	scope
	ID          int       `json:"id"`
	Name        string    `json:"name"`
	Type        string    `json:"type"`
	PublicKey   string    `json:"public_key"`
	Fingerprint string    `json:"fingerprint"`
	Created     time.Time `json:"created_at"`
}

// server is a Nova server.
type server struct {
	scope
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	FlavorID    string `json:"flavor_id"`
	ImageID     string `json:"image_id"`
	KeyName     string `json:"key_name,omitempty"`
	// AuthorizedKey is the public key of the key pair at creation time.
	AuthorizedKey string            `json:"authorized_key,omitempty"`
	Metadata      map[string]string `json:"metadata"`
	UserData      string            `json:"user_data,omitempty"`
	AdminPass     string            `json:"-"`
	Created       time.Time         `json:"created"`
	Updated       time.Time         `json:"updated"`
	ActiveAt      time.Time         `json:"active_at"`
	AddressAt     time.Time         `json:"address_at"`
	// Fault, when set, makes the server land in ERROR instead of ACTIVE.
	Fault       string    `json:"fault,omitempty"`
	RebootType  string    `json:"reboot_type,omitempty"`
	RebootUntil time.Time `json:"reboot_until"`
	Boots       int       `json:"boots"`     // boots so far, the first included
	BootedAt    time.Time `json:"booted_at"` // when the last reboot or start began
	Stopped     bool      `json:"stopped,omitempty"`
	HostKey     string    `json:"host_key"` // OpenSSH private key (PEM)
}

// secGroup is a Neutron security group.
type secGroup struct {
	scope
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Tags        []string  `json:"tags"`
	Created     time.Time `json:"created_at"`
	Updated     time.Time `json:"updated_at"`
	Revision    int       `json:"revision_number"`
}

// secRule is a Neutron security group rule.
type secRule struct {
	scope
	ID             string    `json:"id"`
	GroupID        string    `json:"security_group_id"`
	Direction      string    `json:"direction"`
	Ethertype      string    `json:"ethertype"`
	Protocol       *string   `json:"protocol"`
	PortMin        *int      `json:"port_range_min"`
	PortMax        *int      `json:"port_range_max"`
	RemoteIPPrefix *string   `json:"remote_ip_prefix"`
	RemoteGroupID  *string   `json:"remote_group_id"`
	Description    string    `json:"description"`
	Created        time.Time `json:"created_at"`
	Updated        time.Time `json:"updated_at"`
	Revision       int       `json:"revision_number"`
}

// port is a Neutron port on Ext-Net, bound to a server.
type port struct {
	scope
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	NetworkID   string    `json:"network_id"`
	SubnetID    string    `json:"subnet_id"`
	IP          string    `json:"ip_address"`
	MAC         string    `json:"mac_address"`
	DeviceID    string    `json:"device_id"`
	DeviceOwner string    `json:"device_owner"`
	SecGroups   []string  `json:"security_groups"`
	Tags        []string  `json:"tags"`
	Created     time.Time `json:"created_at"`
	Updated     time.Time `json:"updated_at"`
	Revision    int       `json:"revision_number"`
}

// injection is a pending fault: the next server created in Project (with
// ServerName, when set) lands in ERROR.
type injection struct {
	Project    string `json:"project_id"`
	ServerName string `json:"server_name,omitempty"`
}

// New returns an empty cloud.
func New(cfg Config) (*Cloud, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Cloud{cfg: cfg, st: &state{FormatVersion: formatVersion}, tokens: map[string]*token{}}, nil
}

// Restore returns a cloud holding the resources of a Snapshot.
func Restore(cfg Config, data []byte) (*Cloud, error) {
	c, err := New(cfg)
	if err != nil {
		return nil, err
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("openstack: decode snapshot: %w", err)
	}
	if st.FormatVersion != formatVersion {
		return nil, fmt.Errorf("openstack: snapshot format_version %d, this build reads %d", st.FormatVersion, formatVersion)
	}
	var scopes []scope
	for _, k := range st.Keypairs {
		scopes = append(scopes, k.scope)
	}
	for _, s := range st.Servers {
		scopes = append(scopes, s.scope)
		if _, err := ssh.ParseRawPrivateKey([]byte(s.HostKey)); err != nil {
			return nil, fmt.Errorf("openstack: snapshot: host key of server %s: %w", s.ID, err)
		}
	}
	for _, g := range st.SecGroups {
		scopes = append(scopes, g.scope)
	}
	for _, r := range st.Rules {
		scopes = append(scopes, r.scope)
	}
	for _, p := range st.Ports {
		scopes = append(scopes, p.scope)
	}
	for _, sc := range scopes {
		if _, ok := c.project(sc.Project); !ok {
			return nil, fmt.Errorf("openstack: snapshot holds resources of project %s, which the config does not define", sc.Project)
		}
		if !slices.Contains(c.cfg.Regions, sc.Region) {
			return nil, fmt.Errorf("openstack: snapshot holds resources in region %s, which the config does not define", sc.Region)
		}
	}
	c.st = &st
	return c, nil
}

// Snapshot returns every resource as one JSON document, for Restore.
func (c *Cloud) Snapshot() ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return json.MarshalIndent(c.st, "", "  ")
}

// Counts returns how many resources of each kind the cloud holds, all
// projects and regions together.
func (c *Cloud) Counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return map[string]int{
		"keypairs":             len(c.st.Keypairs),
		"servers":              len(c.st.Servers),
		"security_groups":      len(c.st.SecGroups),
		"security_group_rules": len(c.st.Rules),
		"ports":                len(c.st.Ports),
	}
}

// InjectServerError makes the next server created in the project land in
// ERROR (with a fault) instead of ACTIVE. With a server name, the fault waits
// for the next server of that name. Injections are consumed one per create.
func (c *Cloud) InjectServerError(projectID, serverName string) {
	c.mu.Lock()
	c.st.Injections = append(c.st.Injections, &injection{Project: projectID, ServerName: serverName})
	c.dirty = true
	c.mu.Unlock()
	c.changed()
}

// ErrNotFound is returned by lookups of resources that do not exist.
var ErrNotFound = errors.New("openstack: not found")

// ServerHostKey returns the SSH host key of a server: the key whose
// fingerprint its console log prints. A VM standing for the server serves it.
func (c *Cloud) ServerHostKey(projectID, serverID string) (ssh.Signer, error) {
	pemKey, err := c.ServerHostKeyPEM(projectID, serverID)
	if err != nil {
		return nil, err
	}
	return ssh.ParsePrivateKey(pemKey)
}

// ServerHostKeyPEM returns the SSH host key of a server as an OpenSSH
// private key file (what /etc/ssh/ssh_host_ed25519_key holds).
func (c *Cloud) ServerHostKeyPEM(projectID, serverID string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.st.Servers {
		if s.ID == serverID && s.Project == projectID {
			return []byte(s.HostKey), nil
		}
	}
	return nil, fmt.Errorf("%w: server %s in project %s", ErrNotFound, serverID, projectID)
}

// Projects returns the configured projects.
func (c *Cloud) Projects() []Project { return slices.Clone(c.cfg.Projects) }

// Regions returns the configured regions.
func (c *Cloud) Regions() []string { return slices.Clone(c.cfg.Regions) }

// changed calls OnChange when a mutation happened. It must be called without
// the lock held.
func (c *Cloud) changed() {
	c.mu.Lock()
	dirty := c.dirty
	c.dirty = false
	c.mu.Unlock()
	if dirty && c.cfg.OnChange != nil {
		c.cfg.OnChange()
	}
}

// now returns the current time, in UTC.
func (c *Cloud) now() time.Time { return c.cfg.Now().UTC() }

// project returns the configured project of an ID.
func (c *Cloud) project(id string) (Project, bool) {
	for _, p := range c.cfg.Projects {
		if p.ID == id {
			return p, true
		}
	}
	return Project{}, false
}

// sortedKeys returns the keys of m, sorted.
func sortedKeys[V any](m map[string]V) []string {
	keys := slices.Collect(maps.Keys(m))
	sort.Strings(keys)
	return keys
}
