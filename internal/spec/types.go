package spec

import (
	"fmt"
	"strings"
	"time"
)

// Environment is one deployment target (test, preprod, prod, ...): the merge
// of environments/defaults.yaml and environments/<name>.yaml.
//
// Fields tagged spec:"env" accept ${VAR} and ${VAR:-default}; see the package
// documentation.
type Environment struct {
	// Name is the environment's name; it must match the file name.
	Name string `yaml:"name"`
	// Project is the OVH Public Cloud project: the OVH API serviceName,
	// which is also the OpenStack project ID (32 lowercase hex digits).
	Project string `yaml:"project"`
	// Cloud names the clouds.yaml entry holding this environment's
	// OpenStack credentials (OpenStack users belong to one project).
	Cloud string `yaml:"cloud" spec:"env"`
	// Region is the OpenStack region of the compute resources, e.g. GRA11.
	Region string `yaml:"region"`
	// AdminCIDRs are the networks operators connect from. Security group
	// rules refer to them with the source admin_cidrs.
	AdminCIDRs []string `yaml:"admin_cidrs" spec:"env"`
	// AllowProdDatabaseDestroy lifts the rule that the prod environment's
	// databases must set protect: true.
	AllowProdDatabaseDestroy bool `yaml:"allow_prod_database_destroy"`
	// State says where acco keeps this environment's state and lock.
	State StateConfig `yaml:"state"`
	// Keypairs are the OpenStack SSH keypairs, by name (keypair.NAME).
	Keypairs map[string]*Keypair `yaml:"keypairs"`
	// SecurityGroups are the OpenStack security groups, by name
	// (security_group.NAME).
	SecurityGroups map[string]*SecurityGroup `yaml:"security_groups"`
	// Instances are the compute instances, by name (instance.NAME).
	Instances map[string]*Instance `yaml:"instances"`
	// Databases are the OVH managed database clusters, by name
	// (database.NAME).
	Databases map[string]*Database `yaml:"databases"`
	// Services describes what runs on the services host.
	Services Services `yaml:"services"`

	// Dir is the directory the environment was loaded from; relative local
	// paths in the YAML are relative to it (see LocalPath).
	Dir string `yaml:"-"`
	// Files are the YAML files that were merged, defaults first.
	Files []string `yaml:"-"`

	pos *positions
}

// StateConfig locates the S3 bucket holding every environment's state
// (<env>/state.json) and lock (<env>/lock.json).
type StateConfig struct {
	// Bucket is the bucket name (S3 naming rules).
	Bucket string `yaml:"bucket"`
	// Region is the Object Storage region in lower case, e.g. gra.
	Region string `yaml:"region"`
	// Endpoint is the S3 endpoint, e.g. https://s3.gra.io.cloud.ovh.net.
	Endpoint string `yaml:"endpoint" spec:"env"`
	// PathStyle addresses the bucket in the URL path instead of the host
	// name (needed for bucket names with dots, and for local S3 servers).
	PathStyle bool `yaml:"path_style"`
	// Project is the OVH project holding the bucket (optional; used by
	// acco bootstrap to create it).
	Project string `yaml:"project"`
}

// Keypair is an OpenStack SSH keypair. Exactly one of PublicKey and
// PublicKeyFile is set.
type Keypair struct {
	// PublicKey is the key in authorized_keys format.
	PublicKey string `yaml:"public_key" spec:"env"`
	// PublicKeyFile is a local file holding the public key; it is read when
	// planning, not when validating. "~/" is the home directory; a relative
	// path is relative to the environments directory.
	PublicKeyFile string `yaml:"public_key_file" spec:"env"`
}

// SecurityGroup is an OpenStack security group. Its rules admit ingress
// traffic; egress stays open (the group's default egress rules).
type SecurityGroup struct {
	// Description is shown in OpenStack.
	Description string `yaml:"description"`
	// Rules are the ingress rules.
	Rules []Rule `yaml:"rules"`
}

// Rule admits ingress traffic of one protocol, on some ports, from some
// sources.
type Rule struct {
	// Description says why the rule exists.
	Description string `yaml:"description"`
	// Protocol is tcp, udp or icmp.
	Protocol string `yaml:"protocol"`
	// Ports are single ports (22) or ranges ("8000-8100"); empty for icmp.
	Ports []PortRange `yaml:"ports"`
	// From are the sources: CIDRs (IPv4 or IPv6), or admin_cidrs for the
	// top-level list.
	From []string `yaml:"from"`
}

