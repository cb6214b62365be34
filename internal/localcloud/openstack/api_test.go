package openstack

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	gos "github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/keypairs"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/attributestags"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"
	"golang.org/x/crypto/ssh"
)

// call is one raw HTTP request to the cloud.
type call struct {
	method, path, token, body string
	header                    map[string]string
}

// do sends a raw request and decodes the JSON answer, if any.
func (e *testEnv) do(t *testing.T, c call) (int, map[string]any, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), c.method, e.srv.URL+c.path, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("X-Auth-Token", c.token)
	}
	if c.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(data) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("%s %s: bad JSON %q: %v", c.method, c.path, data, err)
		}
	}
	return resp.StatusCode, m, resp.Header
}

// token returns a token of a project's user, scoped to its project.
func (e *testEnv) token(t *testing.T, p Project) string {
	t.Helper()
	status, _, h := e.do(t, call{method: "POST", path: "/identity/v3/auth/tokens", body: passwordAuth(p.User, p.Password, `{"name":"Default"}`, `{"project":{"id":"`+p.ID+`"}}`)})
	if status != http.StatusCreated {
		t.Fatalf("token for %s: %d", p.User, status)
	}
	return h.Get("X-Subject-Token")
}

// passwordAuth is a Keystone password auth body.
func passwordAuth(user, password, domain, scope string) string {
	b := `{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"` + user + `","password":"` + password + `"`
	if domain != "" {
		b += `,"domain":` + domain
	}
	b += `}}}`
	if scope != "" {
		b += `,"scope":` + scope
	}
	return b + `}}`
}

func TestKeystoneAuthentication(t *testing.T) {
	e := newTestEnv(t, Config{})
	test, prod := project(t, "test"), project(t, "prod")
	valid := e.token(t, test)
	for _, tc := range []struct {
		name string
		body string
		want int
	}{
		{"name, domain name, project id", passwordAuth(test.User, test.Password, `{"name":"Default"}`, `{"project":{"id":"`+test.ID+`"}}`), 201},
		{"domain id, project name", passwordAuth(test.User, test.Password, `{"id":"default"}`, `{"project":{"name":"test","domain":{"name":"Default"}}}`), 201},
		{"domain name in lower case", passwordAuth(test.User, test.Password, `{"name":"default"}`, ""), 201},
		{"user id, no scope", `{"auth":{"identity":{"methods":["password"],"password":{"user":{"id":"` + test.UserID() + `","password":"` + test.Password + `"}}}}}`, 201},
		{"token method", `{"auth":{"identity":{"methods":["token"],"token":{"id":"` + valid + `"}},"scope":{"project":{"id":"` + test.ID + `"}}}}`, 201},
		{"wrong password", passwordAuth(test.User, "nope", `{"name":"Default"}`, ""), 401},
		{"unknown user", passwordAuth("user-nobody", "nope", `{"name":"Default"}`, ""), 401},
		{"other domain", passwordAuth(test.User, test.Password, `{"name":"Other"}`, ""), 401},
		{"user name without domain", passwordAuth(test.User, test.Password, "", ""), 400},
		{"another project", passwordAuth(test.User, test.Password, `{"name":"Default"}`, `{"project":{"id":"`+prod.ID+`"}}`), 401},
		{"domain scope", passwordAuth(test.User, test.Password, `{"name":"Default"}`, `{"domain":{"id":"default"}}`), 401},
		{"no identity", `{"auth":{}}`, 400},
		{"not JSON", `{`, 400},
		{"unknown token", `{"auth":{"identity":{"methods":["token"],"token":{"id":"gAAAAAnope"}}}}`, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body, h := e.do(t, call{method: "POST", path: "/identity/v3/auth/tokens", body: tc.body})
			if status != tc.want {
				t.Fatalf("status %d, want %d: %v", status, tc.want, body)
			}
			if status != 201 {
				if errDoc, _ := body["error"].(map[string]any); errDoc["code"] != float64(tc.want) {
					t.Errorf("error document %v", body)
				}
				return
			}
			tok, _ := body["token"].(map[string]any)
			proj, _ := tok["project"].(map[string]any)
			if h.Get("X-Subject-Token") == "" || proj["id"] != test.ID || tok["catalog"] == nil {
				t.Errorf("token %v", body)
			}
		})
	}
}

