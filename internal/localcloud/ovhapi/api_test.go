package ovhapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ovh/go-ovh/ovh"
)

// service is the part of cloud.project.database.Service the tests read.
type service struct {
	ID             string `json:"id"`
	Status         string `json:"status"`
	Plan           string `json:"plan"`
	Flavor         string `json:"flavor"`
	Version        string `json:"version"`
	Description    string `json:"description"`
	NodeNumber     int    `json:"nodeNumber"`
	IPRestrictions []struct {
		IP          string `json:"ip"`
		Description string `json:"description"`
		Status      string `json:"status"`
	} `json:"ipRestrictions"`
	Endpoints []struct {
		Component string `json:"component"`
		Domain    string `json:"domain"`
		Port      *int   `json:"port"`
		SSLMode   string `json:"sslMode"`
		URI       string `json:"uri"`
	} `json:"endpoints"`
	Disk struct {
		Size int `json:"size"`
	} `json:"disk"`
	DeletionProtection bool `json:"deletionProtection"`
}

type user struct {
	ID       string   `json:"id"`
	Username string   `json:"username"`
	Password *string  `json:"password"`
	Roles    []string `json:"roles"`
	Status   string   `json:"status"`
}

func TestSignatureMatchesGoOVHVectors(t *testing.T) {
	// Vectors from go-ovh's own tests (ovh/ovh_test.go), URL
	// https://eu.api.ovh.com/1.0/auth at 1457018875.
	const target = "https://eu.api.ovh.com/1.0/auth"
	body := []byte(`{"a":"b","c":"d"}`)
	tests := []struct {
		method string
		body   []byte
		want   string
	}{
		{"GET", nil, "$1$e9556054b6309771395efa467c22e627407461ad"},
		{"POST", body, "$1$ec2fb5c7a81f64723c77d2e5b609ae6f58a84fc1"},
		{"PUT", body, "$1$8a75a9e7c8e7296c9dbeda6a2a735eb6bd58ec4b"},
		{"DELETE", nil, "$1$a1eecd00b3b02b6cf5708b84b9ff42059a950d85"},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			if got := Signature(testAS, testCK, tt.method, target, tt.body, 1457018875); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	good := Credential{ApplicationKey: "a", ApplicationSecret: "b", ConsumerKey: "c"}
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no credential", Config{Projects: []string{projTest}}},
		{"incomplete credential", Config{Credentials: []Credential{{ApplicationKey: "a"}}}},
		{"bad project", Config{Credentials: []Credential{good}, Projects: []string{"not-hex"}}},
		{"duplicate project", Config{Credentials: []Credential{good}, Projects: []string{projTest, projTest}}},
		{"negative delay", Config{Credentials: []Credential{good}, CreateDelay: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg); err == nil {
				t.Fatal("New accepted a bad config")
			}
		})
	}
}