// SourceAdminCIDRs is the rule source that stands for the top-level
// admin_cidrs list.
const SourceAdminCIDRs = "admin_cidrs"

// PortRange is an inclusive range of ports; a single port has Min == Max.
// In YAML it is written 22 or "8000-8100".
type PortRange struct {
	Min, Max int
}

// String formats the range as YAML accepts it.
func (r PortRange) String() string {
	if r.Min == r.Max {
		return fmt.Sprint(r.Min)
	}
	return fmt.Sprintf("%d-%d", r.Min, r.Max)
}

// Instance is a compute instance.
type Instance struct {
	// Flavor is the OpenStack flavor name, e.g. d2-4 or b3-8.
	Flavor string `yaml:"flavor"`
	// Image is the image name, e.g. "Debian 12"; acco resolves it to an
	// ID when creating the instance.
	Image string `yaml:"image"`
	// Network is the network of the instance's public port
	// (default Ext-Net).
	Network string `yaml:"network"`
	// Keypair names the keypair installed for SSHUser.
	Keypair string `yaml:"keypair"`
	// SecurityGroups name the groups of the instance's port. They replace
	// the project's allow-all "default" group.
	SecurityGroups []string `yaml:"security_groups"`
	// SSHUser is the login user of the image (default debian).
	SSHUser string `yaml:"ssh_user"`
	// Count, when above 1, makes the entry stand for that many alike
	// instances (at most MaxCount), named NAME-1 to NAME-N (see
	// MemberNames); count: 1 is the same as no count. Load expands the
	// entry into those instances, so every instance of a loaded
	// Environment has Count 0.
	Count int `yaml:"count"`
}

// Database is an OVH Public Cloud managed database cluster.
type Database struct {
	// Engine is the database engine; only postgresql is supported.
	Engine string `yaml:"engine"`
	// Version is the engine's major version, e.g. "17".
	Version string `yaml:"version"`
	// Plan is the OVH plan: essential, business, enterprise (Gen 2,
	// db1-* flavors) or production, advanced (Gen 3, b3-* flavors).
	Plan string `yaml:"plan"`
	// Flavor is the node flavor, e.g. db1-4 or b3-8.
	Flavor string `yaml:"flavor"`
	// Region is the OVH database region, e.g. GRA (not an OpenStack
	// region name such as GRA11).
	Region string `yaml:"region"`
	// Nodes is the number of nodes (essential 1, business 2, enterprise 3,
	// production and advanced at least 2).
	Nodes int `yaml:"nodes"`
	// DiskGB is the disk size in GB; 0 keeps the flavor's included storage.
	DiskGB int `yaml:"disk_gb"`
	// Extensions are created (CREATE EXTENSION) in every logical database.
	Extensions []string `yaml:"extensions"`
	// LogicalDatabases are the databases created in the cluster
	// (database_db.CLUSTER.NAME).
	LogicalDatabases []string `yaml:"logical_databases"`
	// Users are the database users (database_user.CLUSTER.NAME).
	Users map[string]*DatabaseUser `yaml:"users"`
	// AllowFrom is the IP allow-list: instance.NAME (the instance's public
	// IPv4 address) or a CIDR.
	AllowFrom []string `yaml:"allow_from"`
	// Protect refuses to destroy the cluster (and sets OVH's deletion
	// protection).
	Protect bool `yaml:"protect"`
	// OnDemand lets acco stop the cluster and start it again later. OVH
	// cannot stop a managed database, so stopping dumps it and deletes the
	// cluster, and starting re-creates and restores it.
	OnDemand bool `yaml:"on_demand"`
	// BackupTime is the daily backup time, HH:MM or HH:MM:SS (UTC).
	BackupTime string `yaml:"backup_time"`
	// MaintenanceTime is the daily maintenance window start, HH:MM or
	// HH:MM:SS (UTC).
	MaintenanceTime string `yaml:"maintenance_time"`
	// Timeouts bound how long acco waits for OVH operations.
	Timeouts Timeouts `yaml:"timeouts"`
}

// DatabaseUser is a user of a managed database cluster. Its password is
// generated by OVH and sealed in state.
type DatabaseUser struct {
	// Roles are OVH user roles; OVH offers only replication.
	Roles []string `yaml:"roles"`
	// Grants are the privileges acco grants inside the cluster.
	Grants []Grant `yaml:"grants"`
}

