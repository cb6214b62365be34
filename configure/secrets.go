package configure

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/state"
)

// State resources that configure keeps, next to what provisioning records.
// Provisioning leaves resources of kinds it does not manage alone.
const (
	// KindSecret is a resource holding secrets acco generated itself.
	KindSecret = spec.KindSecret
	// ServiceSecretsAddress holds the services' generated secrets: the EMQX
	// dashboard password and Erlang cookie, the PowerSync API token and the
	// backend's MQTT password.
	ServiceSecretsAddress = KindSecret + ".services"
	// KindDatabaseAdmin is a cluster's admin login (avnadmin on OVH): its
	// user ID and sealed password, for the database bootstrap.
	KindDatabaseAdmin = spec.KindDatabaseAdmin
)

// Names of the generated service secrets in ServiceSecretsAddress.
const (
	SecretEMQXDashboardPassword = "emqx_dashboard_password"
	SecretEMQXCookie            = "emqx_cookie"
	SecretPowerSyncAPIToken     = "powersync_api_token"
	SecretMQTTBackendPassword   = "mqtt_backend_password"
	// SecretVerifyDevicePassword is the MQTT password of the device acco
	// verify publishes as (devicecred.VerifyDevice).
	SecretVerifyDevicePassword = "mqtt_verify_device_password"
	// SecretPowerSyncVerifyKey seeds the Ed25519 key acco verify signs its
	// PowerSync client token with (its public half is in client_auth).
	SecretPowerSyncVerifyKey = "powersync_verify_key"
)

// serviceSecretNames are the secrets of ServiceSecretsAddress, in order.
var serviceSecretNames = []string{SecretEMQXCookie, SecretEMQXDashboardPassword, SecretMQTTBackendPassword, SecretPowerSyncAPIToken, SecretVerifyDevicePassword, SecretPowerSyncVerifyKey}

// ServiceSecretNames returns the names of the generated service secrets, in
// order.
func ServiceSecretNames() []string { return slices.Clone(serviceSecretNames) }

// AttrGenerated is the attribute of ServiceSecretsAddress that maps each
// secret's name to when it was generated or last rotated (RFC 3339, UTC).
// States written before it have none: the age of their secrets is unknown.
const AttrGenerated = "generated"

// AttrRotated is the attribute of a database user or admin that records
// when acco last rotated its password (RFC 3339, UTC).
const AttrRotated = "rotated"

// GeneratedAt returns when the secret name of r (the ServiceSecretsAddress
// resource) was generated or last rotated, or false when state does not
// say.
func GeneratedAt(r *state.Resource, name string) (time.Time, bool) {
	m, _ := r.Attributes[AttrGenerated].(map[string]any)
	return parseTime(m[name])
}

// RotatedAt returns the time recorded in r's AttrRotated attribute, or
// false when there is none.
func RotatedAt(r *state.Resource) (time.Time, bool) {
	return parseTime(r.Attributes[AttrRotated])
}

func parseTime(v any) (time.Time, bool) {
	s, _ := v.(string)
	t, err := time.Parse(time.RFC3339, s)
	return t, err == nil
}

// ErrNoAdminPassword tells that a cluster's admin password is not in state
// yet: only an apply run (not --check) resets it and records it.
var ErrNoAdminPassword = errors.New("the cluster's admin password is not in state yet")

// StateSecrets reads and records the secrets configure needs, sealed in
// state. Save persists the state (the caller writes it to its store);
// Check makes every method read-only: what is missing is generated for the
// run but neither recorded nor reset.
type StateSecrets struct {
	State  *state.State
	Sealer *state.Sealer
	Save   func(ctx context.Context) error
	Check  bool
	// Now is the clock of the recorded times (nil: time.Now).
	Now func() time.Time
}

// ServiceSecrets returns the generated service secrets by name, generating
// and recording the missing ones.
func (s *StateSecrets) ServiceSecrets(ctx context.Context) (map[string]string, error) {
	r, ok := s.State.Resource(ServiceSecretsAddress)
	res := s.servicesCopy(r, ok)
	out := map[string]string{}
	added := false
	for _, name := range serviceSecretNames {
		aad := ServiceSecretsAddress + "/" + name
		if sealed, ok := res.Secrets[name]; ok {
			v, err := s.Sealer.Open(sealed, aad)
			if err != nil {
				return nil, err
			}
			out[name] = v
			continue
		}
		v, err := NewSecret()
		if err != nil {
			return nil, err
		}
		out[name] = v
		if s.Check {
			continue
		}
		if res.Secrets[name], err = s.Sealer.Seal(v, aad); err != nil {
			return nil, err
		}
		setGenerated(&res, name, s.now())
		added = true
	}
	if added {
		s.State.SetResource(res)
		if err := s.save(ctx); err != nil {
			return nil, fmt.Errorf("recording the generated service secrets: %w", err)
		}
	}
	return out, nil
}