// TestLifecycle runs the database lifecycle acco needs, with go-ovh.
func TestLifecycle(t *testing.T) {
	e := newEnv(t, nil)

	var details struct {
		Account string `json:"account"`
		Method  string `json:"method"`
	}
	e.must("GET", "/auth/details", "", &details)
	if details.Account == "" || details.Method != "account" {
		t.Fatalf("auth details %+v", details)
	}

	var projects []string
	e.must("GET", "/cloud/project", "", &projects)
	if !slices.Equal(projects, []string{projTest, projProd}) {
		t.Fatalf("projects %v", projects)
	}
	var proj map[string]any
	e.must("GET", "/cloud/project/"+projTest, "", &proj)
	if proj["project_id"] != projTest || proj["status"] != "ok" {
		t.Fatalf("project %v", proj)
	}

	var created service
	e.must("POST", pgBase, `{"description":"main","plan":"essential","version":"17",
		"nodesPattern":{"flavor":"db1-4","number":1,"region":"GRA"},"disk":{"size":80},
		"ipRestrictions":[{"ip":"198.51.100.7","description":"bastion"}],"backups":{"regions":["GRA"],"time":"02:30:00"},
		"maintenanceTime":"04:00:00"}`, &created)
	if created.Status != "CREATING" || created.ID == "" {
		t.Fatalf("created %+v", created)
	}
	if len(created.Endpoints) != 0 {
		t.Fatalf("endpoints before READY: %+v", created.Endpoints)
	}
	if len(created.IPRestrictions) != 1 || created.IPRestrictions[0].IP != "198.51.100.7/32" {
		t.Fatalf("ip restrictions %+v", created.IPRestrictions)
	}
	clusterPath := pgBase + "/" + created.ID

	var ids []string
	e.must("GET", pgBase, "", &ids)
	if !slices.Equal(ids, []string{created.ID}) {
		t.Fatalf("cluster list %v", ids)
	}

	// Users cannot be created before READY.
	err := e.do("POST", clusterPath+"/user", `{"name":"early"}`, nil)
	wantAPIError(t, err, http.StatusConflict, "Client::Conflict::ServiceNotReady")

	// Poll until READY, as acco and Terraform do.
	var svc service
	for i := 0; ; i++ {
		e.must("GET", clusterPath, "", &svc)
		if svc.Status == "READY" {
			break
		}
		if svc.Status != "CREATING" || i > 10 {
			t.Fatalf("status %s after %d polls", svc.Status, i)
		}
		e.clock.Advance(time.Minute)
	}
	if len(svc.Endpoints) != 1 || svc.Endpoints[0].Component != "postgresql" ||
		svc.Endpoints[0].Domain != "127.0.0.1" || svc.Endpoints[0].Port == nil || *svc.Endpoints[0].Port != 54321 ||
		svc.Endpoints[0].SSLMode != "require" {
		t.Fatalf("endpoints %+v", svc.Endpoints)
	}
	e.must("GET", "/cloud/project/"+projTest+"/database/service/"+created.ID, "", &svc)

	// Add an IP with a PUT of the whole list, as Terraform does.
	e.must("PUT", clusterPath, `{"ipRestrictions":[{"ip":"198.51.100.7/32","description":"bastion"},{"ip":"203.0.113.0/24","description":"app"}]}`, &svc)
	if svc.Status != "UPDATING" || len(svc.IPRestrictions) != 2 {
		t.Fatalf("after PUT: %+v", svc)
	}
	e.clock.Advance(2 * time.Minute)
	e.must("GET", clusterPath, "", &svc)
	if svc.Status != "READY" {
		t.Fatalf("status %s after the update", svc.Status)
	}
	var ips []string
	e.must("GET", clusterPath+"/ipRestriction", "", &ips)
	if !slices.Equal(ips, []string{"198.51.100.7/32", "203.0.113.0/24"}) {
		t.Fatalf("ipRestriction list %v", ips)
	}

	// Nodes.
	var nodes []string
	e.must("GET", clusterPath+"/node", "", &nodes)
	if len(nodes) != 1 {
		t.Fatalf("nodes %v", nodes)
	}
	var n map[string]any
	e.must("GET", clusterPath+"/node/"+nodes[0], "", &n)
	if n["region"] != "GRA" || n["flavor"] != "db1-4" || n["status"] != "READY" {
		t.Fatalf("node %v", n)
	}

	// Databases: defaultdb, then ours.
	var dbs []string
	e.must("GET", clusterPath+"/database", "", &dbs)
	if len(dbs) != 1 {
		t.Fatalf("databases %v", dbs)
	}
	var def map[string]any
	e.must("GET", clusterPath+"/database/"+dbs[0], "", &def)
	if def["name"] != "defaultdb" || def["default"] != true {
		t.Fatalf("default database %v", def)
	}
	var db map[string]any
	e.must("POST", clusterPath+"/database", `{"name":"acco"}`, &db)
	dbID, _ := db["id"].(string)
	if db["name"] != "acco" || db["default"] != false || dbID == "" {
		t.Fatalf("database %v", db)
	}
	wantAPIError(t, e.do("POST", clusterPath+"/database", `{"name":"acco"}`, nil), http.StatusConflict, "Client::Conflict::DatabaseAlreadyExists")
	if !e.backend.databases[created.ID+"/acco"] {
		t.Fatal("the backend has no database acco")
	}

	// Users: avnadmin from the start; ours with its password once.
	var users []string
	e.must("GET", clusterPath+"/user", "", &users)
	if len(users) != 1 {
		t.Fatalf("users %v", users)
	}
	var admin user
	e.must("GET", clusterPath+"/user/"+users[0], "", &admin)
	if admin.Username != "avnadmin" || admin.Password != nil {
		t.Fatalf("admin %+v", admin)
	}
	var u user
	e.must("POST", clusterPath+"/user", `{"name":"emqx"}`, &u)
	if u.Username != "emqx" || u.Password == nil || len(*u.Password) < 16 || u.Status != "READY" {
		t.Fatalf("created user %+v", u)
	}
	if pw, _ := e.backend.password(created.ID, "emqx"); pw != *u.Password {
		t.Fatal("the backend did not get the returned password")
	}
	var again user
	e.must("GET", clusterPath+"/user/"+u.ID, "", &again)
	if again.Password != nil || again.Username != "emqx" {
		t.Fatalf("GET returned %+v", again)
	}
	var raw map[string]any
	e.must("GET", clusterPath+"/user/"+u.ID, "", &raw)
	if _, has := raw["password"]; has {
		t.Fatal("GET user has a password field")
	}
	wantAPIError(t, e.do("POST", clusterPath+"/user", `{"name":"emqx"}`, nil), http.StatusConflict, "Client::Conflict::PostgresUserAlreadyExist")

	// Reset: a new password, told to the backend.
	var reset user
	e.must("POST", clusterPath+"/user/"+u.ID+"/credentials/reset", "", &reset)
	if reset.Password == nil || *reset.Password == *u.Password {
		t.Fatalf("reset %+v", reset)
	}
	if pw, _ := e.backend.password(created.ID, "emqx"); pw != *reset.Password {
		t.Fatal("the backend did not get the reset password")
	}
	var adminReset user
	e.must("POST", clusterPath+"/user/"+admin.ID+"/credentials/reset", "", &adminReset)
	if adminReset.Password == nil || adminReset.Username != "avnadmin" {
		t.Fatalf("admin reset %+v", adminReset)
	}

	// Delete user, database, cluster.
	e.must("DELETE", clusterPath+"/user/"+u.ID, "", nil)
	wantAPIError(t, e.do("GET", clusterPath+"/user/"+u.ID, "", nil), http.StatusNotFound, "Client::NotFound")
	if _, ok := e.backend.password(created.ID, "emqx"); ok {
		t.Fatal("the backend still has the role")
	}
	wantAPIError(t, e.do("DELETE", clusterPath+"/user/"+admin.ID, "", nil), http.StatusForbidden, "Client::Forbidden")
	e.must("DELETE", clusterPath+"/database/"+dbID, "", nil)
	wantAPIError(t, e.do("GET", clusterPath+"/database/"+dbID, "", nil), http.StatusNotFound, "Client::NotFound")
	wantAPIError(t, e.do("DELETE", clusterPath+"/database/"+dbs[0], "", nil), http.StatusForbidden, "Client::Forbidden")

	e.must("DELETE", clusterPath, "", nil)
	e.must("GET", clusterPath, "", &svc)
	if svc.Status != "DELETING" {
		t.Fatalf("status %s after DELETE", svc.Status)
	}
	e.clock.Advance(time.Minute)
	err = e.do("GET", clusterPath, "", &svc)
	wantAPIError(t, err, http.StatusNotFound, "Client::NotFound")
	e.must("GET", pgBase, "", &ids)
	if len(ids) != 0 {
		t.Fatalf("clusters after delete: %v", ids)
	}
	if len(e.backend.clusters) != 0 {
		t.Fatal("the backend still has the cluster")
	}
	if *e.changes == 0 {
		t.Fatal("OnChange was never called")
	}
}

