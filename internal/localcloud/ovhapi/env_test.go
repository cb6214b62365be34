package ovhapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovh/go-ovh/ovh"
)

// Test fixtures.
const (
	testAK    = "TDPKJdwZwAQPwKX2"
	testAS    = "9ufkBmLaTQ9nz5yMUlg79taH0GNnzDjk"
	testCK    = "5mBuy6SUQcRw2ZUxg0cG68BoDKpED4KY"
	projTest  = "0123456789abcdef0123456789abcdef"
	projProd  = "fedcba9876543210fedcba9876543210"
	pgBase    = "/cloud/project/" + projTest + "/database/postgresql"
	prodBase  = "/cloud/project/" + projProd + "/database/postgresql"
	essential = `{"description":"main","plan":"essential","version":"17","nodesPattern":{"flavor":"db1-4","number":1,"region":"GRA"}}`
)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeBackend records what the API asks of its backend.
type fakeBackend struct {
	mu        sync.Mutex
	clusters  map[string]bool
	users     map[string]string // cluster/name -> password
	databases map[string]bool   // cluster/name
	failNext  string            // method name that fails once
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{clusters: map[string]bool{}, users: map[string]string{}, databases: map[string]bool{}}
}

func (b *fakeBackend) fail(method string) error {
	if b.failNext == method {
		b.failNext = ""
		return fmt.Errorf("%s: injected failure", method)
	}
	return nil
}

func (b *fakeBackend) CreateCluster(_ context.Context, id string) (string, int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.fail("CreateCluster"); err != nil {
		return "", 0, err
	}
	b.clusters[id] = true
	b.users[id+"/avnadmin"] = ""
	b.databases[id+"/defaultdb"] = true
	return "127.0.0.1", 54321, nil
}

func (b *fakeBackend) DeleteCluster(_ context.Context, id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.fail("DeleteCluster"); err != nil {
		return err
	}
	if !b.clusters[id] {
		return errors.New("no such cluster")
	}
	delete(b.clusters, id)
	return nil
}

func (b *fakeBackend) CreateUser(_ context.Context, id, name, password string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.fail("CreateUser"); err != nil {
		return err
	}
	b.users[id+"/"+name] = password
	return nil
}

func (b *fakeBackend) SetPassword(_ context.Context, id, name, password string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.users[id+"/"+name]; !ok {
		return errors.New("no such role")
	}
	b.users[id+"/"+name] = password
	return nil
}

func (b *fakeBackend) DropUser(_ context.Context, id, name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.users, id+"/"+name)
	return nil
}

func (b *fakeBackend) CreateDatabase(_ context.Context, id, name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.databases[id+"/"+name] = true
	return nil
}

func (b *fakeBackend) DropDatabase(_ context.Context, id, name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.databases, id+"/"+name)
	return nil
}

func (b *fakeBackend) password(id, name string) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, ok := b.users[id+"/"+name]
	return p, ok
}

// exchange is one recorded request and response.
type exchange struct {
	method, uri string
	status      int
	header      http.Header
	body        []byte
}

// recorder keeps every exchange with the API, so that each response body
// can be checked against the schema.
type recorder struct {
	mu        sync.Mutex
	exchanges []exchange
}

func (rec *recorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := httptest.NewRecorder()
		h.ServeHTTP(rw, r)
		res := rw.Result()
		rec.mu.Lock()
		rec.exchanges = append(rec.exchanges, exchange{
			method: r.Method, uri: r.URL.RequestURI(), status: res.StatusCode,
			header: res.Header.Clone(), body: rw.Body.Bytes(),
		})
		rec.mu.Unlock()
		for k, v := range res.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(res.StatusCode)
		_, _ = w.Write(rw.Body.Bytes())
	})
}

// check validates every recorded response: a success against the schema
// model of its operation, an error against OVH's error shape.
func (rec *recorder) check(t *testing.T, a *API) {
	t.Helper()
	s := loadSchema(t)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.exchanges) == 0 {
		t.Error("no exchange recorded")
	}
	for _, ex := range rec.exchanges {
		name := ex.method + " " + ex.uri
		if ex.header.Get("X-Ovh-Queryid") == "" {
			t.Errorf("%s: no X-Ovh-Queryid header", name)
		}
		if ct := ex.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s: Content-Type %q", name, ct)
		}
		if ex.status < 200 || ex.status > 299 {
			if err := checkErrorBody(ex.body, ex.status); err != nil {
				t.Errorf("%s: %d error body %s: %v", name, ex.status, ex.body, err)
			}
			continue
		}
		u, err := url.Parse(ex.uri)
		if err != nil {
			t.Fatal(err)
		}
		rt, _, ok := a.router.match(&http.Request{Method: ex.method, URL: u})
		if !ok {
			t.Errorf("%s: answered %d but matches no route", name, ex.status)
			continue
		}
		if err := s.validateJSON(ex.body, rt.model); err != nil {
			t.Errorf("%s: response is not a valid %s: %v\nbody: %.2000s", name, rt.model, err, ex.body)
		}
	}
}