func TestVersionDiscovery(t *testing.T) {
	e := newTestEnv(t, Config{})
	for _, tc := range []struct {
		path   string
		status int
		check  func(map[string]any) bool
	}{
		{"/identity", 300, func(m map[string]any) bool {
			vs, _ := m["versions"].(map[string]any)["values"].([]any)
			return len(vs) == 1 && vs[0].(map[string]any)["id"] == "v3.14"
		}},
		{"/identity/v3", 200, func(m map[string]any) bool { return m["version"].(map[string]any)["status"] == "stable" }},
		{"/identity/v3/", 200, func(m map[string]any) bool { return m["version"] != nil }},
		{"/compute/GRA11", 200, func(m map[string]any) bool { return len(m["versions"].([]any)) == 1 }},
		{"/compute/GRA11/v2.1", 200, func(m map[string]any) bool {
			v := m["version"].(map[string]any)
			return v["version"] == "2.79" && v["min_version"] == "2.1"
		}},
		{"/network/SBG5/", 200, func(m map[string]any) bool {
			v := m["versions"].([]any)[0].(map[string]any)
			return v["id"] == "v2.0" && strings.HasSuffix(v["links"].([]any)[0].(map[string]any)["href"].(string), "/network/SBG5/v2.0/")
		}},
		{"/image/GRA11/", 300, func(m map[string]any) bool { return len(m["versions"].([]any)) > 1 }},
		{"/compute/NOPE/v2.1", 404, nil},
	} {
		t.Run(tc.path, func(t *testing.T) {
			status, body, _ := e.do(t, call{method: "GET", path: tc.path})
			if status != tc.status || (tc.check != nil && !tc.check(body)) {
				t.Errorf("status %d (want %d), body %v", status, tc.status, body)
			}
		})
	}
}

func TestMicroversionParsing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header map[string]string
		want   string
		status int
	}{
		{"none", nil, "2.1", 0},
		{"compute", map[string]string{"OpenStack-API-Version": "compute 2.10"}, "2.10", 0},
		{"latest", map[string]string{"OpenStack-API-Version": "compute latest"}, "2.79", 0},
		{"several services", map[string]string{"OpenStack-API-Version": "volume 3.0, compute 2.47"}, "2.47", 0},
		{"legacy header", map[string]string{"X-OpenStack-Nova-API-Version": "2.5"}, "2.5", 0},
		{"other service only", map[string]string{"OpenStack-API-Version": "volume 3.59"}, "2.1", 0},
		{"too new", map[string]string{"OpenStack-API-Version": "compute 2.100"}, "", 406},
		{"wrong major", map[string]string{"OpenStack-API-Version": "compute 3.1"}, "", 406},
		{"malformed", map[string]string{"OpenStack-API-Version": "compute 2.x"}, "", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tc.header {
				h.Set(k, v)
			}
			mv, status, msg := parseMicroversion(h)
			if status != tc.status || (status == 0 && mv.String() != tc.want) || (status != 0) == (msg == "") {
				t.Errorf("got %v %d %q, want %s %d", mv, status, msg, tc.want, tc.status)
			}
		})
	}
}