// TestAuthErrors checks what go-ovh surfaces for bad credentials, a bad
// signature and a skewed clock.
func TestAuthErrors(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxClockSkew = 30 * time.Second })
	tests := []struct {
		name        string
		ak, as, ck  string
		code        int
		message     string
		wantErrCode string
	}{
		{"good", testAK, testAS, testCK, 0, "", ""},
		{"wrong secret", testAK, "not-the-secret", testCK, http.StatusBadRequest, "Invalid signature", "INVALID_SIGNATURE"},
		{"unknown application key", "nope", testAS, testCK, http.StatusForbidden, "This application key is invalid", "INVALID_KEY"},
		{"unknown consumer key", testAK, testAS, "nope", http.StatusForbidden, "This credential does not exist", "INVALID_CREDENTIAL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.newClient(tt.ak, tt.as, tt.ck)
			var ids []string
			err := c.Get("/cloud/project", &ids)
			if tt.code == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			ae := apiErr(t, err)
			if ae.Code != tt.code || ae.Message != tt.message || ae.QueryID == "" {
				t.Fatalf("got %+v", ae)
			}
		})
	}

	t.Run("skewed clock", func(t *testing.T) {
		c := e.newClient(testAK, testAS, testCK)
		if _, err := c.TimeDelta(); err != nil { // reads /auth/time once
			t.Fatal(err)
		}
		e.clock.Advance(2 * time.Minute) // the server's clock jumps
		err := c.Get("/cloud/project", nil)
		ae := apiErr(t, err)
		if ae.Code != http.StatusBadRequest || ae.Message != "Query out of time" {
			t.Fatalf("got %+v", ae)
		}
		// A new client reads /auth/time again and is accepted.
		if err := e.newClient(testAK, testAS, testCK).Get("/cloud/project", nil); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("raw bodies", func(t *testing.T) {
		tests := []struct {
			name      string
			header    map[string]string
			status    int
			errorCode string
		}{
			{"no headers", nil, http.StatusUnauthorized, "NOT_AUTHENTICATED"},
			{"no timestamp", map[string]string{"X-Ovh-Application": testAK, "X-Ovh-Consumer": testCK}, http.StatusBadRequest, "QUERY_TIME_OUT"},
			{"bad signature", map[string]string{
				"X-Ovh-Application": testAK, "X-Ovh-Consumer": testCK,
				"X-Ovh-Timestamp": strconv.FormatInt(e.clock.Now().Unix(), 10), "X-Ovh-Signature": "$1$00",
			}, http.StatusBadRequest, "INVALID_SIGNATURE"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				res, body := e.rawRequest("GET", "/1.0/cloud/project", tt.header, "")
				var m map[string]string
				if err := json.Unmarshal(body, &m); err != nil {
					t.Fatal(err)
				}
				if res.StatusCode != tt.status || m["errorCode"] != tt.errorCode ||
					m["httpCode"] != strconv.Itoa(tt.status)+" "+http.StatusText(tt.status) || res.Header.Get("X-Ovh-Queryid") == "" {
					t.Fatalf("%d %v", res.StatusCode, m)
				}
			})
		}
	})

	t.Run("auth time is unauthenticated", func(t *testing.T) {
		res, body := e.rawRequest("GET", "/1.0/auth/time", nil, "")
		ts, err := strconv.ParseInt(string(body), 10, 64)
		if res.StatusCode != http.StatusOK || err != nil || ts != e.clock.Now().Unix() {
			t.Fatalf("%d %s", res.StatusCode, body)
		}
	})

	t.Run("body is signed", func(t *testing.T) {
		// Sign one body and send another.
		ts := e.clock.Now().Unix()
		signed := `{"name":"a"}`
		sig := Signature(testAS, testCK, "POST", e.srv.URL+"/1.0/cloud/project", []byte(signed), ts)
		res, _ := e.rawRequest("POST", "/1.0/cloud/project", map[string]string{
			"X-Ovh-Application": testAK, "X-Ovh-Consumer": testCK,
			"X-Ovh-Timestamp": strconv.FormatInt(ts, 10), "X-Ovh-Signature": sig,
		}, `{"name":"b"}`)
		if res.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d", res.StatusCode)
		}
	})
}