// HasRole reports whether the user has the given OVH role.
func (u *DatabaseUser) HasRole(role string) bool {
	if u == nil {
		return false
	}
	for _, r := range u.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// Grant is a set of privileges in one logical database. Its level follows
// from what it names: Tables set means table privileges; else Schema set
// means schema privileges; else database privileges.
type Grant struct {
	// Database is the logical database.
	Database string `yaml:"database"`
	// Schema, without Tables, grants schema privileges (usage, create).
	Schema string `yaml:"schema"`
	// Tables are table names, schema.table names, * or schema.* (every
	// table of the schema); schema public when none is named.
	Tables []string `yaml:"tables"`
	// Privileges are PostgreSQL privileges in lower case: connect, create,
	// temporary (database); usage, create (schema); select, insert, update,
	// delete, truncate, references, trigger (table); all (any level).
	Privileges []string `yaml:"privileges"`
}

// Timeouts bound the waits for OVH database operations.
type Timeouts struct {
	// Create defaults to 40m.
	Create time.Duration `yaml:"create"`
	// Update defaults to 40m.
	Update time.Duration `yaml:"update"`
	// Delete defaults to 20m.
	Delete time.Duration `yaml:"delete"`
}

// Services describes the services that run on the services host.
type Services struct {
	// Host names the instance the services run on.
	Host string `yaml:"host"`
	// Broker is the MQTT broker: emqx (default) or mosquitto (offline
	// tests; positions are then written by the backend).
	Broker string `yaml:"broker"`
	// Offline installs only what Debian's archive has, for hosts without
	// the internet beyond a Debian mirror (the local cloud's VMs): Node.js
	// from Debian instead of NodeSource, and no PowerSync (its image is on
	// Docker Hub). The broker must then be mosquitto.
	Offline bool `yaml:"offline"`
	// HealthTimeout bounds the wait for a restarted service to become
	// healthy (default 2m).
	HealthTimeout time.Duration `yaml:"health_timeout"`
	// EMQX configures EMQX; required when Broker is emqx.
	EMQX *EMQX `yaml:"emqx"`
	// Mosquitto configures Mosquitto; required when Broker is mosquitto.
	Mosquitto *Mosquitto `yaml:"mosquitto"`
	// PowerSync configures the PowerSync service.
	PowerSync *PowerSync `yaml:"powersync"`
	// Backend configures the Node.js backend.
	Backend *Backend `yaml:"backend"`
}

// Broker names.
const (
	BrokerEMQX      = "emqx"
	BrokerMosquitto = "mosquitto"
)

// EMQX configures the EMQX broker (Debian package emqx-enterprise, one node).
type EMQX struct {
	// Version is the EMQX version, at least 5.9 (the first with the
	// PostgreSQL sink in the free single-node edition), e.g. "5.10.4".
	Version string `yaml:"version"`
	// Edition is enterprise: from 5.9 EMQX ships one edition, packaged as
	// emqx-enterprise.
	Edition string `yaml:"edition"`
	// Listeners are the MQTT listeners, by name.
	Listeners map[string]*Listener `yaml:"listeners"`
	// Dashboard is the dashboard and REST API listener.
	Dashboard Dashboard `yaml:"dashboard"`
	// AllowAnonymous lets devices connect without credentials (never in
	// prod).
	AllowAnonymous bool `yaml:"allow_anonymous"`
	// DeviceAuth configures device authentication and authorization.
	DeviceAuth DeviceAuth `yaml:"device_auth"`
	// Positions is the rule that writes tracker positions to PostgreSQL.
	Positions *PositionsSink `yaml:"positions"`
	// AptKeyFingerprint pins the key of EMQX's packagecloud apt
	// repository (40 hex digits, spaces allowed). acco ships no
	// fingerprint for it, and configure refuses the downloaded key until
	// the operator, having checked it, sets this.
	AptKeyFingerprint string `yaml:"apt_key_fingerprint"`
}

// Listener is an MQTT listener.
type Listener struct {
	// Type is tcp, ssl, ws or wss.
	Type string `yaml:"type"`
	// Bind is the address to listen on (default 0.0.0.0).
	Bind string `yaml:"bind"`
	// Port is the TCP port.
	Port int `yaml:"port"`
	// TLS holds the certificate of ssl and wss listeners.
	TLS *TLSFiles `yaml:"tls"`
	// PublicPlaintext accepts, outside the test environment, a plain-text
	// listener (tcp or ws) whose port a security group of the services
	// host opens to the whole internet (0.0.0.0/0 or ::/0): device
	// credentials and positions then cross the internet in clear.
	PublicPlaintext bool `yaml:"public_plaintext"`
}

// PlainText reports whether the listener carries MQTT without TLS.
func (l *Listener) PlainText() bool { return l.Type == "tcp" || l.Type == "ws" }

// TLSFiles are local PEM files uploaded to the host for a TLS listener. They
// are read when configuring, not when validating.
type TLSFiles struct {
	// CertFile is the certificate chain.
	CertFile string `yaml:"cert_file" spec:"env"`
	// KeyFile is the private key.
	KeyFile string `yaml:"key_file" spec:"env"`
	// CAFile, when set, makes the listener require client certificates
	// signed by it.
	CAFile string `yaml:"ca_file" spec:"env"`
}

// Dashboard is the EMQX dashboard and REST API listener. Its admin password is
// generated by acco and sealed in state.
type Dashboard struct {
	// Bind defaults to 127.0.0.1: reach it through an SSH tunnel.
	Bind string `yaml:"bind"`
	// Port defaults to 18083.
	Port int `yaml:"port"`
}

// DeviceAuth configures how EMQX authenticates and authorizes devices.
type DeviceAuth struct {
	// Backend is built_in_database (default) or postgresql.
	Backend string `yaml:"backend"`
	// UserIDType is username (default) or clientid.
	UserIDType string `yaml:"user_id_type"`
	// PasswordHash is bcrypt (default), pbkdf2 or sha256.
	PasswordHash string `yaml:"password_hash"`
	// ACLNoMatch is what happens to a publish or subscribe no ACL rule
	// matches: deny (default) or allow.
	ACLNoMatch string `yaml:"acl_no_match"`
	// Postgres is where device credentials live when Backend is postgresql.
	Postgres *PostgresRef `yaml:"postgres"`
}

// PositionsSink is the EMQX rule and PostgreSQL action that insert tracker
// positions.
type PositionsSink struct {
	// Topic is the MQTT topic filter trackers publish positions to.
	Topic string `yaml:"topic"`
	// Postgres is the database and user the action writes with.
	Postgres PostgresRef `yaml:"postgres"`
	// Table is the positions table (a TimescaleDB hypertable), table or
	// schema.table.
	Table string `yaml:"table"`
	// LatestTable, when set, is a plain table upserted with each device's
	// last position (a hypertable cannot be replicated to PowerSync).
	LatestTable string `yaml:"latest_table"`
}

// PostgresRef names a logical database of a managed cluster and the user a
// service connects as.
type PostgresRef struct {
	// Cluster names the cluster (databases.NAME).
	Cluster string `yaml:"cluster"`
	// Database names the logical database.
	Database string `yaml:"database"`
	// User names the user.
	User string `yaml:"user"`
}

// String formats the reference as user@cluster/database.
func (r PostgresRef) String() string {
	return r.User + "@" + r.Cluster + "/" + r.Database
}

// Mosquitto configures the Mosquitto broker (Debian package), the
// alternative broker for offline tests.
type Mosquitto struct {
	// Listeners are the MQTT listeners, by name.
	Listeners map[string]*Listener `yaml:"listeners"`
	// AllowAnonymous lets devices connect without credentials (never in
	// prod).
	AllowAnonymous bool `yaml:"allow_anonymous"`
}

// PowerSync configures the PowerSync service, run from its container image by
// a systemd unit.
type PowerSync struct {
	// Image is the image repository (default journeyapps/powersync-service).
	Image string `yaml:"image"`
	// Tag is a pinned release tag, e.g. "1.25.0" (not latest).
	Tag string `yaml:"tag"`
	// Port is the HTTP port (default 8080).
	Port int `yaml:"port"`
	// Source is the replicated database; its user needs the replication
	// role and SELECT on Tables.
	Source PostgresRef `yaml:"source"`
	// Storage is the bucket storage database; its user needs CREATE on it
	// (PowerSync creates the schema powersync).
	Storage PostgresRef `yaml:"storage"`
	// Publication is the PostgreSQL publication; PowerSync requires the
	// name powersync (the default).
	Publication string `yaml:"publication"`
	// Tables are the published tables (table or schema.table). The list is
	// explicit: FOR ALL TABLES needs a superuser and breaks TimescaleDB.
	Tables []string `yaml:"tables"`
	// SSLMode is verify-full (default), verify-ca or disable.
	SSLMode string `yaml:"sslmode"`
	// ClientAuth configures how PowerSync checks app tokens.
	ClientAuth *ClientAuth `yaml:"client_auth"`
	// SyncRules is the application's sync config (PowerSync's sync rules
	// or sync streams: bucket_definitions or streams), a local YAML file
	// in the backend's repository, read when configuring; acco adds its
	// own bucket acco_verify, which only acco verify's token gets. "~/" is
	// the home directory; a relative path is relative to the environments
	// directory. Empty: the apps get no data (a warning says so).
	SyncRules string `yaml:"sync_rules" spec:"env"`
	// TLS, when set, puts a TLS reverse proxy (nginx from Debian's
	// archive) in front of PowerSync, which serves plain HTTP only: the
	// apps connect to TLS.Port, and Port need not be opened.
	TLS *ProxyTLS `yaml:"tls"`
	// PublicPlaintext accepts, outside the test environment, a security
	// group of the services host opening Port (plain HTTP: app tokens and
	// data in clear) to the whole internet.
	PublicPlaintext bool `yaml:"public_plaintext"`
}

// ProxyTLS is the TLS listener of the reverse proxy in front of a service
// and its certificate: local PEM files read when configuring, not when
// validating.
type ProxyTLS struct {
	// Port is the proxy's TLS port (default 443).
	Port int `yaml:"port"`
	// CertFile is the certificate chain.
	CertFile string `yaml:"cert_file" spec:"env"`
	// KeyFile is the private key.
	KeyFile string `yaml:"key_file" spec:"env"`
}

// ImageRef returns the image reference, repository:tag.
func (p *PowerSync) ImageRef() string {
	return p.Image + ":" + p.Tag
}

// ClientAuth configures PowerSync's JWT checks.
type ClientAuth struct {
	// JWKSURI is where PowerSync fetches the keys that sign app tokens.
	JWKSURI string `yaml:"jwks_uri"`
	// Audience are the accepted aud claims.
	Audience []string `yaml:"audience"`
}

// Backend configures the Node.js backend.
type Backend struct {
	// Artifact is a local .tar.gz or .tgz of the built backend, read when
	// configuring. "~/" is the home directory; a relative path is relative
	// to the environments directory.
	Artifact string `yaml:"artifact" spec:"env"`
	// Entrypoint is the script node runs, relative to the unpacked
	// artifact, e.g. dist/server.js.
	Entrypoint string `yaml:"entrypoint"`
	// NodeVersion is the Node.js major version (20 or later).
	NodeVersion int `yaml:"node_version"`
	// Bind is the address the backend listens on (default 127.0.0.1).
	Bind string `yaml:"bind"`
	// Port is the HTTP port (default 3000).
	Port int `yaml:"port"`
	// Postgres is the database and user of the backend.
	Postgres PostgresRef `yaml:"postgres"`
	// Env are extra environment variables of the unit. acco sets HOST,
	// PORT, DATABASE_URL, the MQTT_* variables and the positions tables
	// itself.
	Env map[string]string `yaml:"env" spec:"env"`
	// VerifyURLPath is the backend's HTTP path that `acco verify` asks
	// for the last position the backend saw of a device; {device} stands
	// for the device's name, e.g. /devices/{device}/last-position. Empty:
	// verify does not check the backend.
	VerifyURLPath string `yaml:"verify_url_path"`
	// InstallScripts lets the dependencies' install scripts run when the
	// host runs npm ci (for packages that build native code): npm then
	// runs as the backend's service user in a staging directory it owns,
	// which is given back to root before it goes live. Default false: npm
	// ci --ignore-scripts, as root.
	InstallScripts bool `yaml:"install_scripts"`
}

// Resource kinds, the first element of an address (KIND.NAME).
const (
	KindKeypair       = "keypair"
	KindSecurityGroup = "security_group"
	KindInstance      = "instance"
	KindDatabase      = "database"
	KindDatabaseUser  = "database_user"
	KindDatabaseDB    = "database_db"
	// KindDatabaseAdmin is a cluster's admin login (avnadmin), recorded by
	// configure for the database bootstrap and forgotten with the cluster.
	KindDatabaseAdmin = "database_admin"
	// KindSecret holds secrets acco generated (configure's service secrets).
	KindSecret = "secret"
)

// Address joins a kind and names into a resource address such as
// instance.app or database_user.main.emqx.
func Address(kind string, names ...string) string {
	return strings.Join(append([]string{kind}, names...), ".")
}
