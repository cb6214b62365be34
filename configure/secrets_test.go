package configure

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/accoreboot/acco/state"
)

func testSealer(t *testing.T) *state.Sealer {
	t.Helper()
	s, err := state.NewSealer("8nQ/IiUhDnPlZcSCguaw/0fRDv0E0zs8sVpo+yuBSok=")
	if err != nil {
		t.Fatal(err)
	}
	return s.For("test", "test-lineage")
}

func TestServiceSecretsGeneratedOnceAndSealed(t *testing.T) {
	ctx := context.Background()
	st := state.New("test", "dev")
	saves := 0
	s := &StateSecrets{State: st, Sealer: testSealer(t), Save: func(context.Context) error { saves++; return nil }}
	first, err := s.ServiceSecrets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if saves != 1 {
		t.Fatalf("saves = %d, want 1", saves)
	}
	for _, name := range serviceSecretNames {
		v := first[name]
		if len(v) != 26 || !strings.ContainsAny(v, "234567") {
			t.Errorf("%s = %q: want 26 characters with a digit", name, v)
		}
	}
	r, ok := st.Resource(ServiceSecretsAddress)
	if !ok {
		t.Fatal("secret.services not recorded")
	}
	for name, sealed := range r.Secrets {
		if !state.IsSealed(sealed) || strings.Contains(sealed, first[name]) {
			t.Errorf("%s is not sealed: %q", name, sealed)
		}
	}
	// A second run (a new process reading the same state) gets the same
	// values and writes nothing.
	again, err := (&StateSecrets{State: st, Sealer: testSealer(t), Save: s.Save}).ServiceSecrets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range serviceSecretNames {
		if again[name] != first[name] {
			t.Errorf("%s changed between runs", name)
		}
	}
	if saves != 1 {
		t.Errorf("saves = %d after a second run, want 1", saves)
	}
}

func TestCheckModeRecordsNothing(t *testing.T) {
	ctx := context.Background()
	st := state.New("test", "dev")
	s := &StateSecrets{State: st, Sealer: testSealer(t), Check: true, Save: func(context.Context) error {
		t.Fatal("check mode saved state")
		return nil
	}}
	v, err := s.ServiceSecrets(ctx)
	if err != nil || len(v) != len(serviceSecretNames) {
		t.Fatalf("ServiceSecrets = %v, %v", v, err)
	}
	if _, ok := st.Resource(ServiceSecretsAddress); ok {
		t.Error("check mode recorded secret.services")
	}
	_, err = s.AdminPassword(ctx, "main", "c1", func(context.Context) (string, string, error) {
		t.Fatal("check mode reset the admin password")
		return "", "", nil
	})
	if !errors.Is(err, ErrNoAdminPassword) {
		t.Errorf("AdminPassword in check mode: %v, want ErrNoAdminPassword", err)
	}
}

func TestAdminPasswordResetOncePerCluster(t *testing.T) {
	ctx := context.Background()
	st := state.New("test", "dev")
	resets := 0
	reset := func(context.Context) (string, string, error) {
		resets++
		return "u-admin", "pw-" + string(rune('0'+resets)), nil
	}
	s := &StateSecrets{State: st, Sealer: testSealer(t), Save: func(context.Context) error { return nil }}
	tests := []struct {
		name      string
		clusterID string
		want      string
		resets    int
	}{
		{"first run resets and records", "c1", "pw-1", 1},
		{"next run reads state", "c1", "pw-1", 1},
		{"a new cluster (replaced) is reset again", "c2", "pw-2", 2},
		{"and then read", "c2", "pw-2", 2},
	}
	for _, tt := range tests {
		got, err := s.AdminPassword(ctx, "main", tt.clusterID, reset)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got != tt.want || resets != tt.resets {
			t.Errorf("%s: password %q after %d resets, want %q after %d", tt.name, got, resets, tt.want, tt.resets)
		}
	}
	r, _ := st.Resource(KindDatabaseAdmin + ".main")
	if r.ID != "u-admin" || !state.IsSealed(r.Secrets["password"]) {
		t.Errorf("recorded %+v", r)
	}
	// A reset that fails records nothing.
	failing := func(context.Context) (string, string, error) { return "", "", errors.New("OVH says no") }
	if _, err := s.AdminPassword(ctx, "other", "c9", failing); err == nil || !strings.Contains(err.Error(), "OVH says no") {
		t.Errorf("failed reset: %v", err)
	}
	if _, ok := st.Resource(KindDatabaseAdmin + ".other"); ok {
		t.Error("a failed reset was recorded")
	}
}

func TestUserPasswordsUnsealed(t *testing.T) {
	sealer := testSealer(t)
	st := state.New("test", "dev")
	sealed, err := sealer.Seal("s3cret", "database_user.main.emqx/password")
	if err != nil {
		t.Fatal(err)
	}
	st.SetResource(state.Resource{Address: "database_user.main.emqx", Kind: "database_user", ID: "u1", Secrets: map[string]string{"password": sealed}})
	st.SetResource(state.Resource{Address: "database_user.main.moved", Kind: "database_user", ID: "u2", Secrets: map[string]string{"password": sealed}})
	_, err = (&StateSecrets{State: st, Sealer: sealer}).UserPasswords()
	if !errors.Is(err, state.ErrUnseal) {
		t.Fatalf("a sealed value moved to another user opened: %v", err)
	}
	st.RemoveResource("database_user.main.moved")
	got, err := (&StateSecrets{State: st, Sealer: sealer}).UserPasswords()
	if err != nil || got["main.emqx"] != "s3cret" || len(got) != 1 {
		t.Errorf("UserPasswords = %v, %v", got, err)
	}
}

// TestRotateServiceSecrets: the named secrets get new values and times in
// one write, the others keep theirs; an unknown name or check mode changes
// nothing.
func TestRotateServiceSecrets(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	t1 := t0.Add(time.Hour)
	st := state.New("test", "dev")
	saves := 0
	s := &StateSecrets{State: st, Sealer: testSealer(t), Save: func(context.Context) error { saves++; return nil }, Now: func() time.Time { return t0 }}
	before, err := s.ServiceSecrets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Now = func() time.Time { return t1 }
	for _, tc := range []struct {
		names []string
		check bool
		err   string
	}{
		{names: []string{"mqtt_backend"}, err: "mqtt_backend is not a service secret"},
		{names: []string{SecretEMQXCookie}, check: true, err: "not in check mode"},
		{names: []string{SecretEMQXCookie, SecretPowerSyncAPIToken}},
	} {
		s.Check = tc.check
		saves = 0
		err := s.RotateServiceSecrets(ctx, tc.names)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || saves != 0 {
				t.Errorf("%v: err %v, saves %d; want %q and no save", tc.names, err, saves, tc.err)
			}
			continue
		}
		if err != nil || saves != 1 {
			t.Fatalf("%v: err %v, saves %d", tc.names, err, saves)
		}
	}
	s.Check = false
	after, err := s.ServiceSecrets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := st.Resource(ServiceSecretsAddress)
	for _, name := range serviceSecretNames {
		rotated := name == SecretEMQXCookie || name == SecretPowerSyncAPIToken
		if (after[name] != before[name]) != rotated {
			t.Errorf("%s: changed %v, want %v", name, after[name] != before[name], rotated)
		}
		want := t0
		if rotated {
			want = t1
		}
		if got, ok := GeneratedAt(r, name); !ok || !got.Equal(want) {
			t.Errorf("%s generated at %v (%v), want %v", name, got, ok, want)
		}
	}
}
