package flows

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/accoreboot/acco/configure"
	"github.com/accoreboot/acco/internal/devicecred"
	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/state"
	"github.com/accoreboot/acco/templates"
)

// AdminUser is the admin login of OVH's managed PostgreSQL.
const AdminUser = "avnadmin"

// Inputs are what the services need beyond the YAML.
type Inputs struct {
	// Templates are the clusters' endpoints and CA, the database users'
	// passwords, the services' secrets and the listeners' certificates.
	Templates templates.Inputs
	// Admins are the clusters' admin logins for the database bootstrap,
	// by cluster name; nil when --check runs before the first configure
	// recorded them (Notes says so).
	Admins map[string]configure.DBAdmin
	// MQTTUsers are the MQTT users acco manages and their passwords (the
	// backend, the verification device).
	MQTTUsers map[string]string
	// Notes are things the operator should know.
	Notes []string

	// powerSyncKey signs acco verify's PowerSync client tokens.
	powerSyncKey ed25519.PrivateKey
}

// Secrets returns every secret of the inputs, for masking.
func (in *Inputs) Secrets() []string {
	s := in.Templates.Secrets()
	for _, a := range in.Admins {
		s = append(s, a.Password)
	}
	for _, pw := range in.MQTTUsers {
		s = append(s, pw)
	}
	return s
}

