package spec

import "time"

// Default values that Load fills in when the YAML leaves a key out. They are
// facts of the platform or of the services rather than choices; the choices
// live in environments/defaults.yaml.
const (
	DefaultNetwork        = "Ext-Net"                       // OVH's public network
	DefaultSSHUser        = "debian"                        // login user of OVH's Debian images
	DefaultEngine         = "postgresql"                    // the only engine acco manages
	DefaultBroker         = BrokerEMQX                      // production broker
	DefaultHealthTimeout  = 2 * time.Minute                 // wait for a restarted service
	DefaultCreateTimeout  = 40 * time.Minute                // OVH cluster creation can take 20+ minutes
	DefaultUpdateTimeout  = 40 * time.Minute                // plan and flavor changes migrate data
	DefaultDeleteTimeout  = 20 * time.Minute                // OVH cluster deletion
	DefaultEMQXEdition    = "enterprise"                    // the only edition from EMQX 5.9
	DefaultListenerBind   = "0.0.0.0"                       // MQTT listeners face the trackers
	DefaultDashboardBind  = "127.0.0.1"                     // reach the dashboard through SSH
	DefaultDashboardPort  = 18083                           // EMQX's dashboard and REST API port
	DefaultAuthBackend    = "built_in_database"             // EMQX's own user table
	DefaultUserIDType     = "username"                      // devices log in by user name
	DefaultPasswordHash   = "bcrypt"                        // EMQX's strongest built-in hash
	DefaultACLNoMatch     = "deny"                          // EMQX's default is allow
	DefaultPowerSyncImage = "journeyapps/powersync-service" // the published image
	DefaultPowerSyncPort  = 8080                            // PowerSync's default port
	DefaultProxyTLSPort   = 443                             // HTTPS, in front of PowerSync
	DefaultPublication    = "powersync"                     // the only name PowerSync accepts
	DefaultSSLMode        = "verify-full"                   // PowerSync's default
	DefaultBackendBind    = "127.0.0.1"                     // behind the host, not exposed
	DefaultBackendPort    = 3000                            // the backend's HTTP port
)

// applyDefaults fills the keys the YAML left out with the Default values.
func (e *Environment) applyDefaults() {
	for _, in := range e.Instances {
		setDefault(&in.Network, DefaultNetwork)
		setDefault(&in.SSHUser, DefaultSSHUser)
	}
	for _, db := range e.Databases {
		setDefault(&db.Engine, DefaultEngine)
		setDefault(&db.Timeouts.Create, DefaultCreateTimeout)
		setDefault(&db.Timeouts.Update, DefaultUpdateTimeout)
		setDefault(&db.Timeouts.Delete, DefaultDeleteTimeout)
	}
	s := &e.Services
	setDefault(&s.Broker, DefaultBroker)
	setDefault(&s.HealthTimeout, DefaultHealthTimeout)
	if m := s.EMQX; m != nil {
		setDefault(&m.Edition, DefaultEMQXEdition)
		listenerDefaults(m.Listeners)
		setDefault(&m.Dashboard.Bind, DefaultDashboardBind)
		setDefault(&m.Dashboard.Port, DefaultDashboardPort)
		setDefault(&m.DeviceAuth.Backend, DefaultAuthBackend)
		setDefault(&m.DeviceAuth.UserIDType, DefaultUserIDType)
		setDefault(&m.DeviceAuth.PasswordHash, DefaultPasswordHash)
		setDefault(&m.DeviceAuth.ACLNoMatch, DefaultACLNoMatch)
	}
	if m := s.Mosquitto; m != nil {
		listenerDefaults(m.Listeners)
	}
	if p := s.PowerSync; p != nil {
		setDefault(&p.Image, DefaultPowerSyncImage)
		setDefault(&p.Port, DefaultPowerSyncPort)
		setDefault(&p.Publication, DefaultPublication)
		setDefault(&p.SSLMode, DefaultSSLMode)
		if p.TLS != nil {
			setDefault(&p.TLS.Port, DefaultProxyTLSPort)
		}
	}
	if b := s.Backend; b != nil {
		setDefault(&b.Bind, DefaultBackendBind)
		setDefault(&b.Port, DefaultBackendPort)
	}
}

func listenerDefaults(ls map[string]*Listener) {
	for _, l := range ls {
		setDefault(&l.Bind, DefaultListenerBind)
	}
}

func setDefault[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}