func TestUnknownPathAndV1Prefix(t *testing.T) {
	e := newEnv(t, nil)
	ae := wantAPIError(t, e.do("GET", "/cloud/project/"+projTest+"/nothing/here", "", nil), http.StatusNotFound, "Client::NotFound")
	if ae.Message != "Got an invalid (or empty) URL" {
		t.Fatalf("message %q", ae.Message)
	}
	// go-ovh sends /v1/... paths to the base URL without /1.0.
	var ids []string
	e.must("GET", "/v1/cloud/project", "", &ids)
	if len(ids) != 2 {
		t.Fatalf("projects %v", ids)
	}
	wantAPIError(t, e.do("GET", "/cloud/project/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "", nil), http.StatusNotFound, "Client::NotFound")
}

// TestCreateValidation checks the answers to bad creation bodies.
func TestCreateValidation(t *testing.T) {
	e := newEnv(t, nil)
	pattern := func(flavor, region string, number int) string {
		return `"nodesPattern":{"flavor":"` + flavor + `","region":"` + region + `","number":` + strconv.Itoa(number) + `}`
	}
	tests := []struct {
		name  string
		body  string
		code  int
		class string
	}{
		{"unknown plan", `{"plan":"esential","version":"17",` + pattern("db1-4", "GRA", 1) + `}`, 404, "Client::NotFound"},
		{"unknown flavor", `{"plan":"essential","version":"17",` + pattern("db1-9000", "GRA", 1) + `}`, 404, "Client::NotFound::NoMatchingCompute"},
		{"flavor of another plan", `{"plan":"essential","version":"17",` + pattern("b3-8", "GRA", 1) + `}`, 404, "Client::NotFound::NoMatchingCompute"},
		{"unknown version", `{"plan":"essential","version":"12",` + pattern("db1-4", "GRA", 1) + `}`, 404, "Client::NotFound::NoMatchingCompute"},
		{"OpenStack region name", `{"plan":"essential","version":"17",` + pattern("db1-4", "GRA11", 1) + `}`, 404, "Client::NotFound::NoMatchingCompute"},
		{"one node on Gen 3", `{"plan":"production","version":"17",` + pattern("b3-8", "GRA", 1) + `}`, 404, "Client::NotFound::NoMatchingCompute"},
		{"no nodes", `{"plan":"essential","version":"17"}`, 400, "Client::BadRequest"},
		{"no plan", `{"version":"17",` + pattern("db1-4", "GRA", 1) + `}`, 400, "Client::BadRequest"},
		{"top-level flavor", `{"plan":"essential","version":"17","flavor":"db1-4",` + pattern("db1-4", "GRA", 1) + `}`, 400, "Client::BadRequest"},
		{"number as string", `{"plan":"essential","version":"17","nodesPattern":{"flavor":"db1-4","region":"GRA","number":"1"}}`, 400, "Client::BadRequest"},
		{"bad ip", `{"plan":"essential","version":"17",` + pattern("db1-4", "GRA", 1) + `,"ipRestrictions":[{"ip":"1.2.3.400"}]}`, 400, "Client::BadRequest"},
		{"disk too small", `{"plan":"essential","version":"17",` + pattern("db1-4", "GRA", 1) + `,"disk":{"size":10}}`, 400, "Client::BadRequest"},
		{"disk off step", `{"plan":"essential","version":"17",` + pattern("db1-4", "GRA", 1) + `,"disk":{"size":85}}`, 400, "Client::BadRequest"},
		{"backup region elsewhere", `{"plan":"essential","version":"17",` + pattern("db1-4", "GRA", 1) + `,"backups":{"regions":["SBG"]}}`, 400, "Client::BadRequest"},
		{"bad maintenance time", `{"plan":"essential","version":"17",` + pattern("db1-4", "GRA", 1) + `,"maintenanceTime":"25:00:00"}`, 400, "Client::BadRequest"},
		{"both node forms", `{"plan":"essential","version":"17",` + pattern("db1-4", "GRA", 1) + `,"nodesList":[{"flavor":"db1-4","region":"GRA"}]}`, 400, "Client::BadRequest"},
		{"fork", `{"plan":"essential","version":"17",` + pattern("db1-4", "GRA", 1) + `,"forkFrom":{"serviceId":"5f0e4b36-3b7e-4f43-9e1c-7a0f0a5e2b11"}}`, 400, "Client::BadRequest"},
		{"not JSON", `{"plan":`, 400, "Client::BadRequest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := e.signedRaw("POST", pgBase, tt.body)
			var m map[string]string
			_ = json.Unmarshal(body, &m)
			if res.StatusCode != tt.code || m["class"] != tt.class || m["message"] == "" {
				t.Fatalf("%d %s", res.StatusCode, body)
			}
		})
	}
	var ids []string
	e.must("GET", pgBase, "", &ids)
	if len(ids) != 0 {
		t.Fatalf("bad bodies created clusters: %v", ids)
	}

	t.Run("accepted forms", func(t *testing.T) {
		for _, body := range []string{
			`{"plan":"business","version":"16","nodesList":[{"flavor":"db1-7","region":"SBG"},{"flavor":"db1-7","region":"SBG"}]}`,
			`{"plan":"production","version":"17",` + pattern("b3-8", "WAW", 2) + `,"disk":{"size":160}}`,
			`{"plan":"essential","version":"18",` + pattern("db1-4", "BHS", 0) + `}`,
		} {
			var svc service
			e.must("POST", pgBase, body, &svc)
			if svc.Status != "CREATING" {
				t.Fatalf("%s: %+v", body, svc)
			}
		}
	})
}

// signedRaw sends a correctly signed raw request, so that the exact body
// is what the test wrote.
func (e *env) signedRaw(method, path, body string) (*http.Response, []byte) {
	e.t.Helper()
	ts := e.clock.Now().Unix()
	sig := Signature(testAS, testCK, method, e.srv.URL+"/1.0"+path, []byte(body), ts)
	return e.rawRequest(method, "/1.0"+path, map[string]string{
		"X-Ovh-Application": testAK, "X-Ovh-Consumer": testCK,
		"X-Ovh-Timestamp": strconv.FormatInt(ts, 10), "X-Ovh-Signature": sig,
		"Content-Type": "application/json;charset=utf-8",
	}, body)
}

// ready creates a cluster and waits until it is READY.
func (e *env) ready(base, body string) string {
	e.t.Helper()
	var svc service
	e.must("POST", base, body, &svc)
	e.clock.Advance(6 * time.Minute)
	e.must("GET", base+"/"+svc.ID, "", &svc)
	if svc.Status != "READY" {
		e.t.Fatalf("status %s", svc.Status)
	}
	return svc.ID
}

func TestProjectsAreIsolated(t *testing.T) {
	e := newEnv(t, nil)
	id := e.ready(pgBase, essential)
	wantAPIError(t, e.do("GET", prodBase+"/"+id, "", nil), http.StatusNotFound, "Client::NotFound")
	wantAPIError(t, e.do("DELETE", prodBase+"/"+id, "", nil), http.StatusNotFound, "Client::NotFound")
	wantAPIError(t, e.do("GET", prodBase+"/"+id+"/user", "", nil), http.StatusNotFound, "Client::NotFound")
	var ids []string
	e.must("GET", prodBase, "", &ids)
	if len(ids) != 0 {
		t.Fatalf("prod sees %v", ids)
	}
	e.must("GET", "/cloud/project/"+projProd+"/database/service", "", &ids)
	if len(ids) != 0 {
		t.Fatalf("prod services %v", ids)
	}
	e.must("GET", "/cloud/project/"+projTest+"/database/service", "", &ids)
	if !slices.Equal(ids, []string{id}) {
		t.Fatalf("test services %v", ids)
	}
	e.must("GET", "/cloud/project/"+projTest+"/database/service?category=streaming", "", &ids)
	if len(ids) != 0 {
		t.Fatalf("streaming services %v", ids)
	}
}

func TestUpdateCluster(t *testing.T) {
	e := newEnv(t, nil)
	id := e.ready(pgBase, essential)
	path := pgBase + "/" + id
	tests := []struct {
		name  string
		body  string
		code  int
		check func(service) bool
	}{
		{"description", `{"description":"renamed"}`, 200, func(s service) bool { return s.Description == "renamed" }},
		{"bigger disk", `{"disk":{"size":120}}`, 200, func(s service) bool { return s.Disk.Size == 120 }},
		{"smaller disk", `{"disk":{"size":100}}`, 400, nil},
		{"bigger flavor", `{"flavor":"db1-7"}`, 200, func(s service) bool { return s.Flavor == "db1-7" && s.Disk.Size == 160 }},
		{"plan up, nodes follow", `{"plan":"business"}`, 200, func(s service) bool { return s.Plan == "business" && s.NodeNumber == 2 }},
		{"plan down", `{"plan":"essential"}`, 400, nil},
		{"version up", `{"version":"18"}`, 200, func(s service) bool { return s.Version == "18" }},
		{"version down", `{"version":"17"}`, 400, nil},
		{"unknown plan", `{"plan":"platinum"}`, 404, nil},
		{"set ip list", `{"ipRestrictions":[{"ip":"10.1.2.3","description":"vm"}]}`, 200, func(s service) bool {
			return len(s.IPRestrictions) == 1 && s.IPRestrictions[0].IP == "10.1.2.3/32"
		}},
		{"clear ip list", `{"ipRestrictions":[]}`, 200, func(s service) bool { return len(s.IPRestrictions) == 0 }},
		{"deletion protection", `{"deletionProtection":true}`, 200, func(s service) bool { return s.DeletionProtection }},
		{"read-only fields echoed back", `{"id":"x","status":"READY","engine":"postgresql","nodes":[],"endpoints":[],"description":"again"}`, 200,
			func(s service) bool { return s.Description == "again" }},
		{"unknown field", `{"colour":"blue"}`, 400, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var svc service
			err := e.do("PUT", path, tt.body, &svc)
			if tt.code != 200 {
				ae := apiErr(t, err)
				if ae.Code != tt.code {
					t.Fatalf("got %d %s", ae.Code, ae.Message)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if svc.Status != "UPDATING" || !tt.check(svc) {
				t.Fatalf("after PUT: %+v", svc)
			}
			// Changes are refused while UPDATING.
			wantAPIError(t, e.do("POST", path+"/database", `{"name":"busy"}`, nil), http.StatusConflict, "Client::Conflict::ServiceNotReady")
			e.clock.Advance(2 * time.Minute)
			e.must("GET", path, "", &svc)
			if svc.Status != "READY" || !tt.check(svc) {
				t.Fatalf("after the update: %+v", svc)
			}
		})
	}

	// Deletion protection holds until lifted.
	wantAPIError(t, e.do("DELETE", path, "", nil), http.StatusForbidden, "Client::Forbidden")
	e.must("PUT", path, `{"deletionProtection":false}`, nil)
	e.clock.Advance(2 * time.Minute)
	e.must("DELETE", path, "", nil)
	wantAPIError(t, e.do("DELETE", path, "", nil), http.StatusConflict, "Client::Conflict")
}

func TestAdvancedConfiguration(t *testing.T) {
	e := newEnv(t, nil)
	path := pgBase + "/" + e.ready(pgBase, essential)
	var props []map[string]any
	e.must("GET", path+"/capabilities/advancedConfiguration", "", &props)
	if len(props) == 0 {
		t.Fatal("no advanced properties")
	}
	var conf map[string]string
	e.must("GET", path+"/advancedConfiguration", "", &conf)
	if len(conf) != 0 {
		t.Fatalf("initial configuration %v", conf)
	}
	tests := []struct {
		name string
		body string
		code int
	}{
		{"long", `{"pg.log_min_duration_statement":"1000"}`, 200},
		{"boolean and string", `{"pg.jit":"false","pg.timezone":"Europe/Paris"}`, 200},
		{"double", `{"shared_buffers_percentage":"25.5"}`, 200},
		{"unknown key", `{"pg.fsync":"off"}`, 400},
		{"not a long", `{"pg.max_connections":"many"}`, 400},
		{"out of range", `{"timescaledb.max_background_workers":"0"}`, 400},
		{"not in values", `{"pg.track_commit_timestamp":"maybe"}`, 400},
		{"number instead of string", `{"pg.jit":false}`, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out map[string]string
			err := e.do("PUT", path+"/advancedConfiguration", tt.body, &out)
			if tt.code != 200 {
				if ae := apiErr(t, err); ae.Code != tt.code {
					t.Fatalf("got %d %s", ae.Code, ae.Message)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(2 * time.Minute)
		})
	}
	e.must("GET", path+"/advancedConfiguration", "", &conf)
	want := map[string]string{"pg.log_min_duration_statement": "1000", "pg.jit": "false", "pg.timezone": "Europe/Paris", "shared_buffers_percentage": "25.5"}
	if !reflect.DeepEqual(conf, want) {
		t.Fatalf("configuration %v", conf)
	}
}

func TestDeprecatedIPRestriction(t *testing.T) {
	e := newEnv(t, nil)
	path := pgBase + "/" + e.ready(pgBase, essential) + "/ipRestriction"
	var r map[string]any
	e.must("POST", path, `{"ip":"192.0.2.10","description":"vm"}`, &r)
	if r["ip"] != "192.0.2.10/32" {
		t.Fatalf("created %v", r)
	}
	e.clock.Advance(2 * time.Minute)
	wantAPIError(t, e.do("POST", path, `{"ip":"192.0.2.10/32"}`, nil), http.StatusConflict, "Client::Conflict")
	one := path + "/" + url.PathEscape("192.0.2.10/32")
	e.must("GET", one, "", &r)
	if r["description"] != "vm" || r["status"] != "READY" {
		t.Fatalf("got %v", r)
	}
	e.must("PUT", one, `{"description":"app vm"}`, &r)
	if r["description"] != "app vm" {
		t.Fatalf("updated %v", r)
	}
	e.must("DELETE", one, "", nil)
	e.clock.Advance(2 * time.Minute)
	wantAPIError(t, e.do("GET", one, "", nil), http.StatusNotFound, "Client::NotFound")
	var ips []string
	e.must("GET", path, "", &ips)
	if len(ips) != 0 {
		t.Fatalf("list %v", ips)
	}
}

func TestCatalog(t *testing.T) {
	e := newEnv(t, nil)
	base := "/cloud/project/" + projTest + "/database"
	var caps struct {
		Engines []struct {
			Name     string   `json:"name"`
			Versions []string `json:"versions"`
		} `json:"engines"`
		Plans []struct {
			Name string `json:"name"`
		} `json:"plans"`
		Flavors []struct {
			Name string `json:"name"`
		} `json:"flavors"`
		Regions []string `json:"regions"`
	}
	e.must("GET", base+"/capabilities", "", &caps)
	if len(caps.Engines) != 1 || caps.Engines[0].Name != "postgresql" || !slices.Equal(caps.Engines[0].Versions, []string{"14", "15", "16", "17", "18"}) {
		t.Fatalf("engines %+v", caps.Engines)
	}
	var plans, flavors []string
	for _, p := range caps.Plans {
		plans = append(plans, p.Name)
	}
	for _, f := range caps.Flavors {
		flavors = append(flavors, f.Name)
	}
	for _, want := range []string{"essential", "business", "enterprise", "production", "advanced"} {
		if !slices.Contains(plans, want) {
			t.Errorf("plan %s missing from %v", want, plans)
		}
	}
	for _, want := range []string{"db1-4", "db1-7", "db1-15", "db1-30", "b3-8", "b3-16"} {
		if !slices.Contains(flavors, want) {
			t.Errorf("flavor %s missing from %v", want, flavors)
		}
	}
	sort.Strings(caps.Regions)
	if !slices.Equal(caps.Regions, []string{"BHS", "DE", "GRA", "SBG", "UK", "WAW"}) {
		t.Errorf("regions %v", caps.Regions)
	}

	type offer struct {
		Engine, Version, Plan, Region, Flavor string
	}
	var all []offer
	e.must("GET", base+"/availability", "", &all)
	if !slices.Contains(all, offer{"postgresql", "17", "essential", "GRA", "db1-4"}) ||
		!slices.Contains(all, offer{"postgresql", "17", "production", "WAW", "b3-8"}) {
		t.Fatalf("availability lacks the common offers (%d entries)", len(all))
	}

	id := e.ready(pgBase, essential)
	var flavorsUp []offer
	e.must("GET", base+"/availability?action=update&clusterId="+id+"&target=flavor", "", &flavorsUp)
	if len(flavorsUp) != 3 {
		t.Fatalf("flavor updates %+v", flavorsUp)
	}
	for _, o := range flavorsUp {
		if o.Plan != "essential" || o.Region != "GRA" || o.Version != "17" {
			t.Fatalf("flavor update %+v", o)
		}
	}
	wantAPIError(t, e.do("GET", base+"/availability?action=dance", "", nil), http.StatusBadRequest, "Client::BadRequest")
	var regions []string
	e.must("GET", pgBase+"/"+id+"/capabilities/backupRegions", "", &regions)
	var roles []string
	e.must("GET", pgBase+"/"+id+"/roles", "", &roles)
	var maint []string
	e.must("GET", pgBase+"/"+id+"/maintenance", "", &maint)
	var certs struct {
		CA string `json:"ca"`
	}
	e.must("GET", pgBase+"/"+id+"/certificates", "", &certs)
	if !strings.HasPrefix(certs.CA, "-----BEGIN CERTIFICATE-----") {
		t.Fatalf("ca %q", certs.CA)
	}
}

func TestBackups(t *testing.T) {
	e := newEnv(t, nil)
	path := pgBase + "/" + e.ready(pgBase, essential)
	var ids []string
	e.must("GET", path+"/backup", "", &ids)
	if len(ids) != 1 {
		t.Fatalf("backups right after READY: %v", ids)
	}
	e.clock.Advance(5 * 24 * time.Hour)
	c := e.newClient(testAK, testAS, testCK) // a fresh time delta
	if err := c.Get(path+"/backup", &ids); err != nil {
		t.Fatal(err)
	}
	// Essential keeps two days.
	if len(ids) < 2 || len(ids) > 3 {
		t.Fatalf("backups after 5 days: %v", ids)
	}
	var b map[string]any
	if err := c.Get(path+"/backup/"+ids[len(ids)-1], &b); err != nil {
		t.Fatal(err)
	}
	if b["status"] != "READY" || b["region"] != "GRA" {
		t.Fatalf("backup %v", b)
	}
	err := c.Get(path+"/backup/5f0e4b36-3b7e-4f43-9e1c-7a0f0a5e2b11", &b)
	wantAPIError(t, err, http.StatusNotFound, "Client::NotFound")
}

func TestBackendFailures(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.CreateDelay = 0 })
	e.backend.failNext = "CreateCluster"
	var svc service
	e.must("POST", pgBase, essential, &svc)
	e.must("GET", pgBase+"/"+svc.ID, "", &svc)
	if svc.Status != "ERROR" {
		t.Fatalf("status %s after a backend failure", svc.Status)
	}
	e.must("DELETE", pgBase+"/"+svc.ID, "", nil)

	id := e.ready(pgBase, essential)
	e.backend.failNext = "CreateUser"
	wantAPIError(t, e.do("POST", pgBase+"/"+id+"/user", `{"name":"app"}`, nil), http.StatusInternalServerError, "Server::InternalServerError")
	var users []string
	e.must("GET", pgBase+"/"+id+"/user", "", &users)
	if len(users) != 1 {
		t.Fatalf("users after a failed creation: %v", users)
	}
	e.must("POST", pgBase+"/"+id+"/user", `{"name":"app"}`, nil)
}

func TestWithoutBackend(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Postgres = nil; c.CreateDelay = 0 })
	var svc service
	e.must("POST", pgBase, essential, &svc)
	if svc.Status != "READY" || len(svc.Endpoints) != 1 ||
		!strings.HasSuffix(svc.Endpoints[0].Domain, ".database.cloud.ovh.net") || *svc.Endpoints[0].Port != fakePort {
		t.Fatalf("%+v", svc)
	}
	var u user
	e.must("POST", pgBase+"/"+svc.ID+"/user", `{"name":"app","roles":["replication"]}`, &u)
	if u.Password == nil || !slices.Equal(u.Roles, []string{"replication"}) {
		t.Fatalf("%+v", u)
	}
	wantAPIError(t, e.do("POST", pgBase+"/"+svc.ID+"/user", `{"name":"x","roles":["superuser"]}`, nil), http.StatusBadRequest, "Client::BadRequest")
	wantAPIError(t, e.do("POST", pgBase+"/"+svc.ID+"/user", `{"name":"pg_monitor"}`, nil), http.StatusBadRequest, "Client::BadRequest")
	e.must("PUT", pgBase+"/"+svc.ID+"/user/"+u.ID, `{"roles":[]}`, &u)
	if len(u.Roles) != 0 {
		t.Fatalf("roles %v", u.Roles)
	}
}

