package flows

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/accoreboot/acco/configure"
	"github.com/accoreboot/acco/internal/devicecred"
	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/state"
	"github.com/accoreboot/acco/templates"
)

// Kinds of secrets in a SecretInfo.
const (
	// SecretKindService is a service secret acco generates
	// (configure.ServiceSecretsAddress).
	SecretKindService = "service"
	// SecretKindDatabaseUser is a database user's password, set by OVH.
	SecretKindDatabaseUser = spec.KindDatabaseUser
	// SecretKindDatabaseAdmin is a cluster's admin password, set by OVH.
	SecretKindDatabaseAdmin = spec.KindDatabaseAdmin
)

// SecretInfo describes one secret sealed in state, never its value.
type SecretInfo struct {
	// Name is what `acco secrets rotate` takes: a service secret's name
	// (mqtt_backend_password) or a database login's address
	// (database_user.main.backend, database_admin.main).
	Name string `json:"name"`
	// Kind is SecretKindService, SecretKindDatabaseUser or
	// SecretKindDatabaseAdmin.
	Kind string `json:"kind"`
	// Address is the state resource that holds it.
	Address string `json:"address"`
	// Since is when it was generated or last rotated; nil when state does
	// not say (states written before acco recorded it, or a password
	// provisioning reset).
	Since *time.Time `json:"since"`
	// UsedBy are what consumes it: host files (with the unit restarted when
	// they change), database rows and acco's own commands.
	UsedBy []string `json:"used_by"`
}

