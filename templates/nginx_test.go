package templates

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// nginxBinary returns nginx, skipping the test where it is missing, except
// in CI, where scripts/ensure-deps.sh installs it.
func nginxBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	if os.Getenv("CI") != "" {
		t.Fatal("nginx not found in CI: scripts/ensure-deps.sh installs it (Debian package nginx)")
	}
	t.Skip("nginx not found (Debian package nginx; make deps installs it): the proxy's configuration is not checked")
	return ""
}

// testCertificate returns a self-signed certificate and its key, PEM, as an
// operator's cert_file and key_file hold them.
func testCertificate(t *testing.T) TLS {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sync.example.com"},
		DNSNames:  []string{"sync.example.com"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	k, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return TLS{
		Cert: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		Key:  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k})),
	}
}

// nginxTest runs nginx -t on conf (an http-block fragment, as Debian's
// nginx.conf includes conf.d/*.conf) inside a minimal main configuration in
// dir, with every path of the host under dir.
func nginxTest(t *testing.T, nginx, dir string, conf []byte) ([]byte, error) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "conf.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "conf.d", "acco-powersync.conf"), conf, 0o644); err != nil {
		t.Fatal(err)
	}
	var main strings.Builder
	main.WriteString("pid " + dir + "/nginx.pid;\nerror_log " + dir + "/error.log;\nevents {}\nhttp {\n    access_log off;\n")
	for _, p := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		main.WriteString("    " + p + "_temp_path " + dir + "/" + p + ";\n")
	}
	main.WriteString("    include " + dir + "/conf.d/*.conf;\n}\n")
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(main.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, nginx, "-t", "-q", "-p", dir, "-e", dir+"/error.log", "-c", dir+"/nginx.conf")
	return cmd.CombinedOutput()
}

// TestNginxConfig checks the proxy configuration rendered for every
// environment that puts PowerSync behind TLS with nginx -t, as Debian's
// nginx includes it, with a real certificate and key (nginx -t loads them).
func TestNginxConfig(t *testing.T) {
	nginx := nginxBinary(t)
	in := sampleInputs()
	in.PowerSyncTLS = testCertificate(t)
	n := 0
	for name, e := range envs(t) {
		files, err := Files(e, in)
		if err != nil {
			t.Fatal(err)
		}
		byPath := map[string][]byte{}
		for _, f := range files {
			byPath[f.Path] = f.Content
		}
		conf, ok := byPath[NginxPowerSyncConf]
		if e.Services.PowerSync == nil || e.Services.PowerSync.TLS == nil {
			if ok {
				t.Errorf("%s: %s rendered without services.powersync.tls", name, NginxPowerSyncConf)
			}
			continue
		}
		if !ok {
			t.Fatalf("%s: no %s", name, NginxPowerSyncConf)
		}
		n++
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, "acco"), 0o755); err != nil {
				t.Fatal(err)
			}
			for _, base := range []string{"powersync.crt", "powersync.key"} {
				if err := os.WriteFile(filepath.Join(dir, "acco", base), byPath[NginxCertDir+"/"+base], 0o600); err != nil {
					t.Fatal(err)
				}
			}
			local := bytes.ReplaceAll(conf, []byte(NginxCertDir+"/"), []byte(dir+"/acco/"))
			if out, err := nginxTest(t, nginx, dir, local); err != nil {
				t.Errorf("nginx -t refuses %s of %s: %v\n%s\n%s", NginxPowerSyncConf, name, err, out, conf)
			}
			for _, want := range []string{"proxy_pass http://127.0.0.1:8080;", "proxy_http_version 1.1;", "proxy_set_header Upgrade $http_upgrade;", "proxy_buffering off;", "proxy_read_timeout 3600s;", "listen 443 ssl;"} {
				if !bytes.Contains(conf, []byte(want)) {
					t.Errorf("%s: %s lacks %q", name, NginxPowerSyncConf, want)
				}
			}
		})
	}
	if n == 0 {
		t.Fatal("no shipped environment puts PowerSync behind TLS")
	}
}

// TestNginxConfigRejects proves the check can fail: a certificate that does
// not match its key.
func TestNginxConfigRejects(t *testing.T) {
	nginx := nginxBinary(t)
	dir := t.TempDir()
	a, b := testCertificate(t), testCertificate(t)
	if err := os.WriteFile(filepath.Join(dir, "c.crt"), []byte(a.Cert), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "c.key"), []byte(b.Key), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := "server {\n    listen 8443 ssl;\n    ssl_certificate " + dir + "/c.crt;\n    ssl_certificate_key " + dir + "/c.key;\n}\n"
	if out, err := nginxTest(t, nginx, dir, []byte(conf)); err == nil {
		t.Errorf("nginx -t accepted a key that does not match its certificate:\n%s", out)
	}
}