func TestSnapshotRestoreAndCounts(t *testing.T) {
	e := newEnv(t, nil)
	id := e.ready(pgBase, essential)
	e.must("POST", pgBase+"/"+id+"/user", `{"name":"emqx"}`, nil)
	e.must("POST", pgBase+"/"+id+"/database", `{"name":"acco"}`, nil)
	e.must("PUT", pgBase+"/"+id+"/advancedConfiguration", `{"pg.jit":"true"}`, nil)
	e.clock.Advance(2 * time.Minute)
	counts := e.api.Counts()
	want := map[string]int{"projects": 2, "clusters": 1, "nodes": 1, "users": 2, "databases": 2, "ipRestrictions": 0}
	for k, v := range want {
		if counts[k] != v {
			t.Fatalf("counts %v, want %v", counts, want)
		}
	}
	snap, err := e.api.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.ToLower(string(snap)), "password") {
		t.Fatal("the snapshot mentions a password")
	}

	// A second API, restored, serves the same state.
	e2 := newEnv(t, func(c *Config) { c.Now = e.clock.Now })
	if err := e2.api.Restore(snap); err != nil {
		t.Fatal(err)
	}
	var svc service
	e2.must("GET", pgBase+"/"+id, "", &svc)
	if svc.Status != "READY" {
		t.Fatalf("restored status %s", svc.Status)
	}
	var users []string
	e2.must("GET", pgBase+"/"+id+"/user", "", &users)
	if len(users) != 2 {
		t.Fatalf("restored users %v", users)
	}
	if !reflect.DeepEqual(e2.api.Counts(), counts) {
		t.Fatalf("restored counts %v", e2.api.Counts())
	}
	if err := e2.api.Restore([]byte(`{"format_version":99}`)); err == nil {
		t.Fatal("a newer format was accepted")
	}
	if err := e2.api.Restore([]byte(`not json`)); err == nil {
		t.Fatal("garbage was accepted")
	}
}