// ListSecrets returns the secrets sealed in the state st of env, sorted by
// name, with where each is used. It needs no key: no value is unsealed.
func ListSecrets(env *spec.Environment, st *state.State) ([]SecretInfo, error) {
	uses, err := SecretUses(env)
	if err != nil {
		return nil, err
	}
	var out []SecretInfo
	for _, r := range st.Resources {
		switch r.Kind {
		case configure.KindSecret:
			if r.Address != configure.ServiceSecretsAddress {
				continue
			}
			for _, name := range configure.ServiceSecretNames() {
				if _, ok := r.Secrets[name]; !ok {
					continue
				}
				info := SecretInfo{Name: name, Kind: SecretKindService, Address: r.Address, UsedBy: orEmpty(uses[name])}
				if t, ok := configure.GeneratedAt(&r, name); ok {
					info.Since = &t
				}
				out = append(out, info)
			}
		case spec.KindDatabaseUser, spec.KindDatabaseAdmin:
			if _, ok := r.Secrets["password"]; !ok {
				continue
			}
			info := SecretInfo{Name: r.Address, Kind: r.Kind, Address: r.Address, UsedBy: orEmpty(uses[r.Address])}
			if t, ok := configure.RotatedAt(&r); ok {
				info.Since = &t
			}
			out = append(out, info)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// SecretUses maps each secret of env (a service secret's name, a database
// login's address) to what consumes it. Host files are found by rendering
// the services with a distinct value for every secret and looking for
// each value in every file, so the answer follows the templates; the
// database rows and acco's own uses are added by name.
func SecretUses(env *spec.Environment) (map[string][]string, error) {
	values := map[string]string{}
	next := func(name string) (string, error) {
		v, err := configure.NewSecret()
		values[name] = v
		return v, err
	}
	var in templates.Inputs
	svc := map[string]string{}
	for _, name := range configure.ServiceSecretNames() {
		v, err := next(name)
		if err != nil {
			return nil, err
		}
		svc[name] = v
	}
	in.EMQXDashboardPassword = svc[configure.SecretEMQXDashboardPassword]
	in.EMQXCookie = svc[configure.SecretEMQXCookie]
	in.PowerSyncAPIToken = svc[configure.SecretPowerSyncAPIToken]
	in.MQTTBackendPassword = svc[configure.SecretMQTTBackendPassword]
	in.PowerSyncVerifyKey = powerSyncKey(svc[configure.SecretPowerSyncVerifyKey]).Public().(ed25519.PublicKey)
	// The verify key is in the files as its public half.
	values[configure.SecretPowerSyncVerifyKey] = base64.RawURLEncoding.EncodeToString(in.PowerSyncVerifyKey)

	in.Databases = map[string]templates.DB{}
	in.Passwords = map[string]string{}
	for _, c := range slices.Sorted(maps.Keys(env.Databases)) {
		in.Databases[c] = templates.DB{Host: "db.invalid", Port: 5432, CACert: "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n"}
		for _, u := range slices.Sorted(maps.Keys(env.Databases[c].Users)) {
			v, err := next(spec.Address(spec.KindDatabaseUser, c, u))
			if err != nil {
				return nil, err
			}
			in.Passwords[c+"."+u] = v
		}
	}
	// Certificates are not secrets acco generates; any value renders.
	in.TLS = map[string]templates.TLS{}
	for name, l := range env.BrokerListeners() {
		if l != nil && l.TLS != nil {
			in.TLS[name] = templates.TLS{Cert: "cert", Key: "key", CA: "ca"}
		}
	}
	in.PowerSyncTLS = templates.TLS{Cert: "cert", Key: "key"}
	if ps := env.Services.PowerSync; ps != nil && ps.SyncRules != "" {
		in.SyncRules = &templates.SyncRules{File: ps.SyncRules, Content: []byte("bucket_definitions: {}\n")}
	}
	d, err := configure.Services(env, in, configure.ServicesOptions{NoArtifact: true})
	if err != nil {
		return nil, fmt.Errorf("rendering the services of %s to see where each secret goes: %w", env.Name, err)
	}
	host := env.Services.Host
	uses := map[string][]string{}
	for _, name := range slices.Sorted(maps.Keys(values)) {
		v := []byte(values[name])
		seen := map[string]bool{}
		add := func(s string) {
			if !seen[s] {
				seen[s] = true
				uses[name] = append(uses[name], s)
			}
		}
		for _, f := range d.Files {
			if !bytes.Contains(f.Content, v) {
				continue
			}
			add(configure.Address(host, configure.KindFile, f.Path))
			if f.Restart != "" {
				add(configure.Address(host, configure.KindUnit, f.Restart))
			}
		}
	}
	if f := env.DataFlow(); f != nil && f.HasDevices {
		table := fmt.Sprintf("database_db.%s.%s:%s", f.Devices.Cluster, f.Devices.Database, devicecred.Table)
		uses[configure.SecretMQTTBackendPassword] = append(uses[configure.SecretMQTTBackendPassword], table+":"+devicecred.BackendUser)
		uses[configure.SecretVerifyDevicePassword] = append(uses[configure.SecretVerifyDevicePassword], table+":"+devicecred.VerifyDevice)
		if env.Services.Broker == spec.BrokerMosquitto {
			// Mosquitto's password file holds the rows' hashes, made
			// from the table at every configure; Mosquitto reloads it.
			for _, n := range []string{configure.SecretMQTTBackendPassword, configure.SecretVerifyDevicePassword} {
				uses[n] = append(uses[n], configure.Address(host, configure.KindFile, configure.MosquittoPasswdPath), configure.Address(host, configure.KindUnit, templates.UnitMosquitto)+" (reload)")
			}
		}
	}
	uses[configure.SecretVerifyDevicePassword] = append(uses[configure.SecretVerifyDevicePassword], "acco verify")
	if env.Services.PowerSync != nil {
		uses[configure.SecretPowerSyncVerifyKey] = append(uses[configure.SecretPowerSyncVerifyKey], "acco verify")
	}
	for _, c := range slices.Sorted(maps.Keys(env.Databases)) {
		addr := spec.Address(spec.KindDatabaseAdmin, c)
		uses[addr] = append(uses[addr], "acco configure (database bootstrap)")
	}
	return uses, nil
}

// Rotated is one secret given a new value by Rotate.
type Rotated struct {
	// Name is the secret's name as SecretInfo has it.
	Name string `json:"name"`
	// Kind is the secret's kind as SecretInfo has it.
	Kind string `json:"kind"`
	// Since is when the new value was recorded.
	Since time.Time `json:"since"`
}

// Rotate gives the named secrets (as ListSecrets names them) new values
// and records them in state, sealed; every name must be listed. Service
// secrets are generated and recorded in one state write. A database login's
// password is reset through the OVH API, which is its source of truth, and
// recorded at once, login by login: a run that dies between the reset and
// the write loses the new password, and rotating that login again (or
// acco apply, which resets a login without a password) recovers it.
// Nothing on the host changes: configure then renders the new values and
// restarts the services that use them.
func (s *Session) Rotate(ctx context.Context, names []string) ([]Rotated, error) {
	if s.ReadOnly {
		return nil, errors.New("rotating secrets records them: the session is read-only")
	}
	list, err := ListSecrets(s.Env, s.State)
	if err != nil {
		return nil, err
	}
	known := map[string]SecretInfo{}
	for _, i := range list {
		known[i.Name] = i
	}
	var service []string
	var logins []SecretInfo
	for _, n := range names {
		i, ok := known[n]
		if !ok {
			return nil, unknownSecret(s.Env.Name, n, list)
		}
		if i.Kind == SecretKindService {
			service = append(service, n)
		} else {
			logins = append(logins, i)
		}
	}
	now := s.now().UTC().Truncate(time.Second) // as recorded (RFC 3339)
	var out []Rotated
	if len(service) > 0 {
		sec := s.Secrets()
		sec.Now = func() time.Time { return now }
		if err := sec.RotateServiceSecrets(ctx, service); err != nil {
			return out, err
		}
		for _, n := range service {
			out = append(out, Rotated{Name: n, Kind: SecretKindService, Since: now.UTC()})
		}
	}
	for _, i := range logins {
		if err := s.resetLogin(ctx, i.Address, now); err != nil {
			return out, err
		}
		out = append(out, Rotated{Name: i.Name, Kind: i.Kind, Since: now.UTC()})
	}
	return out, nil
}

// resetLogin resets the password of the database login at addr (a
// database_user or database_admin resource) through the OVH API and seals
// the new one in state.
func (s *Session) resetLogin(ctx context.Context, addr string, now time.Time) error {
	r, ok := s.State.Resource(addr)
	if !ok {
		return fmt.Errorf("%s is not in the state of %s", addr, s.Env.Name)
	}
	res := *r
	cluster, _ := res.Attributes["cluster"].(string)
	c, ok := s.State.Resource(cluster)
	if !ok || c.ID == "" {
		return withHint(fmt.Errorf("%s: its cluster %q is not in the state of %s", addr, cluster, s.Env.Name), "acco apply %s records it", s.Env.Name)
	}
	if res.Kind == spec.KindDatabaseAdmin {
		if id, _ := res.Attributes["cluster_id"].(string); id != c.ID {
			return withHint(fmt.Errorf("%s belongs to an older cluster than %s", addr, cluster), "acco configure %s resets and records the admin of the cluster in state", s.Env.Name)
		}
	}
	u, err := s.Clients.DB.ResetPassword(ctx, c.ID, res.ID)
	if err != nil {
		return fmt.Errorf("resetting the password of %s: %w", addr, err)
	}
	if u.Password == "" {
		return fmt.Errorf("resetting the password of %s: OVH returned no password", addr)
	}
	sealed, err := s.Sealer.Seal(u.Password, addr+"/password")
	if err != nil {
		return fmt.Errorf("sealing the password of %s: %w", addr, err)
	}
	res.Secrets = maps.Clone(res.Secrets)
	res.Secrets["password"] = sealed
	res.Attributes = maps.Clone(res.Attributes)
	res.Attributes[configure.AttrRotated] = now.UTC().Format(time.RFC3339)
	s.State.SetResource(res)
	if err := s.Save(ctx); err != nil {
		return withHint(fmt.Errorf("recording the new password of %s (OVH has reset it): %w", addr, err),
			"rotate it again once state can be written: acco secrets rotate %s %s", s.Env.Name, addr)
	}
	return nil
}

// unknownSecret is the error for a name that is not a secret of state.
func unknownSecret(env, name string, list []SecretInfo) error {
	var names []string
	for _, i := range list {
		names = append(names, i.Name)
	}
	if len(names) == 0 {
		return withHint(fmt.Errorf("%s has no secret %s: its state holds none yet", env, name), "acco apply %s and acco configure %s record them", env, env)
	}
	best := ""
	for _, n := range names {
		if strings.Contains(n, name) || strings.Contains(name, n) {
			best = n
			break
		}
	}
	if best != "" {
		return withHint(fmt.Errorf("%s has no secret %s", env, name), "did you mean %s? acco secrets list %s shows them all", best, env)
	}
	return withHint(fmt.Errorf("%s has no secret %s", env, name), "acco secrets list %s shows them: %s", env, strings.Join(names, ", "))
}

func (s *Session) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}
