package ovhapi

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"regexp"
	"sync"
	"sync/atomic"
	"time"
)

// Credential is one OVH API application key, its secret and a consumer key
// bound to it. Credentials are account-wide: each one reaches every project.
type Credential struct {
	ApplicationKey    string
	ApplicationSecret string
	ConsumerKey       string
}

// Backend runs the database servers behind the clusters. The pgserver
// package implements it with real PostgreSQL servers; acco's later SQL steps
// run against them. Every call is made outside the API's lock, with the
// context of the HTTP request that caused it.
type Backend interface {
	// CreateCluster starts a server for clusterID with the admin role
	// avnadmin (no password yet) and the database defaultdb, and tells where
	// it listens.
	CreateCluster(ctx context.Context, clusterID string) (host string, port int, err error)
	// DeleteCluster stops the server and removes its data.
	DeleteCluster(ctx context.Context, clusterID string) error
	// CreateUser creates a login role with a password.
	CreateUser(ctx context.Context, clusterID, name, password string) error
	// SetPassword changes the password of a role.
	SetPassword(ctx context.Context, clusterID, name, password string) error
	// DropUser drops a role.
	DropUser(ctx context.Context, clusterID, name string) error
	// CreateDatabase creates a database owned by avnadmin.
	CreateDatabase(ctx context.Context, clusterID, name string) error
	// DropDatabase drops a database.
	DropDatabase(ctx context.Context, clusterID, name string) error
}

// CertificateSource is optionally implemented by a Backend whose servers
// speak TLS: GET .../certificates then returns the CA that signed them.
type CertificateSource interface {
	CACertificate(ctx context.Context, clusterID string) (pem string, err error)
}

// Config configures an API.
type Config struct {
	// Credentials are the accepted application keys; at least one.
	Credentials []Credential
	// Projects are the project IDs (serviceNames, 32 hex digits), one per
	// environment; the same IDs as the OpenStack projects.
	Projects []string
	// CreateDelay is how long a new cluster stays CREATING.
	CreateDelay time.Duration
	// UpdateDelay is how long a cluster stays UPDATING after a PUT; zero
	// means CreateDelay/4.
	UpdateDelay time.Duration
	// DeleteDelay is how long a deleted cluster stays DELETING before it is
	// gone (404).
	DeleteDelay time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Postgres runs the clusters; nil means no servers: endpoints then name
	// a fake host.
	Postgres Backend
	// MaxClockSkew is how far X-Ovh-Timestamp may be from Now; zero means
	// DefaultMaxClockSkew.
	MaxClockSkew time.Duration
	// OnChange, when set, is called after every change of the state (outside
	// the API's lock), so the owner can save a Snapshot.
	OnChange func()
}

// DefaultMaxClockSkew is the clock skew accepted when Config.MaxClockSkew is
// zero.
const DefaultMaxClockSkew = 3 * time.Minute

// maxBody bounds the request bodies read.
const maxBody = 1 << 20

// API is the local OVH API. It is safe for concurrent use.
type API struct {
	cfg      Config
	now      func() time.Time
	creds    map[string][]Credential // by application key
	projects map[string]bool
	router   *router
	queryID  atomic.Uint64
	session  string // random part of the query IDs

	mu sync.Mutex
	st *state

	caOnce sync.Once
	caPEM  string
	caErr  error
}

var projectIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// New checks cfg and returns an API with no clusters.
func New(cfg Config) (*API, error) {
	if len(cfg.Credentials) == 0 {
		return nil, errors.New("ovhapi: at least one credential is needed")
	}
	if cfg.CreateDelay < 0 || cfg.UpdateDelay < 0 || cfg.DeleteDelay < 0 || cfg.MaxClockSkew < 0 {
		return nil, errors.New("ovhapi: delays and the clock skew cannot be negative")
	}
	a := &API{
		cfg:      cfg,
		now:      cfg.Now,
		creds:    map[string][]Credential{},
		projects: map[string]bool{},
		st:       newState(),
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.cfg.MaxClockSkew == 0 {
		a.cfg.MaxClockSkew = DefaultMaxClockSkew
	}
	if a.cfg.UpdateDelay == 0 {
		a.cfg.UpdateDelay = cfg.CreateDelay / 4
	}
	for i, c := range cfg.Credentials {
		if c.ApplicationKey == "" || c.ApplicationSecret == "" || c.ConsumerKey == "" {
			return nil, fmt.Errorf("ovhapi: credential %d: application key, secret and consumer key are all needed", i)
		}
		a.creds[c.ApplicationKey] = append(a.creds[c.ApplicationKey], c)
	}
	for _, p := range cfg.Projects {
		if !projectIDPattern.MatchString(p) {
			return nil, fmt.Errorf("ovhapi: project %q is not 32 lowercase hex digits", p)
		}
		if a.projects[p] {
			return nil, fmt.Errorf("ovhapi: project %q is listed twice", p)
		}
		a.projects[p] = true
		a.st.project(p, a.now())
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	a.session = hex.EncodeToString(b[:])
	a.router = newRouter(a.routes())
	return a, nil
}

// Handler serves the API under /1.0 (go-ovh's endpoint is the base URL plus
// "/1.0"); paths under /v1 are served too, as go-ovh sends them there.
func (a *API) Handler() http.Handler {
	return http.HandlerFunc(a.serveHTTP)
}

// Counts tells how many live objects the API holds, by kind: projects,
// clusters, nodes, users, databases and ipRestrictions.
func (a *API) Counts() map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	a.st.sweep(now)
	counts := map[string]int{"projects": len(a.cfg.Projects)}
	for sn, p := range a.st.Projects {
		if !a.projects[sn] {
			continue
		}
		for _, c := range p.Clusters {
			counts["clusters"]++
			counts["nodes"] += len(c.Nodes)
			counts["ipRestrictions"] += len(c.IPRestrictions)
			counts["users"] += len(c.liveUsers())
			counts["databases"] += len(c.liveDatabases())
		}
	}
	return counts
}

// Snapshot returns the state as JSON. Passwords are not in it: OVH never
// stores them either.
func (a *API) Snapshot() ([]byte, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.st.sweep(a.now())
	return json.MarshalIndent(a.st.persisted(), "", "  ")
}

// Restore replaces the state with one from Snapshot. A cluster whose backend
// creation had not finished when the snapshot was taken comes back in ERROR.
// It does not call the Backend: the backend restores its own servers.
func (a *API) Restore(data []byte) error {
	st, err := decodeState(data)
	if err != nil {
		return fmt.Errorf("ovhapi: restore: %w", err)
	}
	for p := range a.projects {
		st.project(p, a.now())
	}
	a.mu.Lock()
	a.st = st
	a.mu.Unlock()
	return nil
}

// changed tells the owner that the state changed.
func (a *API) changed() {
	if a.cfg.OnChange != nil {
		a.cfg.OnChange()
	}
}

// nextQueryID returns a query ID shaped like OVH's
// (EU.ext-<n>.<hex unix time>.<counter>.<random>).
func (a *API) nextQueryID() string {
	n := a.queryID.Add(1)
	return fmt.Sprintf("EU.ext-1.%08x.%d.%s", a.now().Unix(), n, a.session)
}

// request is one call being served.
type request struct {
	r      *http.Request
	ctx    context.Context
	params map[string]string
	body   []byte
	now    time.Time
}

// serveHTTP authenticates, routes and answers one call.
func (a *API) serveHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Ovh-Queryid", a.nextQueryID())
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		writeError(w, badRequest("Cannot read the request body: %v", err))
		return
	}
	if len(body) > maxBody {
		writeError(w, errorf(http.StatusRequestEntityTooLarge, "Client::RequestEntityTooLarge", "Request body too large"))
		return
	}
	rt, params, ok := a.router.match(r)
	// OVH authenticates before it routes: an unknown path with a valid
	// signature is a 404, with a bad one an authentication error.
	if !ok || !rt.noAuth {
		if aerr := a.authenticate(r, body); aerr != nil {
			writeError(w, aerr)
			return
		}
	}
	if !ok {
		writeError(w, errInvalidURL())
		return
	}
	req := &request{r: r, ctx: r.Context(), params: params, body: body, now: a.now()}
	if sn, has := params["serviceName"]; has && !a.projects[sn] {
		writeError(w, notFound("This service does not exist"))
		return
	}
	out, aerr := rt.handle(req)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// writeJSON writes v as OVH does (application/json; void is null).
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(internalError(err).body())
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache, no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeError writes an OVH error body.
func writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.status, e.body())
}

// decodeBody decodes a JSON request body into v, refusing unknown fields.
func decodeBody(body []byte, v any) *apiError {
	if len(body) == 0 {
		return badRequest("Invalid body: a JSON object is expected")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return badRequest("Invalid body: [%s] Given data is not valid for type %s", ute.Field, ute.Type)
		}
		return badRequest("Invalid body: %v", err)
	}
	return nil
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("ovhapi: crypto/rand failed: %v", err))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// newPassword returns a random password of letters and digits, as OVH
// generates them.
func newPassword() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	const n = 24
	var b [n]byte
	out := make([]byte, n)
	for i := 0; i < n; {
		if _, err := rand.Read(b[:]); err != nil {
			panic(fmt.Sprintf("ovhapi: crypto/rand failed: %v", err))
		}
		for _, c := range b {
			if i == n {
				break
			}
			if int(c) < 256-256%len(alphabet) {
				out[i] = alphabet[int(c)%len(alphabet)]
				i++
			}
		}
	}
	return string(out)
}

// derivedUUID returns a UUID (version 5 layout) derived from parts, for
// objects computed rather than stored, such as backups.
func derivedUUID(parts ...string) string {
	h := sha1.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	b := h.Sum(nil)[:16]
	b[6] = b[6]&0x0f | 0x50
	b[8] = b[8]&0x3f | 0x80
	x := hex.EncodeToString(b)
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// fakeCA returns the CA certificate shown for clusters whose backend has no
// TLS of its own: a self-signed certificate made once per API.
func (a *API) fakeCA() (string, error) {
	a.caOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			a.caErr = err
			return
		}
		now := a.now()
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(now.UnixNano()),
			Subject:               pkix.Name{CommonName: "acco local cloud database CA"},
			NotBefore:             now.Add(-time.Hour),
			NotAfter:              now.AddDate(10, 0, 0),
			IsCA:                  true,
			BasicConstraintsValid: true,
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			a.caErr = err
			return
		}
		a.caPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	})
	return a.caPEM, a.caErr
}
