package templates

import (
	"bytes"
	"crypto/ed25519"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/accoreboot/acco/internal/devicecred"
	"github.com/accoreboot/acco/internal/spec"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

const fakeCA = "-----BEGIN CERTIFICATE-----\nMIIBsjCCAVegAwIBAgIUYWNjby10ZXN0LWNhLW5vdC1yZWFs\n-----END CERTIFICATE-----\n"

// SampleInputs are fixed, fake inputs: every secret contains "S3CRET" so a
// test can look for leaks.
func sampleInputs() Inputs {
	return Inputs{
		Databases: map[string]DB{"main": {Host: "postgresql-abc123.database.cloud.ovh.net", Port: 20184, CACert: fakeCA}},
		Passwords: map[string]string{
			"main.emqx":      "emqx-S3CRET-p@ss/word",
			"main.powersync": "powersync-S3CRET-pw",
			"main.backend":   "backend-S3CRET-\"quoted\"$x",
		},
		EMQXDashboardPassword: "dashboard-S3CRET",
		EMQXCookie:            "cookie-S3CRET",
		PowerSyncAPIToken:     "token-S3CRET",
		MQTTBackendPassword:   "mqtt-S3CRET",
		PowerSyncVerifyKey:    ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)).Public().(ed25519.PublicKey),
		// Two rows of the device table, as acco device add stores them.
		MQTTUsers: []MQTTUser{
			{Name: "t1", Hash: devicecred.Hash{PasswordHash: strings.Repeat("ab", devicecred.KeyLength), Salt: "Qm9uam91ci0x"}},
			{Name: "acco-verify", Hash: devicecred.Hash{PasswordHash: strings.Repeat("0f", devicecred.KeyLength), Salt: "c2FsdHNhbHQx"}},
		},
		TLS: map[string]TLS{
			"mqtts": {Cert: "-----BEGIN CERTIFICATE-----\nMQTTSCERT\n-----END CERTIFICATE-----\n", Key: "-----BEGIN PRIVATE KEY-----\nkey-S3CRET\n-----END PRIVATE KEY-----\n"},
		},
		PowerSyncTLS: TLS{Cert: "-----BEGIN CERTIFICATE-----\nPOWERSYNCCERT\n-----END CERTIFICATE-----\n", Key: "-----BEGIN PRIVATE KEY-----\npowersync-key-S3CRET\n-----END PRIVATE KEY-----\n"},
	}
}

// envs returns the shipped environments plus a Mosquitto variant of test
// (no shipped environment uses it yet).
func envs(t *testing.T) map[string]*spec.Environment {
	t.Helper()
	names, err := spec.Names("../environments")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*spec.Environment{}
	for _, n := range names {
		e, err := spec.Load("../environments", n, nil)
		if err != nil {
			t.Fatalf("loading %s: %v", n, err)
		}
		out[n] = e
	}
	m, err := spec.Load("../environments", "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	m.Services.Broker = spec.BrokerMosquitto
	m.Services.EMQX = nil
	m.Services.Mosquitto = &spec.Mosquitto{Listeners: map[string]*spec.Listener{
		"mqtt":  {Type: "tcp", Bind: "0.0.0.0", Port: 1883},
		"mqtts": {Type: "ssl", Bind: "0.0.0.0", Port: 8883, TLS: &spec.TLSFiles{CertFile: "x.crt", KeyFile: "x.key"}},
	}}
	out["test-mosquitto"] = m
	return out
}

func render(t *testing.T, e *spec.Environment) []File {
	t.Helper()
	files, err := Files(e, sampleInputs())
	if err != nil {
		t.Fatalf("Files(%s): %v", e.Name, err)
	}
	return files
}

func goldenName(path string) string {
	return strings.ReplaceAll(strings.TrimPrefix(path, "/"), "/", "__")
}

func TestGolden(t *testing.T) {
	for name, e := range envs(t) {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", "golden", name)
			files := render(t, e)
			if *update {
				os.RemoveAll(dir)
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			seen := map[string]bool{}
			for _, f := range files {
				g := filepath.Join(dir, goldenName(f.Path))
				seen[filepath.Base(g)] = true
				if *update {
					if err := os.WriteFile(g, f.Content, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(g)
				if err != nil {
					t.Errorf("%s: no golden file (run go test ./templates -update): %v", f.Path, err)
					continue
				}
				if !bytes.Equal(want, f.Content) {
					t.Errorf("%s differs from %s (run go test ./templates -update and review the diff)\n--- got\n%s", f.Path, g, f.Content)
				}
			}
			entries, _ := os.ReadDir(dir)
			for _, en := range entries {
				if !seen[en.Name()] {
					t.Errorf("golden file %s is no longer rendered", en.Name())
				}
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	for name, e := range envs(t) {
		a, b := render(t, e), render(t, e)
		if len(a) != len(b) {
			t.Fatalf("%s: %d then %d files", name, len(a), len(b))
		}
		for i := range a {
			if a[i].Path != b[i].Path || !bytes.Equal(a[i].Content, b[i].Content) {
				t.Errorf("%s: %s rendered differently twice", name, a[i].Path)
			}
		}
	}
}

// Secrets may appear only in files that need them: sensitive files, and
// emqx.conf (cookie, first-boot dashboard password; mode 0600, masked in
// diffs by value).
func TestSecretsStayInSensitiveFiles(t *testing.T) {
	for name, e := range envs(t) {
		for _, f := range render(t, e) {
			if f.Sensitive || f.Path == "/etc/emqx/emqx.conf" {
				if f.Mode&0o007 != 0 {
					t.Errorf("%s %s: mode %o lets others read a secret", name, f.Path, f.Mode)
				}
				continue
			}
			if bytes.Contains(f.Content, []byte("S3CRET")) {
				t.Errorf("%s %s: a secret in a file not marked sensitive:\n%s", name, f.Path, f.Content)
			}
		}
	}
}

func TestNoMemoryDenyWriteExecute(t *testing.T) {
	for name, e := range envs(t) {
		for _, f := range render(t, e) {
			for _, line := range strings.Split(string(f.Content), "\n") {
				if strings.HasPrefix(strings.TrimSpace(line), "MemoryDenyWriteExecute") {
					t.Errorf("%s %s sets %q: V8 and the BEAM JIT need W+X pages", name, f.Path, line)
				}
			}
		}
	}
}

func TestInputsSecretsMasksEscapedForms(t *testing.T) {
	s := sampleInputs().Secrets()
	want := []string{"emqx-S3CRET-p%40ss%2Fword", "emqx-S3CRET-p@ss/word", "cookie-S3CRET"}
	for _, w := range want {
		found := false
		for _, v := range s {
			found = found || v == w
		}
		if !found {
			t.Errorf("Secrets() lacks %q: %q", w, s)
		}
	}
	for i := 1; i < len(s); i++ {
		if len(s[i]) > len(s[i-1]) {
			t.Fatalf("Secrets() not longest first: %q", s)
		}
	}
}

func TestMissingInputsAreErrors(t *testing.T) {
	e, err := spec.Load("../environments", "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	in := sampleInputs()
	in.Databases = nil
	if _, err := Files(e, in); err == nil || !strings.Contains(err.Error(), "provision") {
		t.Errorf("Files without database endpoints: err = %v, want a hint to provision", err)
	}
	in = sampleInputs()
	in.EMQXCookie = ""
	if _, err := Files(e, in); err == nil {
		t.Error("Files without the EMQX cookie: no error")
	}
}