func TestMicroversionShapes(t *testing.T) {
	e := newTestEnv(t, Config{})
	test := project(t, "test")
	tok := e.token(t, test)
	base := "/compute/GRA11/v2.1/" + test.ID
	e.do(t, call{method: "POST", path: base + "/os-keypairs", token: tok, body: `{"keypair":{"name":"deploy","public_key":"` + testPublicKey + `"}}`})
	for _, tc := range []struct {
		version    string
		wantStatus int
		check      func(map[string]any, http.Header) bool
	}{
		{"", 200, func(m map[string]any, h http.Header) bool {
			k := m["keypair"].(map[string]any)
			return h.Get("OpenStack-API-Version") == "compute 2.1" && k["type"] == nil
		}},
		{"compute 2.10", 200, func(m map[string]any, h http.Header) bool {
			k := m["keypair"].(map[string]any)
			return h.Get("OpenStack-API-Version") == "compute 2.10" && h.Get("X-OpenStack-Nova-API-Version") == "2.10" && k["type"] == "ssh"
		}},
		{"compute 2.99", 406, nil},
	} {
		t.Run(tc.version, func(t *testing.T) {
			status, body, h := e.do(t, call{method: "GET", path: base + "/os-keypairs/deploy", token: tok, header: map[string]string{"OpenStack-API-Version": tc.version}})
			if status != tc.wantStatus || (tc.check != nil && !tc.check(body, h)) {
				t.Errorf("status %d, body %v, headers %v", status, body, h)
			}
		})
	}

	// From 2.47 a server embeds its flavor; before, it links to it.
	netID := e.cloud.extNet("GRA11").NetworkID
	body := `{"server":{"name":"s","flavorRef":"` + flavorID("GRA11", "b3-8") + `","imageRef":"` + imageID("GRA11", "Debian 12") + `","networks":[{"uuid":"` + netID + `"}]}}`
	status, created, _ := e.do(t, call{method: "POST", path: base + "/servers", token: tok, body: body})
	if status != 202 {
		t.Fatalf("create: %d %v", status, created)
	}
	id := created["server"].(map[string]any)["id"].(string)
	for version, want := range map[string]string{"compute 2.1": "id", "compute 2.47": "original_name"} {
		_, got, _ := e.do(t, call{method: "GET", path: base + "/servers/" + id, token: tok, header: map[string]string{"OpenStack-API-Version": version}})
		if fl := got["server"].(map[string]any)["flavor"].(map[string]any); fl[want] == nil {
			t.Errorf("%s: flavor %v lacks %s", version, fl, want)
		}
	}
	// From 2.37 networks are required.
	noNet := `{"server":{"name":"s","flavorRef":"` + flavorID("GRA11", "b3-8") + `","imageRef":"` + imageID("GRA11", "Debian 12") + `"}}`
	if status, _, _ := e.do(t, call{method: "POST", path: base + "/servers", token: tok, body: noNet, header: map[string]string{"OpenStack-API-Version": "compute 2.37"}}); status != 400 {
		t.Errorf("create without networks at 2.37: %d, want 400", status)
	}
	if status, _, _ := e.do(t, call{method: "POST", path: base + "/servers", token: tok, body: noNet}); status != 202 {
		t.Errorf("create without networks at 2.1: %d, want 202", status)
	}
}