// TestRoutesFollowTheSchema checks the route table against the schema's
// operations, and the request structs against the body models.
func TestRoutesFollowTheSchema(t *testing.T) {
	s := loadSchema(t)
	e := newEnv(t, nil)
	e.must("GET", "/cloud/project", "", nil)
	ops := map[string]schemaAPI{}
	for _, op := range s.APIs {
		ops[op.HTTPMethod+" "+op.Path] = op
	}
	for _, rt := range e.api.routes() {
		if strings.HasPrefix(rt.path, "/auth/") {
			continue // the /auth API is not in the /cloud schema
		}
		op, ok := ops[rt.method+" "+rt.path]
		if !ok {
			t.Errorf("%s %s is not in the schema", rt.method, rt.path)
			continue
		}
		if op.ResponseType != rt.model {
			t.Errorf("%s %s answers %s, the schema says %s", rt.method, rt.path, rt.model, op.ResponseType)
		}
	}
	bodies := []struct {
		model string
		v     any
	}{
		{"cloud.project.database.ServiceCreation", serviceCreationIn{}},
		{"cloud.project.database.Service", serviceUpdateIn{}},
		{"cloud.project.database.service.NodePattern", nodePatternIn{}},
		{"cloud.project.database.service.NodeCreation", nodeCreationIn{}},
		{"cloud.project.database.service.IpRestriction", ipRestrictionIn{}},
		{"cloud.project.database.service.Disk", diskIn{}},
		{"cloud.project.database.service.Backup", backupsIn{}},
	}
	for _, b := range bodies {
		var fields []string
		rt := reflect.TypeOf(b.v)
		for i := range rt.NumField() {
			fields = append(fields, strings.Split(rt.Field(i).Tag.Get("json"), ",")[0])
		}
		var props []string
		for k := range s.Models[b.model].Properties {
			props = append(props, k)
		}
		sort.Strings(fields)
		sort.Strings(props)
		if !slices.Equal(fields, props) {
			t.Errorf("%T has fields %v, %s has %v", b.v, fields, b.model, props)
		}
	}
}

