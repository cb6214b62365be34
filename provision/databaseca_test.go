package provision_test

import (
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/accoreboot/acco/internal/localcloud"
	"github.com/accoreboot/acco/provision"
	"github.com/accoreboot/acco/provision/internal/lctest"
	"github.com/accoreboot/acco/state"
)

func TestOutputs(t *testing.T) {
	st := &state.State{Resources: []state.Resource{
		{Address: "instance.app", Kind: "instance", Attributes: map[string]any{"ipv4": "198.51.100.7", "ipv6": ""}},
		{Address: "database.main", Kind: "database", Attributes: map[string]any{"host": "db.example", "port": 20184, "ca_certificate": "-----BEGIN CERTIFICATE-----\n"}},
		{Address: "database.next", Kind: "database", Attributes: map[string]any{"host": provision.Unknown, "port": provision.Unknown}},
	}}
	got := map[string]any{}
	for k, o := range provision.Outputs(st) {
		if o.Sensitive {
			t.Errorf("output %s is sensitive", k)
		}
		got[k] = o.Value
	}
	want := map[string]any{
		"instance.app.ipv4":  "198.51.100.7",
		"database.main.host": "db.example",
		"database.main.port": 20184,
		// The server is verified: the URI says so, and the CA that
		// verifies it is the cluster's (acco output adds its file).
		"database.main.uri": "postgresql://db.example:20184/defaultdb?sslmode=verify-full",
	}
	if len(got) != len(want) {
		t.Errorf("outputs = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

// The cluster's CA certificate is recorded in state by the apply that
// creates the database, and by the next apply for a state that lacks it (an
// older acco's); plans never show it.
func TestDatabaseCAInState(t *testing.T) {
	h := newHarness(t, localcloud.Options{})
	h.apply(h.plan(provision.PlanOptions{}))
	ca := caOf(t, h.state())
	if p := h.plan(provision.PlanOptions{}); p.HasChanges() {
		t.Fatalf("plan after apply: %v", actions(p))
	}

	// A state written before acco recorded the CA.
	ctx := t.Context()
	st, etag, err := h.store.Read(ctx, lctest.Env)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := st.Resource("database.main")
	delete(r.Attributes, "ca_certificate")
	if _, err := h.store.Write(ctx, lctest.Env, st, etag); err != nil {
		t.Fatal(err)
	}
	p := h.plan(provision.PlanOptions{})
	if got := actions(p); !equalActions(got, map[string]provision.Action{"database.main": provision.Read}) {
		t.Fatalf("plan of a state without the CA = %v", got)
	}
	if c := p.Change("database.main"); !strings.Contains(c.Reason, "CA certificate") {
		t.Errorf("reason %q", c.Reason)
	}
	var out strings.Builder
	if err := p.Render(&out); err != nil {
		t.Fatal(err)
	}
	doc := p.JSON()
	for _, c := range doc.Changes {
		if _, ok := c.After["ca_certificate"]; ok {
			t.Errorf("the JSON plan shows the CA of %s", c.Address)
		}
	}
	if strings.Contains(out.String(), "BEGIN CERTIFICATE") {
		t.Errorf("the plan shows the CA:\n%s", out.String())
	}
	h.apply(p)
	if got := caOf(t, h.state()); got != ca {
		t.Errorf("CA recorded again differs")
	}
	if p := h.plan(provision.PlanOptions{}); p.HasChanges() {
		t.Fatalf("plan after recording the CA: %v", actions(p))
	}
}

// caOf returns database.main's CA certificate in st, failing the test
// unless it is a PEM certificate.
func caOf(t *testing.T, st *state.State) string {
	t.Helper()
	r, ok := st.Resource("database.main")
	if !ok {
		t.Fatal("no database.main in state")
	}
	ca, _ := r.Attributes["ca_certificate"].(string)
	block, _ := pem.Decode([]byte(ca))
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("database.main's ca_certificate is not a PEM certificate: %q", ca)
	}
	if _, err := x509.ParseCertificate(block.Bytes); err != nil {
		t.Fatalf("database.main's ca_certificate: %v", err)
	}
	return ca
}
