package pgserver_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ovh/go-ovh/ovh"

	"github.com/accoreboot/acco/internal/localcloud/ovhapi"
	"github.com/accoreboot/acco/internal/localcloud/pgserver"
)

// The Manager is the API's backend, and serves its certificates.
var (
	_ ovhapi.Backend           = (*pgserver.Manager)(nil)
	_ ovhapi.CertificateSource = (*pgserver.Manager)(nil)
)

// TestThroughTheOVHAPI creates a cluster, a database and a user through the
// OVH API with go-ovh, then logs in over TCP with the password the API
// returned once, as acco's SQL steps do.
func TestThroughTheOVHAPI(t *testing.T) {
	if _, err := pgserver.FindBinDir(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "pgserver-ovhapi-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	m, err := pgserver.Open(ctx, dir, pgserver.Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })

	const project = "0123456789abcdef0123456789abcdef"
	api, err := ovhapi.New(ovhapi.Config{
		Credentials: []ovhapi.Credential{{ApplicationKey: "ak", ApplicationSecret: "as", ConsumerKey: "ck"}},
		Projects:    []string{project},
		Postgres:    m,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.Handler())
	defer srv.Close()
	client, err := ovh.NewClient(srv.URL+"/1.0", "ak", "as", "ck")
	if err != nil {
		t.Fatal(err)
	}

	base := "/cloud/project/" + project + "/database/postgresql"
	var svc struct {
		ID        string `json:"id"`
		Status    string `json:"status"`
		Endpoints []struct {
			Domain string `json:"domain"`
			Port   int    `json:"port"`
		} `json:"endpoints"`
	}
	if err := client.PostWithContext(ctx, base, map[string]any{
		"plan": "essential", "version": "17",
		"nodesPattern": map[string]any{"flavor": "db1-4", "number": 1, "region": "GRA"},
	}, &svc); err != nil {
		t.Fatal(err)
	}
	if svc.Status != "READY" || len(svc.Endpoints) != 1 {
		t.Fatalf("cluster %+v", svc)
	}
	cluster := base + "/" + svc.ID
	if err := client.PostWithContext(ctx, cluster+"/database", map[string]string{"name": "acco"}, nil); err != nil {
		t.Fatal(err)
	}
	var u struct {
		Password string `json:"password"`
	}
	if err := client.PostWithContext(ctx, cluster+"/user", map[string]any{"name": "emqx"}, &u); err != nil {
		t.Fatal(err)
	}
	var certs struct {
		CA string `json:"ca"`
	}
	if err := client.GetWithContext(ctx, cluster+"/certificates", &certs); err != nil {
		t.Fatal(err)
	}

	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(certs.CA)) {
		t.Fatal("the API's CA is not PEM")
	}
	cfg, err := pgx.ParseConfig("")
	if err != nil {
		t.Fatal(err)
	}
	ep := svc.Endpoints[0]
	cfg.Host, cfg.Port, cfg.User, cfg.Password, cfg.Database = ep.Domain, uint16(ep.Port), "emqx", u.Password, "acco"
	cfg.TLSConfig = &tls.Config{RootCAs: pool, ServerName: ep.Domain, MinVersion: tls.VersionTLS12}
	cfg.Fallbacks = nil
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect with the API's password: %v", err)
	}
	var who string
	if err := conn.QueryRow(ctx, "SELECT current_user").Scan(&who); err != nil || who != "emqx" {
		t.Fatalf("current_user %q, %v", who, err)
	}
	_ = conn.Close(ctx)

	if err := client.DeleteWithContext(ctx, cluster, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Address(svc.ID); err == nil {
		t.Fatal("the server outlived its cluster")
	}
}
