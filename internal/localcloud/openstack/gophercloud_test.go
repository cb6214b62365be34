package openstack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	gos "github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/keypairs"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/attributestags"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/rules"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"golang.org/x/crypto/ssh"
)

// testPublicKey is an ed25519 public key to import as a key pair.
const testPublicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBn2Mg6/8LZm6XxJ3yYzyD1vE5qH/9bQkxW6mDaxwCCg deploy@acco"

// testEnv is a cloud served over HTTP.
type testEnv struct {
	cloud *Cloud
	srv   *httptest.Server
	auths atomic.Int32 // POST /auth/tokens seen
}

// newTestEnv serves a new cloud of cfg (small delays when unset).
func newTestEnv(t *testing.T, cfg Config) *testEnv {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return serveCloud(t, c)
}

// serveCloud serves a cloud on a test server.
func serveCloud(t *testing.T, c *Cloud) *testEnv {
	t.Helper()
	e := &testEnv{cloud: c}
	var h http.Handler
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/auth/tokens") {
			e.auths.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	h = c.Handler(e.srv.URL)
	t.Cleanup(e.srv.Close)
	return e
}

// login authenticates a project's user with gophercloud, as acco does.
func (e *testEnv) login(t *testing.T, p Project, reauth bool) *gophercloud.ProviderClient {
	t.Helper()
	pc, err := gos.AuthenticatedClient(t.Context(), gophercloud.AuthOptions{
		IdentityEndpoint: e.srv.URL + "/identity/v3",
		Username:         p.User,
		Password:         p.Password,
		DomainName:       "Default",
		TenantID:         p.ID,
		AllowReauth:      reauth,
	})
	if err != nil {
		t.Fatalf("authenticate %s: %v", p.User, err)
	}
	return pc
}

// clients are the service clients of one project in one region.
type clients struct {
	compute, network, image *gophercloud.ServiceClient
}

func serviceClients(t *testing.T, pc *gophercloud.ProviderClient, region string) clients {
	t.Helper()
	eo := gophercloud.EndpointOpts{Region: region}
	compute, err := gos.NewComputeV2(pc, eo)
	if err != nil {
		t.Fatal(err)
	}
	network, err := gos.NewNetworkV2(pc, eo)
	if err != nil {
		t.Fatal(err)
	}
	image, err := gos.NewImageV2(pc, eo)
	if err != nil {
		t.Fatal(err)
	}
	return clients{compute, network, image}
}

// project returns the default project of a name.
func project(t *testing.T, name string) Project {
	t.Helper()
	for _, p := range DefaultProjects() {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no project %s", name)
	return Project{}
}

// statusOf returns the HTTP status of a gophercloud error, 0 if none.
func statusOf(err error) int {
	var e gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &e) {
		return e.Actual
	}
	return 0
}