func TestErrorShapes(t *testing.T) {
	e := newTestEnv(t, Config{})
	test := project(t, "test")
	tok := e.token(t, test)
	compute := "/compute/GRA11/v2.1/" + test.ID
	e.do(t, call{method: "POST", path: compute + "/os-keypairs", token: tok, body: `{"keypair":{"name":"deploy","public_key":"` + testPublicKey + `"}}`})
	for _, tc := range []struct {
		name   string
		c      call
		status int
		key    string // top-level key of the error document
		typ    string // NeutronError type
	}{
		{"no token", call{method: "GET", path: compute + "/servers"}, 401, "error", ""},
		{"bad token", call{method: "GET", path: "/network/GRA11/v2.0/ports", token: "gAAAAAnope"}, 401, "error", ""},
		{"server not found", call{method: "GET", path: compute + "/servers/nope", token: tok}, 404, "itemNotFound", ""},
		{"flavor not found", call{method: "GET", path: compute + "/flavors/nope", token: tok}, 404, "itemNotFound", ""},
		{"key pair exists", call{method: "POST", path: compute + "/os-keypairs", token: tok, body: `{"keypair":{"name":"deploy","public_key":"` + testPublicKey + `"}}`}, 409, "conflictingRequest", ""},
		{"bad public key", call{method: "POST", path: compute + "/os-keypairs", token: tok, body: `{"keypair":{"name":"x","public_key":"ssh-rsa nope"}}`}, 400, "badRequest", ""},
		{"bad key pair name", call{method: "POST", path: compute + "/os-keypairs", token: tok, body: `{"keypair":{"name":"a/b"}}`}, 400, "badRequest", ""},
		{"bad flavor", call{method: "POST", path: compute + "/servers", token: tok, body: `{"server":{"name":"s","flavorRef":"nope","imageRef":"` + imageID("GRA11", "Debian 12") + `"}}`}, 400, "badRequest", ""},
		{"bad image", call{method: "POST", path: compute + "/servers", token: tok, body: `{"server":{"name":"s","flavorRef":"` + flavorID("GRA11", "d2-2") + `","imageRef":"nope"}}`}, 400, "badRequest", ""},
		{"bad key name", call{method: "POST", path: compute + "/servers", token: tok, body: `{"server":{"name":"s","flavorRef":"` + flavorID("GRA11", "d2-2") + `","imageRef":"` + imageID("GRA11", "Debian 12") + `","key_name":"nope"}}`}, 400, "badRequest", ""},
		{"bad group", call{method: "POST", path: compute + "/servers", token: tok, body: `{"server":{"name":"s","flavorRef":"` + flavorID("GRA11", "d2-2") + `","imageRef":"` + imageID("GRA11", "Debian 12") + `","security_groups":[{"name":"nope"}]}}`}, 400, "badRequest", ""},
		{"bad network", call{method: "POST", path: compute + "/servers", token: tok, body: `{"server":{"name":"s","flavorRef":"` + flavorID("GRA11", "d2-2") + `","imageRef":"` + imageID("GRA11", "Debian 12") + `","networks":[{"uuid":"` + e.cloud.extNet("SBG5").NetworkID + `"}]}}`}, 400, "badRequest", ""},
		{"bad user data", call{method: "POST", path: compute + "/servers", token: tok, body: `{"server":{"name":"s","flavorRef":"` + flavorID("GRA11", "d2-2") + `","imageRef":"` + imageID("GRA11", "Debian 12") + `","user_data":"%%%"}}`}, 400, "badRequest", ""},
		{"unknown action", call{method: "POST", path: compute + "/servers/nope/action", token: tok, body: `{"explode":{}}`}, 404, "itemNotFound", ""},
		{"group not found", call{method: "GET", path: "/network/GRA11/v2.0/security-groups/nope", token: tok}, 404, "NeutronError", "SecurityGroupNotFound"},
		{"network not found", call{method: "GET", path: "/network/GRA11/v2.0/networks/Ext-Net", token: tok}, 404, "NeutronError", "NetworkNotFound"},
		{"create network", call{method: "POST", path: "/network/GRA11/v2.0/networks", token: tok, body: `{"network":{}}`}, 403, "NeutronError", "PolicyNotAuthorized"},
		{"default group named again", call{method: "POST", path: "/network/GRA11/v2.0/security-groups", token: tok, body: `{"security_group":{"name":"default"}}`}, 409, "NeutronError", "SecurityGroupDefaultAlreadyExists"},
		{"group for another project", call{method: "POST", path: "/network/GRA11/v2.0/security-groups", token: tok, body: `{"security_group":{"name":"x","project_id":"` + project(t, "prod").ID + `"}}`}, 403, "NeutronError", "PolicyNotAuthorized"},
		{"image not found", call{method: "GET", path: "/image/GRA11/v2/images/nope", token: tok}, 404, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body, _ := e.do(t, tc.c)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %v", status, tc.status, body)
			}
			if tc.key == "" {
				return
			}
			doc, _ := body[tc.key].(map[string]any)
			if doc == nil || doc["message"] == nil || (tc.typ != "" && doc["type"] != tc.typ) {
				t.Errorf("error document %v, want %s %s", body, tc.key, tc.typ)
			}
		})
	}
}