// RotateServiceSecrets gives the named service secrets new values, sealed
// and recorded in state (with the time) in one write. The services that use
// them get the new values at the next configure.
func (s *StateSecrets) RotateServiceSecrets(ctx context.Context, names []string) error {
	if s.Check {
		return errors.New("rotating secrets records them: not in check mode")
	}
	r, ok := s.State.Resource(ServiceSecretsAddress)
	res := s.servicesCopy(r, ok)
	for _, name := range names {
		if !slices.Contains(serviceSecretNames, name) {
			return fmt.Errorf("%s is not a service secret (they are %s)", name, strings.Join(serviceSecretNames, ", "))
		}
		v, err := NewSecret()
		if err != nil {
			return err
		}
		if res.Secrets[name], err = s.Sealer.Seal(v, ServiceSecretsAddress+"/"+name); err != nil {
			return err
		}
		setGenerated(&res, name, s.now())
	}
	s.State.SetResource(res)
	if err := s.save(ctx); err != nil {
		return fmt.Errorf("recording the rotated service secrets: %w", err)
	}
	return nil
}

// servicesCopy returns a copy of the ServiceSecretsAddress resource r (a
// new one when !ok) whose maps may be changed.
func (s *StateSecrets) servicesCopy(r *state.Resource, ok bool) state.Resource {
	res := state.Resource{Address: ServiceSecretsAddress, Kind: KindSecret, ID: "services"}
	if ok {
		res = *r
	}
	res.Secrets = maps.Clone(res.Secrets)
	if res.Secrets == nil {
		res.Secrets = map[string]string{}
	}
	res.Attributes = maps.Clone(res.Attributes)
	return res
}

// setGenerated records in res when its secret name was generated.
func setGenerated(res *state.Resource, name string, t time.Time) {
	if res.Attributes == nil {
		res.Attributes = map[string]any{}
	}
	m, _ := res.Attributes[AttrGenerated].(map[string]any)
	m = maps.Clone(m)
	if m == nil {
		m = map[string]any{}
	}
	m[name] = t.UTC().Format(time.RFC3339)
	res.Attributes[AttrGenerated] = m
}

func (s *StateSecrets) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// UserPasswords returns the database users' passwords by "cluster.user",
// unsealed from the database_user resources provisioning recorded.
func (s *StateSecrets) UserPasswords() (map[string]string, error) {
	out := map[string]string{}
	prefix := spec.KindDatabaseUser + "."
	for _, r := range s.State.Resources {
		if r.Kind != spec.KindDatabaseUser {
			continue
		}
		sealed, ok := r.Secrets["password"]
		if !ok {
			continue
		}
		v, err := s.Sealer.Open(sealed, r.Address+"/password")
		if err != nil {
			return nil, err
		}
		out[strings.TrimPrefix(r.Address, prefix)] = v
	}
	return out, nil
}

// AdminPassword returns the admin password of the cluster (its address's
// NAME, live ID clusterID). When state has none for that cluster ID, reset
// gives the admin a new password (returning the admin's user ID and the
// password), which is sealed and recorded; in check mode the error wraps
// ErrNoAdminPassword instead.
func (s *StateSecrets) AdminPassword(ctx context.Context, cluster, clusterID string, reset func(ctx context.Context) (userID, password string, err error)) (string, error) {
	addr := KindDatabaseAdmin + "." + cluster
	aad := addr + "/password"
	if r, ok := s.State.Resource(addr); ok && r.Secrets["password"] != "" {
		if id, _ := r.Attributes["cluster_id"].(string); id == clusterID {
			return s.Sealer.Open(r.Secrets["password"], aad)
		}
	}
	if s.Check {
		return "", fmt.Errorf("%s: %w", addr, ErrNoAdminPassword)
	}
	userID, password, err := reset(ctx)
	if err != nil {
		return "", err
	}
	sealed, err := s.Sealer.Seal(password, aad)
	if err != nil {
		return "", err
	}
	s.State.SetResource(state.Resource{
		Address: addr, Kind: KindDatabaseAdmin, ID: userID,
		Attributes: map[string]any{"cluster": spec.KindDatabase + "." + cluster, "cluster_id": clusterID, AttrRotated: s.now().UTC().Format(time.RFC3339)},
		Secrets:    map[string]string{"password": sealed},
		DependsOn:  []string{spec.KindDatabase + "." + cluster},
	})
	if err := s.save(ctx); err != nil {
		return "", fmt.Errorf("recording the admin password of %s (it was reset: the next run resets it again): %w", addr, err)
	}
	return password, nil
}

func (s *StateSecrets) save(ctx context.Context) error {
	if s.Save == nil {
		return nil
	}
	return s.Save(ctx)
}

// NewSecret returns a random secret of 26 characters (128 bits) from
// A-Z and 2-7, with at least one letter and one digit, so that it suits
// every place it goes (EMQX's password rules, an Erlang cookie, HOCON, YAML,
// URLs and environment files) without quoting.
func NewSecret() (string, error) {
	for {
		v := rand.Text()
		if strings.ContainsAny(v, "234567") && strings.ContainsAny(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
			return v, nil
		}
	}
}
