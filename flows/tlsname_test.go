package flows

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"testing"
	"time"
)

// selfSigned returns a PEM certificate for the given DNS names and IPs.
func selfSigned(t *testing.T, dns []string, ips []net.IP) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "acco test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: dns, IPAddresses: ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func TestTLSServerName(t *testing.T) {
	const ip = "203.0.113.7"
	for _, tc := range []struct {
		name, chain, want string
	}{
		{"made for a DNS name", selfSigned(t, []string{"mqtt.example.com", "alt.example.com"}, nil), "mqtt.example.com"},
		{"made for the address too", selfSigned(t, []string{"mqtt.example.com"}, []net.IP{net.ParseIP(ip)}), ip},
		{"made for the address only", selfSigned(t, nil, []net.IP{net.ParseIP(ip)}), ip},
		{"not PEM", "garbage", ip},
		{"not a certificate", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", ip},
	} {
		if got := tlsServerName(tc.chain, ip); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