// TestGoOVHErrorString checks the error text a user of go-ovh sees.
func TestGoOVHErrorString(t *testing.T) {
	e := newEnv(t, nil)
	err := e.do("GET", pgBase+"/5f0e4b36-3b7e-4f43-9e1c-7a0f0a5e2b11", "", nil)
	ae := wantAPIError(t, err, http.StatusNotFound, "Client::NotFound")
	msg := ae.Error()
	if !strings.HasPrefix(msg, "OVHcloud API error (status code 404): Client::NotFound: ") || !strings.Contains(msg, "X-OVH-Query-Id: EU.ext-") {
		t.Fatalf("error text %q", msg)
	}
	var _ error = ovh.APIError{}
}

// TestConcurrentUsers creates users in parallel: each gets its own ID and
// password, and a name is taken once.
func TestConcurrentUsers(t *testing.T) {
	e := newEnv(t, nil)
	path := pgBase + "/" + e.ready(pgBase, essential) + "/user"
	const n = 8
	type result struct {
		u   user
		err error
	}
	results := make(chan result, 2*n)
	for i := range 2 * n {
		// One client each: go-ovh's Client writes http.Client.Timeout on
		// every call, a data race when a client is shared.
		c := e.newClient(testAK, testAS, testCK)
		go func() {
			var u user
			err := c.Post(path, map[string]string{"name": "u" + strconv.Itoa(i%n)}, &u)
			results <- result{u, err}
		}()
	}
	created, conflicts := map[string]bool{}, 0
	for range 2 * n {
		r := <-results
		if r.err != nil {
			if apiErr(t, r.err).Code != http.StatusConflict {
				t.Fatal(r.err)
			}
			conflicts++
			continue
		}
		if created[r.u.Username] || r.u.Password == nil {
			t.Fatalf("user %+v", r.u)
		}
		created[r.u.Username] = true
	}
	if len(created) != n || conflicts != n {
		t.Fatalf("%d created, %d conflicts", len(created), conflicts)
	}
	var ids []string
	e.must("GET", path, "", &ids)
	if len(ids) != n+1 {
		t.Fatalf("users %v", ids)
	}
}