func TestSecurityGroupRuleValidation(t *testing.T) {
	e := newTestEnv(t, Config{})
	test := project(t, "test")
	tok := e.token(t, test)
	_, g, _ := e.do(t, call{method: "POST", path: "/network/GRA11/v2.0/security-groups", token: tok, body: `{"security_group":{"name":"acco-test","description":"d"}}`})
	sg := g["security_group"].(map[string]any)["id"].(string)
	_, other, _ := e.do(t, call{method: "POST", path: "/network/GRA11/v2.0/security-groups", token: tok, body: `{"security_group":{"name":"peers"}}`})
	peers := other["security_group"].(map[string]any)["id"].(string)
	rule := func(fields string) string {
		return `{"security_group_rule":{"security_group_id":"` + sg + `"` + fields + `}}`
	}
	for _, tc := range []struct {
		name   string
		body   string
		status int
		typ    string
	}{
		{"ssh from anywhere", rule(`,"direction":"ingress","protocol":"tcp","port_range_min":22,"port_range_max":22,"remote_ip_prefix":"0.0.0.0/0"`), 201, ""},
		{"same rule again", rule(`,"direction":"ingress","protocol":"tcp","port_range_min":22,"port_range_max":22,"remote_ip_prefix":"0.0.0.0/0"`), 409, "SecurityGroupRuleExists"},
		{"same rule by number", rule(`,"direction":"ingress","protocol":"6","port_range_min":22,"port_range_max":22,"remote_ip_prefix":"0.0.0.0/0"`), 409, "SecurityGroupRuleExists"},
		{"any prefix equals none", rule(`,"direction":"ingress","protocol":"tcp","port_range_min":22,"port_range_max":22`), 409, "SecurityGroupRuleExists"},
		{"mqtt range, host bits kept", rule(`,"direction":"ingress","protocol":"tcp","port_range_min":1883,"port_range_max":8883,"remote_ip_prefix":"203.0.113.7/24"`), 201, ""},
		{"IPv6 https", rule(`,"direction":"ingress","ethertype":"IPv6","protocol":"tcp","port_range_min":443,"port_range_max":443,"remote_ip_prefix":"::/0"`), 201, ""},
		{"icmp type and code", rule(`,"direction":"ingress","protocol":"icmp","port_range_min":8,"port_range_max":0`), 201, ""},
		{"from a group", rule(`,"direction":"ingress","protocol":"udp","port_range_min":53,"port_range_max":53,"remote_group_id":"` + peers + `"`), 201, ""},
		{"egress already there", rule(`,"direction":"egress","ethertype":"IPv4"`), 409, "SecurityGroupRuleExists"},
		{"no direction", rule(`,"protocol":"tcp"`), 400, "HTTPBadRequest"},
		{"bad direction", rule(`,"direction":"sideways"`), 400, "HTTPBadRequest"},
		{"bad ethertype", rule(`,"direction":"ingress","ethertype":"IPv5"`), 400, "SecurityGroupRuleInvalidEtherType"},
		{"bad protocol", rule(`,"direction":"ingress","protocol":"carrier-pigeon"`), 400, "SecurityGroupRuleInvalidProtocol"},
		{"ports without protocol", rule(`,"direction":"ingress","port_range_min":22,"port_range_max":22`), 400, "SecurityGroupProtocolRequiredWithPorts"},
		{"reversed range", rule(`,"direction":"ingress","protocol":"tcp","port_range_min":23,"port_range_max":22`), 400, "SecurityGroupInvalidPortRange"},
		{"port zero", rule(`,"direction":"ingress","protocol":"tcp","port_range_min":0,"port_range_max":22`), 400, "SecurityGroupInvalidPortValue"},
		{"port too high", rule(`,"direction":"ingress","protocol":"udp","port_range_min":1,"port_range_max":70000`), 400, "SecurityGroupInvalidPortValue"},
		{"icmp code without type", rule(`,"direction":"ingress","protocol":"icmp","port_range_max":0`), 400, "SecurityGroupMissingIcmpType"},
		{"ports on gre", rule(`,"direction":"ingress","protocol":"gre","port_range_min":1,"port_range_max":2`), 400, "SecurityGroupInvalidProtocolForPort"},
		{"prefix and group", rule(`,"direction":"ingress","remote_ip_prefix":"10.0.0.0/8","remote_group_id":"` + peers + `"`), 400, "SecurityGroupRemoteGroupAndRemoteIpPrefix"},
		{"IPv6 prefix on IPv4 rule", rule(`,"direction":"ingress","remote_ip_prefix":"::/0"`), 400, "SecurityGroupRuleParameterConflict"},
		{"bad prefix", rule(`,"direction":"ingress","remote_ip_prefix":"10.0.0.0/33"`), 400, "HTTPBadRequest"},
		{"icmpv6 on IPv4", rule(`,"direction":"ingress","protocol":"ipv6-icmp"`), 400, "SecurityGroupEthertypeConflictWithProtocol"},
		{"legacy icmp name on IPv6", rule(`,"direction":"ingress","ethertype":"IPv6","protocol":"icmp"`), 201, ""},
		{"same as ipv6-icmp", rule(`,"direction":"ingress","ethertype":"IPv6","protocol":"ipv6-icmp"`), 409, "SecurityGroupRuleExists"},
		{"unknown group", `{"security_group_rule":{"security_group_id":"nope","direction":"ingress"}}`, 404, "SecurityGroupNotFound"},
		{"unknown remote group", rule(`,"direction":"ingress","remote_group_id":"nope"`), 404, "SecurityGroupNotFound"},
		{"no group", `{"security_group_rule":{"direction":"ingress"}}`, 400, "HTTPBadRequest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body, _ := e.do(t, call{method: "POST", path: "/network/GRA11/v2.0/security-group-rules", token: tok, body: tc.body})
			if status != tc.status {
				t.Fatalf("status %d, want %d: %v", status, tc.status, body)
			}
			if tc.typ != "" {
				if doc, _ := body["NeutronError"].(map[string]any); doc["type"] != tc.typ {
					t.Errorf("error %v, want type %s", body, tc.typ)
				}
			}
		})
	}
	// Neutron keeps the prefix as given; rules list by group.
	_, list, _ := e.do(t, call{method: "GET", path: "/network/GRA11/v2.0/security-group-rules?security_group_id=" + sg + "&protocol=tcp&port_range_min=1883", token: tok})
	rules := list["security_group_rules"].([]any)
	if len(rules) != 1 || rules[0].(map[string]any)["remote_ip_prefix"] != "203.0.113.7/24" {
		t.Errorf("rules %v", rules)
	}
	// Deleting the remote group takes the rules naming it along.
	if status, _, _ := e.do(t, call{method: "DELETE", path: "/network/GRA11/v2.0/security-groups/" + peers, token: tok}); status != 204 {
		t.Errorf("delete peers: %d", status)
	}
	_, list, _ = e.do(t, call{method: "GET", path: "/network/GRA11/v2.0/security-group-rules?remote_group_id=" + peers, token: tok})
	if n := len(list["security_group_rules"].([]any)); n != 0 {
		t.Errorf("%d rules still name the deleted group", n)
	}
}