// lookup resolves the IDs acco resolves by name: Ext-Net, an image, a flavor.
func lookup(t *testing.T, cl clients, image, flavor string) (netID, imageID, flavorID string) {
	t.Helper()
	ctx := t.Context()
	pages, err := networks.List(cl.network, networks.ListOpts{Name: "Ext-Net"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	nets, err := networks.ExtractNetworks(pages)
	if err != nil || len(nets) != 1 {
		t.Fatalf("Ext-Net: %v %v", nets, err)
	}
	pages, err = images.List(cl.image, images.ListOpts{Name: image}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ims, err := images.ExtractImages(pages)
	if err != nil || len(ims) != 1 {
		t.Fatalf("image %s: %v %v", image, ims, err)
	}
	pages, err = flavors.ListDetail(cl.compute, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fls, err := flavors.ExtractFlavors(pages)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fls {
		if f.Name == flavor {
			return nets[0].ID, ims[0].ID, f.ID
		}
	}
	t.Fatalf("no flavor %s in %v", flavor, fls)
	return "", "", ""
}

// createServer creates a server on Ext-Net with only the named group.
func createServer(t *testing.T, cl clients, name, group string, md map[string]string) *servers.Server {
	t.Helper()
	netID, imageID, flavorID := lookup(t, cl, "Debian 12", "d2-2")
	opts := servers.CreateOpts{
		Name:           name,
		FlavorRef:      flavorID,
		ImageRef:       imageID,
		SecurityGroups: []string{group},
		Networks:       []servers.Network{{UUID: netID}},
		Metadata:       md,
		UserData:       []byte("#cloud-config\npackage_update: true\n"),
	}
	s, err := servers.Create(t.Context(), cl.compute, keypairs.CreateOptsExt{CreateOptsBuilder: opts, KeyName: "deploy"}, nil).Extract()
	if err != nil {
		t.Fatalf("create server %s: %v", name, err)
	}
	return s
}

// waitAddress waits until the server shows an IPv4 address on Ext-Net.
func waitAddress(t *testing.T, cl clients, id string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var addr string
	err := gophercloud.WaitFor(ctx, func(ctx context.Context) (bool, error) {
		s, err := servers.Get(ctx, cl.compute, id).Extract()
		if err != nil {
			return false, err
		}
		list, _ := s.Addresses["Ext-Net"].([]any)
		for _, a := range list {
			m, _ := a.(map[string]any)
			if v, _ := m["version"].(float64); v == 4 {
				addr, _ = m["addr"].(string)
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("wait for the address of %s: %v", id, err)
	}
	return addr
}

// setUpProject creates the key pair and the tagged security group acco uses.
func setUpProject(t *testing.T, cl clients) *groups.SecGroup {
	t.Helper()
	ctx := t.Context()
	kp, err := keypairs.Create(ctx, cl.compute, keypairs.CreateOpts{Name: "deploy", PublicKey: testPublicKey}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(testPublicKey))
	if kp.Fingerprint != ssh.FingerprintLegacyMD5(pub) {
		t.Errorf("fingerprint %q, want Nova's MD5 %q", kp.Fingerprint, ssh.FingerprintLegacyMD5(pub))
	}
	sg, err := groups.Create(ctx, cl.network, groups.CreateOpts{Name: "acco-test", Description: "acco: environment test"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := attributestags.ReplaceAll(ctx, cl.network, "security-groups", sg.ID, attributestags.ReplaceAllOpts{Tags: []string{"acco", "acco-env=test"}}).Extract(); err != nil {
		t.Fatal(err)
	}
	if _, err := rules.Create(ctx, cl.network, rules.CreateOpts{
		Direction: rules.DirIngress, EtherType: rules.EtherType4, SecGroupID: sg.ID,
		Protocol: rules.ProtocolTCP, PortRangeMin: 22, PortRangeMax: 22, RemoteIPPrefix: "0.0.0.0/0",
	}).Extract(); err != nil {
		t.Fatal(err)
	}
	return sg
}

func TestGophercloudServerLifecycle(t *testing.T) {
	clk := &clock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	e := newTestEnv(t, Config{BuildDelay: 40 * time.Second, AddressDelay: 20 * time.Second, RebootDelay: 10 * time.Second, Now: clk.Now})
	ctx := t.Context()
	test := project(t, "test")
	cl := serviceClients(t, e.login(t, test, false), "GRA11")
	sg := setUpProject(t, cl)

	// A second rule identical to the first is a conflict, as on Neutron.
	_, err := rules.Create(ctx, cl.network, rules.CreateOpts{
		Direction: rules.DirIngress, EtherType: rules.EtherType4, SecGroupID: sg.ID,
		Protocol: rules.ProtocolTCP, PortRangeMin: 22, PortRangeMax: 22, RemoteIPPrefix: "0.0.0.0/0",
	}).Extract()
	if statusOf(err) != http.StatusConflict {
		t.Errorf("duplicate rule: %v, want 409", err)
	}
	pages, err := groups.List(cl.network, groups.ListOpts{Tags: "acco-env=test"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tagged, _ := groups.ExtractGroups(pages)
	if len(tagged) != 1 || tagged[0].ID != sg.ID {
		t.Errorf("groups tagged acco-env=test: %+v", tagged)
	}

	created := createServer(t, cl, "acco-test-app", "acco-test", map[string]string{"acco-env": "test", "acco-role": "app"})
	s, err := servers.Get(ctx, cl.compute, created.ID).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != "BUILD" {
		t.Errorf("status right after create %s, want BUILD", s.Status)
	}
	other := createServer(t, cl, "acco-test-worker", "acco-test", map[string]string{"acco-env": "test", "acco-role": "worker"})
	e.cloud.InjectServerError(test.ID, "acco-test-broken")
	broken := createServer(t, cl, "acco-test-broken", "acco-test", nil)
	clk.Add(40 * time.Second)
	if err := servers.WaitForStatus(ctx, cl.compute, created.ID, "ACTIVE"); err != nil {
		t.Fatal(err)
	}
	// As on OVH, the Ext-Net address shows a while after ACTIVE, and so do
	// the host keys on the console (cloud-init has not finished).
	if s, _ := servers.Get(ctx, cl.compute, created.ID).Extract(); len(s.Addresses) != 0 {
		t.Errorf("addresses right after ACTIVE: %v", s.Addresses)
	}
	if out, err := servers.ShowConsoleOutput(ctx, cl.compute, created.ID, servers.ShowConsoleOutputOpts{}).Extract(); err != nil || strings.Contains(out, "SSH HOST KEY") {
		t.Errorf("console before cloud-init finished: %v\n%s", err, out)
	}
	clk.Add(20 * time.Second)
	addr := waitAddress(t, cl, created.ID)
	if !strings.HasPrefix(addr, "198.51.100.") {
		t.Errorf("address %s, want one in GRA11's Ext-Net", addr)
	}
	s, err = servers.Get(ctx, cl.compute, created.ID).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if len(s.SecurityGroups) != 1 || s.SecurityGroups[0]["name"] != "acco-test" {
		t.Errorf("server security groups %v, want only acco-test", s.SecurityGroups)
	}
	if s.KeyName != "deploy" || s.Metadata["acco-role"] != "app" || s.Flavor["id"] == nil || s.Image["id"] == nil {
		t.Errorf("server %+v", s)
	}

	// The port on Ext-Net carries the address and only acco's group.
	pages, err = ports.List(cl.network, ports.ListOpts{DeviceID: created.ID}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ps, _ := ports.ExtractPorts(pages)
	if len(ps) != 1 || ps[0].FixedIPs[0].IPAddress != addr || len(ps[0].SecurityGroups) != 1 || ps[0].SecurityGroups[0] != sg.ID || ps[0].Status != "ACTIVE" {
		t.Fatalf("ports of the server: %+v", ps)
	}
	// The group is in use: it cannot go.
	if err := groups.Delete(ctx, cl.network, sg.ID).ExtractErr(); statusOf(err) != http.StatusConflict {
		t.Errorf("delete group in use: %v, want 409", err)
	}

	// The injected fault: ERROR with a fault, no address.
	b, err := servers.Get(ctx, cl.compute, broken.ID).Extract()
	if err != nil || b.Status != "ERROR" || b.Fault.Code != 500 || b.Fault.Message == "" || len(b.Addresses) != 0 {
		t.Errorf("injected server: %+v %v", b, err)
	}

	// List filters: name is a regular expression, status and metadata match.
	for _, tc := range []struct {
		name string
		opts servers.ListOpts
		url  string
		want []string
	}{
		{"all", servers.ListOpts{}, "", []string{"acco-test-broken", "acco-test-worker", "acco-test-app"}},
		{"name regex", servers.ListOpts{Name: "^acco-test-a"}, "", []string{"acco-test-app"}},
		{"name substring", servers.ListOpts{Name: "worker"}, "", []string{"acco-test-worker"}},
		{"status", servers.ListOpts{Status: "ACTIVE"}, "", []string{"acco-test-worker", "acco-test-app"}},
		{"status error", servers.ListOpts{Status: "ERROR"}, "", []string{"acco-test-broken"}},
		{"no match", servers.ListOpts{Name: "^nope$"}, "", nil},
		{"metadata", servers.ListOpts{}, `?metadata={"acco-role":"worker"}`, []string{"acco-test-worker"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			pager := servers.List(cl.compute, tc.opts)
			if tc.url != "" {
				pager = servers.List(cl.compute, rawQuery(tc.url))
			}
			pages, err := pager.AllPages(ctx)
			if err != nil {
				t.Fatal(err)
			}
			list, _ := servers.ExtractServers(pages)
			for _, s := range list {
				got = append(got, s.Name)
			}
			slices.Sort(got)
			slices.Sort(tc.want)
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}

	// The console prints cloud-init's host key blocks for the key the cloud
	// keeps.
	out, err := servers.ShowConsoleOutput(ctx, cl.compute, created.ID, servers.ShowConsoleOutputOpts{}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := e.cloud.ServerHostKey(test.ID, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	fp := ssh.FingerprintSHA256(signer.PublicKey())
	keyLine := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	for _, want := range []string{
		"-----BEGIN SSH HOST KEY FINGERPRINTS-----", "256 " + fp + " root@acco-test-app (ED25519)",
		"-----END SSH HOST KEY FINGERPRINTS-----", "-----BEGIN SSH HOST KEY KEYS-----",
		keyLine + " root@acco-test-app", "-----END SSH HOST KEY KEYS-----",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("console output lacks %q:\n%s", want, out)
		}
	}
	tail, err := servers.ShowConsoleOutput(ctx, cl.compute, created.ID, servers.ShowConsoleOutputOpts{Length: 3}).Extract()
	if err != nil || strings.Count(tail, "\n") != 3 {
		t.Errorf("console tail of 3 lines: %q %v", tail, err)
	}

	// Reboot: REBOOT, then ACTIVE again.
	if err := servers.Reboot(ctx, cl.compute, created.ID, servers.RebootOpts{Type: servers.SoftReboot}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if s, _ := servers.Get(ctx, cl.compute, created.ID).Extract(); s.Status != "REBOOT" {
		t.Errorf("status after reboot %s, want REBOOT", s.Status)
	}
	if out, _ := servers.ShowConsoleOutput(ctx, cl.compute, created.ID, servers.ShowConsoleOutputOpts{}).Extract(); strings.Count(out, "Linux version") != 2 {
		t.Errorf("console after a reboot shows %d boots, want 2", strings.Count(out, "Linux version"))
	}
	clk.Add(10 * time.Second)
	if err := servers.WaitForStatus(ctx, cl.compute, created.ID, "ACTIVE"); err != nil {
		t.Fatal(err)
	}

	// acco replaces the groups of the port: default only, then back.
	def := findGroup(t, cl, "default")
	if _, err := ports.Update(ctx, cl.network, ps[0].ID, ports.UpdateOpts{SecurityGroups: &[]string{def.ID}}).Extract(); err != nil {
		t.Fatal(err)
	}
	if s, _ := servers.Get(ctx, cl.compute, created.ID).Extract(); len(s.SecurityGroups) != 1 || s.SecurityGroups[0]["name"] != "default" {
		t.Errorf("server groups after port update: %v", s.SecurityGroups)
	}

	// Delete: gone at once, 404 after, the address is free again.
	for _, id := range []string{created.ID, other.ID, broken.ID} {
		if err := servers.Delete(ctx, cl.compute, id).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		if _, err := servers.Get(ctx, cl.compute, id).Extract(); statusOf(err) != http.StatusNotFound {
			t.Errorf("get deleted server: %v, want 404", err)
		}
	}
	if err := groups.Delete(ctx, cl.network, sg.ID).ExtractErr(); err != nil {
		t.Errorf("delete group no longer in use: %v", err)
	}
	if err := keypairs.Delete(ctx, cl.compute, "deploy", nil).ExtractErr(); err != nil {
		t.Errorf("delete key pair: %v", err)
	}
	if got := e.cloud.Counts(); got["servers"] != 0 || got["ports"] != 0 || got["keypairs"] != 0 || got["security_groups"] != 1 {
		t.Errorf("counts after cleanup: %v", got)
	}
}

// rawQuery is a servers.ListOptsBuilder passing a query string as is.
type rawQuery string

func (q rawQuery) ToServerListQuery() (string, error) { return string(q), nil }

// findGroup returns the caller's security group of a name.
func findGroup(t *testing.T, cl clients, name string) groups.SecGroup {
	t.Helper()
	pages, err := groups.List(cl.network, groups.ListOpts{Name: name}).AllPages(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	list, _ := groups.ExtractGroups(pages)
	if len(list) != 1 {
		t.Fatalf("groups named %s: %+v", name, list)
	}
	return list[0]
}

func TestDefaultGroupAllowsEverything(t *testing.T) {
	e := newTestEnv(t, Config{})
	cl := serviceClients(t, e.login(t, project(t, "preprod"), false), "SBG5")
	def := findGroup(t, cl, "default")
	var got []string
	for _, r := range def.Rules {
		got = append(got, r.Direction+"/"+r.EtherType+"/"+r.Protocol+"/"+r.RemoteIPPrefix)
	}
	want := "ingress/IPv4//0.0.0.0/0,ingress/IPv6//::/0,egress/IPv4//0.0.0.0/0,egress/IPv6//::/0"
	if strings.Join(got, ",") != want {
		t.Errorf("default rules %v, want %s", got, want)
	}
	if err := groups.Delete(t.Context(), cl.network, def.ID).ExtractErr(); statusOf(err) != http.StatusConflict {
		t.Errorf("delete default: %v, want 409", err)
	}
	// A server created without groups lands in default.
	if _, err := keypairs.Create(t.Context(), cl.compute, keypairs.CreateOpts{Name: "deploy", PublicKey: testPublicKey}).Extract(); err != nil {
		t.Fatal(err)
	}
	netID, imageID, flavorID := lookup(t, cl, "Ubuntu 24.04", "b3-8")
	s, err := servers.Create(t.Context(), cl.compute, servers.CreateOpts{
		Name: "bare", FlavorRef: flavorID, ImageRef: imageID, Networks: []servers.Network{{UUID: netID}},
	}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	s, err = servers.Get(t.Context(), cl.compute, s.ID).Extract()
	if err != nil || len(s.SecurityGroups) != 1 || s.SecurityGroups[0]["name"] != "default" {
		t.Errorf("groups of a server created without any: %v %v", s.SecurityGroups, err)
	}
}

func TestProjectIsolation(t *testing.T) {
	e := newTestEnv(t, Config{})
	ctx := t.Context()
	test, prod := project(t, "test"), project(t, "prod")
	tcl := serviceClients(t, e.login(t, test, false), "GRA11")
	sg := setUpProject(t, tcl)
	s := createServer(t, tcl, "acco-test-app", "acco-test", nil)

	pcl := serviceClients(t, e.login(t, prod, false), "GRA11")
	pages, err := servers.List(pcl.compute, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if list, _ := servers.ExtractServers(pages); len(list) != 0 {
		t.Errorf("prod sees servers %+v", list)
	}
	for name, err := range map[string]error{
		"server":  servers.Get(ctx, pcl.compute, s.ID).Err,
		"keypair": keypairs.Get(ctx, pcl.compute, "deploy", nil).Err,
		"group":   groups.Get(ctx, pcl.network, sg.ID).Err,
		"delete":  servers.Delete(ctx, pcl.compute, s.ID).Err,
	} {
		if statusOf(err) != http.StatusNotFound {
			t.Errorf("prod reaching test's %s: %v, want 404", name, err)
		}
	}
	pages, err = groups.List(pcl.network, groups.ListOpts{ProjectID: test.ID}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if list, _ := groups.ExtractGroups(pages); len(list) != 0 {
		t.Errorf("prod lists test's groups: %+v", list)
	}
	// Resources are regional too: nothing of test's in SBG5.
	scl := serviceClients(t, e.login(t, test, false), "SBG5")
	if err := servers.Get(ctx, scl.compute, s.ID).Err; statusOf(err) != http.StatusNotFound {
		t.Errorf("test's GRA11 server from SBG5: %v, want 404", err)
	}
	// prod's user cannot scope to test.
	_, err = gos.AuthenticatedClient(ctx, gophercloud.AuthOptions{
		IdentityEndpoint: e.srv.URL + "/identity/v3", Username: prod.User, Password: prod.Password,
		DomainName: "Default", TenantID: test.ID,
	})
	if statusOf(err) != http.StatusUnauthorized {
		t.Errorf("prod user scoped to test: %v, want 401", err)
	}
	// Test's token in a compute URL naming another project is refused.
	bad := *tcl.compute
	bad.Endpoint = strings.Replace(bad.Endpoint, test.ID, prod.ID, 1)
	bad.ResourceBase = ""
	if _, err := servers.List(&bad, nil).AllPages(ctx); statusOf(err) != http.StatusBadRequest {
		t.Errorf("URL of another project: %v, want 400", err)
	}
}

// clock is a settable clock for Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestTokenExpiryAndReauth(t *testing.T) {
	clk := &clock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	e := newTestEnv(t, Config{TokenTTL: time.Minute, Now: clk.Now})
	ctx := t.Context()
	test := project(t, "test")

	withReauth := serviceClients(t, e.login(t, test, true), "GRA11")
	without := serviceClients(t, e.login(t, test, false), "GRA11")
	if _, err := keypairs.List(withReauth.compute, nil).AllPages(ctx); err != nil {
		t.Fatal(err)
	}
	before := e.auths.Load()
	clk.Add(2 * time.Minute)

	if _, err := keypairs.List(without.compute, nil).AllPages(ctx); statusOf(err) != http.StatusUnauthorized {
		t.Errorf("expired token without reauth: %v, want 401", err)
	}
	if _, err := keypairs.List(withReauth.compute, nil).AllPages(ctx); err != nil {
		t.Errorf("expired token with reauth: %v", err)
	}
	if _, err := groups.List(withReauth.network, groups.ListOpts{}).AllPages(ctx); err != nil {
		t.Errorf("network after reauth: %v", err)
	}
	if got := e.auths.Load() - before; got != 1 {
		t.Errorf("%d authentications after expiry, want 1", got)
	}
}

func TestKeystoneTokens(t *testing.T) {
	e := newTestEnv(t, Config{})
	ctx := t.Context()
	test := project(t, "test")
	pc := e.login(t, test, false)
	id, err := gos.NewIdentityV3(pc, gophercloud.EndpointOpts{})
	if err != nil {
		t.Fatal(err)
	}
	res := tokens.Get(ctx, id, pc.Token())
	tok, err := res.ExtractToken()
	if err != nil {
		t.Fatal(err)
	}
	if !tok.ExpiresAt.After(time.Now()) {
		t.Errorf("token expires at %v", tok.ExpiresAt)
	}
	p, err := res.ExtractProject()
	if err != nil || p.ID != test.ID || p.Name != "test" || p.Domain.Name != "Default" {
		t.Errorf("token project %+v %v", p, err)
	}
	cat, err := res.ExtractServiceCatalog()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, svc := range cat.Entries {
		for _, ep := range svc.Endpoints {
			seen[svc.Type+"/"+ep.Interface+"/"+ep.Region]++
			if !strings.HasPrefix(ep.URL, e.srv.URL+"/") {
				t.Errorf("endpoint %s not absolute on this server", ep.URL)
			}
		}
	}
	for _, typ := range []string{"compute", "network", "image"} {
		for _, region := range DefaultRegions() {
			for _, iface := range []string{"public", "internal"} {
				if seen[typ+"/"+iface+"/"+region] != 1 {
					t.Errorf("catalog lacks %s %s %s: %v", typ, iface, region, seen)
				}
			}
		}
	}
	if err := tokens.Get(ctx, id, "gAAAAAnope").Err; statusOf(err) != http.StatusNotFound {
		t.Errorf("validate unknown token: %v, want 404", err)
	}
}

func TestConcurrentClients(t *testing.T) {
	e := newTestEnv(t, Config{})
	test := project(t, "test")
	cl := serviceClients(t, e.login(t, test, false), "GRA11")
	setUpProject(t, cl)
	netID, imageID, flavorID := lookup(t, cl, "Debian 12", "c3-4")
	const n = 8
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := servers.Create(t.Context(), cl.compute, servers.CreateOpts{
				Name: fmt.Sprintf("worker-%d", i), FlavorRef: flavorID, ImageRef: imageID,
				SecurityGroups: []string{"acco-test"}, Networks: []servers.Network{{UUID: netID}},
			}, nil).Extract()
			if err == nil {
				_, err = servers.List(cl.compute, nil).AllPages(t.Context())
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	pages, err := ports.List(cl.network, ports.ListOpts{}).AllPages(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ps, _ := ports.ExtractPorts(pages)
	seen := map[string]bool{}
	for _, p := range ps {
		seen[p.FixedIPs[0].IPAddress] = true
	}
	if len(ps) != n || len(seen) != n {
		t.Errorf("%d ports with %d distinct addresses, want %d", len(ps), len(seen), n)
	}
}