// checkErrorBody checks OVH's error shape.
func checkErrorBody(body []byte, status int) error {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return err
	}
	for _, k := range []string{"class", "message"} {
		if s, ok := m[k].(string); !ok || s == "" {
			return fmt.Errorf("%s is missing", k)
		}
	}
	for k, v := range m {
		switch k {
		case "class", "message", "errorCode":
			if _, ok := v.(string); !ok {
				return fmt.Errorf("%s is not a string", k)
			}
		case "httpCode":
			if want := fmt.Sprintf("%d %s", status, http.StatusText(status)); v != want {
				return fmt.Errorf("httpCode %v, want %q", v, want)
			}
		default:
			return fmt.Errorf("unexpected field %q", k)
		}
	}
	return nil
}

// env is an API served over HTTP, with a go-ovh client.
type env struct {
	t       *testing.T
	api     *API
	srv     *httptest.Server
	client  *ovh.Client
	clock   *clock
	backend *fakeBackend
	changes *int
}

// newEnv serves an API with two projects, a fake backend and a settable
// clock; every response is checked against the schema when the test ends.
func newEnv(t *testing.T, tweak func(*Config)) *env {
	t.Helper()
	e := &env{t: t, clock: newClock(), backend: newFakeBackend(), changes: new(int)}
	var mu sync.Mutex
	cfg := Config{
		Credentials:  []Credential{{ApplicationKey: testAK, ApplicationSecret: testAS, ConsumerKey: testCK}},
		Projects:     []string{projTest, projProd},
		CreateDelay:  5 * time.Minute,
		DeleteDelay:  time.Minute,
		Now:          e.clock.Now,
		Postgres:     e.backend,
		MaxClockSkew: time.Hour,
		OnChange: func() {
			mu.Lock()
			*e.changes++
			mu.Unlock()
		},
	}
	if tweak != nil {
		tweak(&cfg)
	}
	api, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.api = api
	rec := &recorder{}
	e.srv = httptest.NewServer(rec.wrap(api.Handler()))
	t.Cleanup(func() {
		e.srv.Close()
		rec.check(t, api)
	})
	e.client = e.newClient(testAK, testAS, testCK)
	return e
}

// newClient returns a go-ovh client of the API.
func (e *env) newClient(ak, as, ck string) *ovh.Client {
	e.t.Helper()
	c, err := ovh.NewClient(e.srv.URL+"/1.0", ak, as, ck)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// do calls the API with go-ovh; body is a JSON document or "".
func (e *env) do(method, path, body string, out any) error {
	e.t.Helper()
	var in any
	if body != "" {
		in = json.RawMessage(body)
	}
	return e.client.CallAPIWithContext(context.Background(), method, path, in, out, true)
}

// must calls the API and fails the test on an error.
func (e *env) must(method, path, body string, out any) {
	e.t.Helper()
	if err := e.do(method, path, body, out); err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
}

// apiError returns err as an *ovh.APIError, failing the test otherwise.
func apiErr(t *testing.T, err error) *ovh.APIError {
	t.Helper()
	var ae *ovh.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not an *ovh.APIError", err, err)
	}
	return ae
}

// wantAPIError checks an error's code and class.
func wantAPIError(t *testing.T, err error, code int, class string) *ovh.APIError {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %d %s", code, class)
	}
	ae := apiErr(t, err)
	if ae.Code != code || ae.Class != class {
		t.Fatalf("got %d %s %q, want %d %s", ae.Code, ae.Class, ae.Message, code, class)
	}
	if !strings.HasPrefix(ae.QueryID, "EU.ext-") {
		t.Fatalf("query ID %q", ae.QueryID)
	}
	return ae
}

// rawRequest sends an HTTP request without go-ovh's signing.
func (e *env) rawRequest(method, path string, header map[string]string, body string) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(res.Body)
	return res, buf.Bytes()
}
