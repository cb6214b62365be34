package configure

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/templates"
)

// secretInputs are inputs whose every secret is a fresh NewSecret, so that
// a secret found in a script cannot be a coincidence.
func secretInputs(t *testing.T) templates.Inputs {
	t.Helper()
	s := func() string {
		v, err := NewSecret()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	return templates.Inputs{
		Databases:             map[string]templates.DB{"main": {Host: "db.example", Port: 5432, CACert: "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n"}},
		Passwords:             map[string]string{"main.emqx": s(), "main.powersync": s(), "main.backend": s()},
		EMQXDashboardPassword: s(), EMQXCookie: s(), PowerSyncAPIToken: s(), MQTTBackendPassword: s(),
		TLS:          map[string]templates.TLS{"mqtts": {Cert: "cert", Key: "-----BEGIN PRIVATE KEY-----\n" + s() + "\n-----END PRIVATE KEY-----\n"}},
		PowerSyncTLS: templates.TLS{Cert: "cert", Key: "-----BEGIN PRIVATE KEY-----\n" + s() + "\n-----END PRIVATE KEY-----\n"},
	}
}

// engineScripts returns every script the engine would send to a host for
// d, by what it does: the facts probe, each file's write (with its
// validation and Post), each command, each unit's health gate and each
// artifact's upload.
func engineScripts(d Desired) map[string]string {
	out := map[string]string{"probe": probeScript(d)}
	for _, f := range d.Files {
		out["write "+f.Path] = writeScript(f)
	}
	for _, c := range d.Commands {
		out["run "+c.Name] = "set -e\n" + c.Script
	}
	for _, u := range d.Units {
		out["health "+u.Name] = healthScript(u.Name, u.Health)
	}
	for _, a := range d.Artifacts {
		out["upload "+a.Name] = artifactScript(a)
	}
	return out
}

// TestScriptsCarryNoSecret: no script configure sends to a host (whose
// text sudo logs and ps shows) holds a secret of the inputs, for every
// shipped environment and the offline service set. Secrets travel on
// standard input (file contents) only.
func TestScriptsCarryNoSecret(t *testing.T) {
	names, err := spec.Names("../environments")
	if err != nil {
		t.Fatal(err)
	}
	in := secretInputs(t)
	type variant struct {
		name string
		env  *spec.Environment
		opts ServicesOptions
	}
	var vs []variant
	for _, n := range names {
		e, err := spec.Load("../environments", n, nil)
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, variant{n, e, ServicesOptions{NoArtifact: true}})
	}
	off, err := spec.Load("../environments", "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	off.Services.Broker = spec.BrokerMosquitto
	off.Services.Mosquitto = &spec.Mosquitto{Listeners: map[string]*spec.Listener{"mqtt": {Type: "tcp", Bind: "0.0.0.0", Port: 1883}}}
	vs = append(vs, variant{"test offline with mosquitto", off, ServicesOptions{Offline: true, NoArtifact: true}})
	for _, v := range vs {
		t.Run(v.name, func(t *testing.T) {
			d, err := Services(v.env, in, v.opts)
			if err != nil {
				t.Fatal(err)
			}
			for what, script := range engineScripts(d) {
				for _, s := range in.Secrets() {
					if strings.Contains(script, s) {
						t.Errorf("%s: the script sent to the host holds a secret of the inputs (it would show in ps and in sudo's log)", what)
					}
				}
			}
		})
	}
}

// TestEMQXDashboardPasswordReachesTheNodeThroughAFile runs the dashboard
// password file's write and Post locally, with a fake systemctl and emqx:
// the password is in the file EMQX reads (emqx's, 0400) and never in
// emqx's arguments; when the running node refuses it the file is removed
// so the next run tries again.
func TestEMQXDashboardPasswordReachesTheNodeThroughAFile(t *testing.T) {
	const password = "DASHBOARD2PASSWORD7SECRET"
	f := emqxDashboardPasswordFile(password)
	if f.Owner != "emqx" || f.Group != "emqx" || f.Mode != 0o400 || !f.Sensitive || string(f.Content) != password {
		t.Errorf("file %s %s:%s %o sensitive %v", f.Path, f.Owner, f.Group, f.Mode, f.Sensitive)
	}
	if strings.Contains(writeScript(f), password) {
		t.Fatal("the password is in the script")
	}
	for _, tc := range []struct {
		name        string
		emqxExit    int
		wantErr     bool
		wantFileNow bool
	}{
		{"the node takes it", 0, false, true},
		{"the node refuses it", 1, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			bin := filepath.Join(dir, "bin")
			if err := os.MkdirAll(bin, 0o755); err != nil {
				t.Fatal(err)
			}
			args := filepath.Join(dir, "emqx.args")
			fakes := map[string]string{
				"systemctl": "#!/bin/sh\nexit 0\n",
				"emqx":      "#!/bin/sh\nprintf '%s\\n' \"$@\" > " + shellQuote(args) + "\nexit " + strconv.Itoa(tc.emqxExit) + "\n",
			}
			for n, s := range fakes {
				if err := os.WriteFile(filepath.Join(bin, n), []byte(s), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
			usr, grp := owner(t)
			g := f
			g.Path = filepath.Join(dir, "secrets", "dashboard-admin.pass")
			g.Owner, g.Group = usr, grp
			g.Post = strings.NewReplacer("/usr/bin/emqx", filepath.Join(bin, "emqx"), EMQXDashboardPasswordPath, g.Path, "/var/lib/acco/", dir+"/").Replace(f.Post)
			_, err := (&localRunner{}).Run(context.Background(), writeScript(g), strings.NewReader(string(g.Content)))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			a, rerr := os.ReadFile(args)
			if rerr != nil {
				t.Fatalf("emqx was not called: %v", rerr)
			}
			if strings.Contains(string(a), password) || !strings.Contains(string(a), g.Path) || !strings.Contains(string(a), "change_password_trusted") {
				t.Errorf("emqx called with %q: want code that reads the file, not the password", a)
			}
			got, rerr := os.ReadFile(g.Path)
			if tc.wantFileNow != (rerr == nil) || (rerr == nil && string(got) != password) {
				t.Errorf("the file after the run: %q, %v", got, rerr)
			}
		})
	}
}