func TestSnapshotRestore(t *testing.T) {
	clk := &clock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	changes := 0
	cfg := Config{BuildDelay: time.Minute, Now: clk.Now, OnChange: func() { changes++ }}
	e := newTestEnv(t, cfg)
	ctx := t.Context()
	test := project(t, "test")
	cl := serviceClients(t, e.login(t, test, false), "GRA11")
	sg := setUpProject(t, cl)
	s := createServer(t, cl, "acco-test-app", "acco-test", map[string]string{"acco-env": "test"})
	e.cloud.InjectServerError(test.ID, "")
	if changes == 0 {
		t.Error("OnChange never called")
	}
	before := changes
	if _, err := servers.List(cl.compute, nil).AllPages(ctx); err != nil {
		t.Fatal(err)
	}
	if changes != before {
		t.Error("OnChange called for a read")
	}
	clk.Add(time.Minute)
	hostKey, err := e.cloud.ServerHostKey(test.ID, s.ID)
	if err != nil {
		t.Fatal(err)
	}

	data, err := e.cloud.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	restored, err := Restore(cfg, data)
	if err != nil {
		t.Fatal(err)
	}
	again, err := restored.Snapshot()
	if err != nil || !bytes.Equal(again, data) {
		t.Fatalf("snapshot of the restored cloud differs: %v", err)
	}
	if got, want := restored.Counts(), e.cloud.Counts(); !equalCounts(got, want) {
		t.Errorf("counts %v, want %v", got, want)
	}

	// Tokens do not survive: clients log in again.
	e2 := serveCloud(t, restored)
	stale := *cl.compute
	stale.Endpoint = strings.Replace(stale.Endpoint, e.srv.URL, e2.srv.URL, 1)
	stale.ResourceBase = ""
	if _, err := servers.List(&stale, nil).AllPages(ctx); statusOf(err) != http.StatusUnauthorized {
		t.Errorf("old token on the restored cloud: %v, want 401", err)
	}
	cl2 := serviceClients(t, e2.login(t, test, false), "GRA11")
	got, err := servers.Get(ctx, cl2.compute, s.ID).Extract()
	if err != nil || got.Status != "ACTIVE" || got.Metadata["acco-env"] != "test" {
		t.Fatalf("restored server %+v %v", got, err)
	}
	if kp, err := keypairs.Get(ctx, cl2.compute, "deploy", nil).Extract(); err != nil || !strings.HasPrefix(kp.PublicKey, "ssh-ed25519 ") {
		t.Errorf("restored key pair %+v %v", kp, err)
	}
	if tags, err := attributestags.List(ctx, cl2.network, "security-groups", sg.ID).Extract(); err != nil || len(tags) != 2 {
		t.Errorf("restored tags %v %v", tags, err)
	}
	if g, err := groups.Get(ctx, cl2.network, sg.ID).Extract(); err != nil || len(g.Rules) != 3 {
		t.Errorf("restored group %+v %v", g, err)
	}
	key2, err := restored.ServerHostKey(test.ID, s.ID)
	if err != nil || ssh.FingerprintSHA256(key2.PublicKey()) != ssh.FingerprintSHA256(hostKey.PublicKey()) {
		t.Errorf("restored host key differs: %v", err)
	}
	// The pending fault and the used address came back too.
	next := createServer(t, cl2, "acco-test-next", "acco-test", nil)
	clk.Add(time.Minute)
	n, err := servers.Get(ctx, cl2.compute, next.ID).Extract()
	if err != nil || n.Status != "ERROR" {
		t.Errorf("server after a restored injection: %+v %v", n, err)
	}
	third := createServer(t, cl2, "acco-test-third", "acco-test", nil)
	clk.Add(time.Minute)
	if addr := waitAddress(t, cl2, third.ID); addr == waitAddress(t, cl2, s.ID) {
		t.Errorf("address %s given twice", addr)
	}
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestRestoreRefuses(t *testing.T) {
	good, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := good.Snapshot()
	for _, tc := range []struct {
		name string
		cfg  Config
		data string
	}{
		{"not JSON", Config{}, "{"},
		{"newer format", Config{}, `{"format_version":2}`},
		{"unknown project", Config{}, `{"format_version":1,"keypairs":[{"project_id":"ffff","region":"GRA11","name":"k"}]}`},
		{"unknown region", Config{}, `{"format_version":1,"security_groups":[{"project_id":"` + project(t, "test").ID + `","region":"BHS5","id":"x"}]}`},
		{"bad config", Config{Regions: []string{"GRA11", "GRA11"}}, string(data)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Restore(tc.cfg, []byte(tc.data)); err == nil {
				t.Error("restored")
			}
		})
	}
}