// Inputs gathers the inputs from state and the OVH API: each cluster's
// endpoint (state) and CA (OVH), the sealed passwords, the services'
// generated secrets (generated and recorded when missing, unless
// ReadOnly), the admin password (reset once through OVH and recorded) and
// the listeners' certificate files.
func (s *Session) Inputs(ctx context.Context) (*Inputs, error) {
	env := s.Env
	out := &Inputs{}
	in := &out.Templates
	secrets := s.Secrets()
	svc, err := secrets.ServiceSecrets(ctx)
	if err != nil {
		return nil, err
	}
	in.EMQXDashboardPassword = svc[configure.SecretEMQXDashboardPassword]
	in.EMQXCookie = svc[configure.SecretEMQXCookie]
	in.PowerSyncAPIToken = svc[configure.SecretPowerSyncAPIToken]
	in.MQTTBackendPassword = svc[configure.SecretMQTTBackendPassword]
	in.PowerSyncVerifyKey = powerSyncKey(svc[configure.SecretPowerSyncVerifyKey]).Public().(ed25519.PublicKey)
	out.powerSyncKey = powerSyncKey(svc[configure.SecretPowerSyncVerifyKey])
	out.MQTTUsers = map[string]string{
		devicecred.BackendUser:  svc[configure.SecretMQTTBackendPassword],
		devicecred.VerifyDevice: svc[configure.SecretVerifyDevicePassword],
	}
	if in.Passwords, err = secrets.UserPasswords(); err != nil {
		return nil, err
	}

	in.Databases = map[string]templates.DB{}
	out.Admins = map[string]configure.DBAdmin{}
	names := make([]string, 0, len(env.Databases))
	for n := range env.Databases {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		db, pw, err := s.clusterLogin(ctx, secrets, n)
		if errors.Is(err, configure.ErrNoAdminPassword) {
			addr := spec.Address(spec.KindDatabase, n)
			in.Databases[n] = db
			out.Notes = append(out.Notes, fmt.Sprintf("Note: the database bootstrap of %s is not checked: its admin password is reset and recorded by the first acco configure %s.", addr, env.Name))
			out.Admins = nil
			continue
		}
		if err != nil {
			return nil, err
		}
		in.Databases[n] = db
		if out.Admins != nil {
			out.Admins[n] = configure.DBAdmin{Host: db.Host, Port: db.Port, User: AdminUser, Password: pw, CACert: db.CACert}
		}
	}
	if in.TLS, err = listenerTLS(env); err != nil {
		return nil, err
	}
	if ps := env.Services.PowerSync; ps != nil && ps.SyncRules != "" {
		const key = "services.powersync.sync_rules"
		src, err := readLocal(env, key, ps.SyncRules)
		if err != nil {
			return nil, err
		}
		path, _ := env.LocalPath(ps.SyncRules)
		if err := templates.CheckSyncRules(path, []byte(src)); err != nil {
			return nil, err
		}
		in.SyncRules = &templates.SyncRules{File: path, Content: []byte(src)}
	}
	if ps := env.Services.PowerSync; ps != nil && ps.TLS != nil {
		const key = "services.powersync.tls."
		if in.PowerSyncTLS.Cert, err = readLocal(env, key+"cert_file", ps.TLS.CertFile); err != nil {
			return nil, err
		}
		if in.PowerSyncTLS.Key, err = readLocal(env, key+"key_file", ps.TLS.KeyFile); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// clusterLogin returns cluster n's endpoint and CA (from state and OVH) and
// its admin password: sealed in state, or reset once through OVH and
// recorded (unless the session is read-only: configure.ErrNoAdminPassword).
func (s *Session) clusterLogin(ctx context.Context, secrets *configure.StateSecrets, n string) (templates.DB, string, error) {
	env := s.Env
	addr := spec.Address(spec.KindDatabase, n)
	if rec, stopped := s.State.OnDemand[n]; stopped && rec.Status != state.ArchiveStarting {
		return templates.DB{}, "", withHint(fmt.Errorf("%s of %s is %s (on demand) since %s: the services have no database to use", addr, env.Name, rec.Status, rec.Since.UTC().Format("2006-01-02 15:04 UTC")),
			"start it first: acco db start %s %s (it configures the host too)", env.Name, n)
	}
	res, ok := s.State.Resource(addr)
	if !ok || res.Status == state.StatusTainted {
		return templates.DB{}, "", withHint(fmt.Errorf("%s is not ready in the state of %s", addr, env.Name), "create it first: acco apply %s", env.Name)
	}
	host, _ := res.Attributes["host"].(string)
	port := attrInt(res.Attributes["port"])
	if host == "" || port == 0 {
		return templates.DB{}, "", withHint(fmt.Errorf("%s has no endpoint in state yet", addr), "run acco apply %s to finish it", env.Name)
	}
	ca, err := s.Clients.DB.CACertificate(ctx, res.ID)
	if err != nil {
		return templates.DB{}, "", err
	}
	db := templates.DB{Host: host, Port: port, CACert: ca}
	clusterID := res.ID
	pw, err := secrets.AdminPassword(ctx, n, clusterID, func(ctx context.Context) (string, string, error) {
		users, err := s.Clients.DB.ListUsers(ctx, clusterID)
		if err != nil {
			return "", "", err
		}
		for _, u := range users {
			if u.Username == AdminUser {
				u2, err := s.Clients.DB.ResetPassword(ctx, clusterID, u.ID)
				if err != nil {
					return "", "", err
				}
				return u.ID, u2.Password, nil
			}
		}
		return "", "", fmt.Errorf("%s: cluster %s has no %s user", addr, clusterID, AdminUser)
	})
	return db, pw, err
}

// AdminLogin returns how acco logs in to cluster n as its admin (the
// password reset once through OVH and recorded when it is not yet), without
// the rest of the services' inputs.
func (s *Session) AdminLogin(ctx context.Context, n string) (configure.DBAdmin, error) {
	db, pw, err := s.clusterLogin(ctx, s.Secrets(), n)
	if err != nil {
		return configure.DBAdmin{}, err
	}
	return configure.DBAdmin{Host: db.Host, Port: db.Port, User: AdminUser, Password: pw, CACert: db.CACert}, nil
}

// readLocal reads a local file the YAML names at key (a path as LocalPath
// resolves it); "" reads nothing. Its error names the file and line of the
// key.
func readLocal(env *spec.Environment, key, p string) (string, error) {
	if p == "" {
		return "", nil
	}
	path, err := env.LocalPath(p)
	if err == nil {
		var b []byte
		if b, err = os.ReadFile(path); err == nil {
			return string(b), nil
		}
	}
	where := key
	if file, line, _ := env.Position(key); file != "" {
		where = fmt.Sprintf("%s:%d: %s", file, line, key)
	}
	return "", fmt.Errorf("%s: %w", where, err)
}

// listenerTLS reads the certificate files of the broker's TLS listeners.
func listenerTLS(env *spec.Environment) (map[string]templates.TLS, error) {
	var listeners map[string]*spec.Listener
	prefix := "services."
	switch s := env.Services; {
	case s.Broker == spec.BrokerEMQX && s.EMQX != nil:
		listeners, prefix = s.EMQX.Listeners, prefix+"emqx.listeners."
	case s.Broker == spec.BrokerMosquitto && s.Mosquitto != nil:
		listeners, prefix = s.Mosquitto.Listeners, prefix+"mosquitto.listeners."
	}
	out := map[string]templates.TLS{}
	for name, l := range listeners {
		if l == nil || l.TLS == nil {
			continue
		}
		read := func(key, p string) (string, error) {
			return readLocal(env, prefix+name+".tls."+key, p)
		}
		var t templates.TLS
		var err error
		if t.Cert, err = read("cert_file", l.TLS.CertFile); err != nil {
			return nil, err
		}
		if t.Key, err = read("key_file", l.TLS.KeyFile); err != nil {
			return nil, err
		}
		if t.CA, err = read("ca_file", l.TLS.CAFile); err != nil {
			return nil, err
		}
		out[name] = t
	}
	return out, nil
}
