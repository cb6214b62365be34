package flows

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/accoreboot/acco/configure"
	"github.com/accoreboot/acco/provision"
	"github.com/accoreboot/acco/state"
)

// TestSecretUses: where each secret goes, as rendering the services of
// each shipped environment shows it.
func TestSecretUses(t *testing.T) {
	for _, tc := range []struct {
		env  string
		name string
		want []string
	}{
		{"local", configure.SecretMQTTBackendPassword, []string{"host.app:file:/etc/acco/backend.env", "host.app:unit:acco-backend.service", "database_db.main.acco:mqtt_users:backend", "host.app:file:/etc/mosquitto/acco.passwd", "host.app:unit:mosquitto.service (reload)"}},
		{"local", configure.SecretVerifyDevicePassword, []string{"database_db.main.acco:mqtt_users:acco-verify", "host.app:file:/etc/mosquitto/acco.passwd", "host.app:unit:mosquitto.service (reload)", "acco verify"}},
		{"local", "database_user.main.backend", []string{"host.app:file:/etc/acco/backend.env", "host.app:unit:acco-backend.service"}},
		{"local", "database_admin.main", []string{"acco configure (database bootstrap)"}},
		{"test", configure.SecretEMQXCookie, []string{"host.app:unit:emqx.service"}},
		{"test", configure.SecretPowerSyncVerifyKey, []string{"host.app:unit:powersync.service", "acco verify"}},
		{"test", "database_user.main.emqx", []string{"host.app:unit:emqx.service"}},
		{"test", "database_user.main.powersync", []string{"host.app:unit:powersync.service"}},
	} {
		uses, err := SecretUses(loadEnv(t, tc.env))
		if err != nil {
			t.Fatalf("%s: %v", tc.env, err)
		}
		got := uses[tc.name]
		for _, w := range tc.want {
			if !slices.Contains(got, w) {
				t.Errorf("%s: %s is used by %q, want %s among them", tc.env, tc.name, got, w)
			}
		}
	}
	// Sync rules the YAML names need not be read to know the uses.
	withRules := loadEnv(t, "test")
	withRules.Services.PowerSync.SyncRules = "../backend/sync-rules.yaml"
	if uses, err := SecretUses(withRules); err != nil || len(uses[configure.SecretPowerSyncVerifyKey]) < 2 {
		t.Errorf("with sync rules: %v, %v", uses, err)
	}
	// Every generated service secret of the environments with EMQX and
	// PowerSync is used.
	for _, e := range []string{"test", "preprod", "prod"} {
		uses, err := SecretUses(loadEnv(t, e))
		if err != nil {
			t.Fatalf("%s: %v", e, err)
		}
		for _, n := range configure.ServiceSecretNames() {
			if len(uses[n]) == 0 {
				t.Errorf("%s: %s is used nowhere", e, n)
			}
		}
	}
}

func testSealer(t *testing.T) *state.Sealer {
	t.Helper()
	s, err := state.NewSealer("8nQ/IiUhDnPlZcSCguaw/0fRDv0E0zs8sVpo+yuBSok=")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRotateServiceSecret: a rotated service secret has a new value and a
// new time in state, the others keep theirs, and ListSecrets shows ages
// (unknown for a state written before ages were recorded).
func TestRotateServiceSecret(t *testing.T) {
	ctx := context.Background()
	env := loadEnv(t, "local")
	store := state.NewStore(state.NewDirBlob(t.TempDir()))
	st := state.New("local", "test")
	if _, err := store.Write(ctx, "local", st, ""); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s, err := Open(ctx, env, store, testSealer(t), provision.Clients{}, false)
	if err != nil {
		t.Fatal(err)
	}
	s.Now = func() time.Time { return t0 }
	sec := s.Secrets()
	sec.Now = s.Now
	before, err := sec.ServiceSecrets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// An older state: no recorded time for one secret.
	r, _ := s.State.Resource(configure.ServiceSecretsAddress)
	delete(r.Attributes[configure.AttrGenerated].(map[string]any), configure.SecretEMQXCookie)

	t1 := t0.Add(48 * time.Hour)
	s.Now = func() time.Time { return t1 }
	got, err := s.Rotate(ctx, []string{configure.SecretMQTTBackendPassword})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != configure.SecretMQTTBackendPassword || !got[0].Since.Equal(t1) {
		t.Fatalf("rotated %+v", got)
	}

	// Read back from the store: what was written.
	s2, err := Open(ctx, env, store, testSealer(t), provision.Clients{}, true)
	if err != nil {
		t.Fatal(err)
	}
	after, err := s2.Secrets().ServiceSecrets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range before {
		changed := after[name] != v
		if changed != (name == configure.SecretMQTTBackendPassword) {
			t.Errorf("%s changed: %v", name, changed)
		}
	}
	list, err := ListSecrets(env, s2.State)
	if err != nil {
		t.Fatal(err)
	}
	since := map[string]string{}
	for _, i := range list {
		since[i.Name] = "unknown"
		if i.Since != nil {
			since[i.Name] = i.Since.Format(time.RFC3339)
		}
	}
	want := map[string]string{
		configure.SecretMQTTBackendPassword:   t1.Format(time.RFC3339),
		configure.SecretEMQXCookie:            "unknown",
		configure.SecretEMQXDashboardPassword: t0.Format(time.RFC3339),
	}
	for n, w := range want {
		if since[n] != w {
			t.Errorf("%s since %s, want %s", n, since[n], w)
		}
	}

	// An unknown name is refused with a suggestion, and nothing changes.
	_, err = s.Rotate(ctx, []string{"mqtt_backend"})
	var h *HintError
	if err == nil || !strings.Contains(err.Error(), "no secret mqtt_backend") || !errorsAs(err, &h) || !strings.Contains(h.Hint(), "did you mean mqtt_backend_password") {
		t.Fatalf("unknown name: %v", err)
	}
}

func errorsAs(err error, h **HintError) bool { return errors.As(err, h) }