func TestHandlerBaseURL(t *testing.T) {
	for _, tc := range []struct {
		name  string
		base  func(srvURL string) string
		strip string // prefix the mux strips before the handler, if any
		auth  string // identity endpoint path the client uses
	}{
		{"fixed base", func(u string) string { return u }, "", "/identity/v3"},
		{"base from Host", func(string) string { return "" }, "", "/identity/v3"},
		{"unversioned auth URL", func(u string) string { return u }, "", "/identity/"},
		{"base with a path", func(u string) string { return u + "/openstack" }, "", "/openstack/identity/v3"},
		{"base with a path, stripped", func(u string) string { return u + "/openstack" }, "/openstack", "/openstack/identity/v3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(Config{})
			if err != nil {
				t.Fatal(err)
			}
			var h http.Handler
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
			defer srv.Close()
			h = c.Handler(tc.base(srv.URL))
			if tc.strip != "" {
				h = http.StripPrefix(tc.strip, h)
			}
			test := project(t, "test")
			pc, err := gos.AuthenticatedClient(t.Context(), gophercloud.AuthOptions{
				IdentityEndpoint: srv.URL + tc.auth, Username: test.User, Password: test.Password,
				DomainName: "Default", TenantID: test.ID,
			})
			if err != nil {
				t.Fatal(err)
			}
			cl := serviceClients(t, pc, "SBG5")
			if _, err := keypairs.List(cl.compute, nil).AllPages(t.Context()); err != nil {
				t.Errorf("compute: %v", err)
			}
			if _, err := groups.List(cl.network, groups.ListOpts{}).AllPages(t.Context()); err != nil {
				t.Errorf("network: %v", err)
			}
		})
	}
}
