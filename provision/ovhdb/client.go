package ovhdb

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ovh/go-ovh/ovh"

	"github.com/accoreboot/acco/provision/httpretry"
)

// Config says how to reach the OVH API for one project.
type Config struct {
	// Project is the Public Cloud project (serviceName).
	Project string
	// Endpoint is the API endpoint or its go-ovh name (ovh-eu); empty
	// means OVH_ENDPOINT, then go-ovh's configuration files.
	Endpoint string
	// ApplicationKey, ApplicationSecret and ConsumerKey are the API keys;
	// empty means OVH_APPLICATION_KEY and friends, then ovh.conf.
	ApplicationKey, ApplicationSecret, ConsumerKey string
	// Lookup reads the operator's environment; nil means os.LookupEnv.
	Lookup func(string) (string, bool)
	// HTTPClient carries the requests (set it to retry, see httpretry).
	HTTPClient *http.Client
}

// Client is the real API over go-ovh. It is safe for concurrent use: a
// go-ovh client is not (it writes its Timeout into its http.Client at every
// call), so Client keeps a few of them and lends each to one call at a time.
// The OVH API's clock is read once per Client and shared by all of them.
type Client struct {
	pool     chan *ovh.Client
	project  string
	endpoint string
	// clockc reads the OVH API's clock; it is used by one fetch at a time.
	clockc *ovh.Client

	clockMu sync.Mutex
	// offset is the measured clock offset (local minus OVH), once known.
	offset *time.Duration
	// fetch is the clock read under way, if any.
	fetch *clockFetch
}

// clockFetch is one read of the OVH API's clock: done is closed when it
// ends, with err set if it failed.
type clockFetch struct {
	done chan struct{}
	err  error
}

// poolSize is how many calls to the OVH API run at once.
const poolSize = 8

var _ API = (*Client)(nil)

// New returns a Client for cfg. It makes no request.
func New(cfg Config) (*Client, error) {
	lookup := cfg.Lookup
	if lookup == nil {
		lookup = os.LookupEnv
	}
	get := func(explicit, name string) string {
		if explicit != "" {
			return explicit
		}
		v, _ := lookup(name)
		return v
	}
	endpoint := get(cfg.Endpoint, "OVH_ENDPOINT")
	ak := get(cfg.ApplicationKey, "OVH_APPLICATION_KEY")
	as := get(cfg.ApplicationSecret, "OVH_APPLICATION_SECRET")
	ck := get(cfg.ConsumerKey, "OVH_CONSUMER_KEY")
	if cfg.Project == "" {
		return nil, errors.New("creating OVH API client: no project")
	}
	cl := &Client{pool: make(chan *ovh.Client, poolSize), project: cfg.Project, endpoint: endpoint}
	for i := range poolSize + 1 {
		var c *ovh.Client
		var err error
		if endpoint != "" && ak != "" && as != "" && ck != "" {
			c, err = ovh.NewClient(endpoint, ak, as, ck)
		} else {
			c, err = ovh.NewDefaultClient()
		}
		if err != nil {
			return nil, fmt.Errorf("creating OVH API client (set OVH_ENDPOINT, OVH_APPLICATION_KEY, OVH_APPLICATION_SECRET, OVH_CONSUMER_KEY or write ovh.conf): %w", err)
		}
		if cfg.HTTPClient != nil {
			hc := *cfg.HTTPClient // its own copy: go-ovh writes Timeout into it
			c.Client = &hc
		}
		if i == poolSize {
			cl.clockc = c
		} else {
			cl.pool <- c
		}
	}
	return cl, nil
}

func (c *Client) path(format string, args ...any) string {
	esc := make([]any, len(args))
	for i, a := range args {
		esc[i] = url.PathEscape(fmt.Sprint(a))
	}
	return "/cloud/project/" + url.PathEscape(c.project) + "/database" + fmt.Sprintf(format, esc...)
}

// call runs one API call with one of the pooled go-ovh clients.
func (c *Client) call(ctx context.Context, method, path string, body, out any) error {
	var offset time.Duration
	if c.clockc.AppKey != "" {
		var err error
		if offset, err = c.clockOffset(ctx); err != nil {
			return err
		}
	}
	err := c.send(ctx, method, path, body, out, offset)
	if err == nil {
		return nil
	}
	var apiErr *ovh.APIError
	if errors.As(err, &apiErr) {
		if hint := c.authHint(apiErr); hint != "" {
			return fmt.Errorf("%w: %s", err, hint)
		}
		switch apiErr.Code {
		case http.StatusNotFound:
			return fmt.Errorf("%w: %w", ErrNotFound, err)
		case http.StatusConflict:
			return fmt.Errorf("%w: %w: %w", ErrConflict, httpretry.ErrTransient, err)
		}
		if httpretry.TransientStatus(apiErr.Code) {
			return fmt.Errorf("%w: %w", httpretry.ErrTransient, err)
		}
		return err
	}
	if httpretry.Transient(err) {
		return fmt.Errorf("%w: %w", httpretry.ErrTransient, err)
	}
	return err
}

// send signs and sends one request with one of the pooled go-ovh clients
// and decodes its answer into out. Requests signed with application keys
// are signed here, with offset, the clock offset the Client shares (go-ovh
// would read the clock once per go-ovh client); the others (OAuth2, access
// token) are left to go-ovh.
func (c *Client) send(ctx context.Context, method, path string, body, out any, offset time.Duration) error {
	var oc *ovh.Client
	select {
	case oc = <-c.pool:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { c.pool <- oc }()
	if oc.AppKey == "" {
		return oc.CallAPIWithContext(ctx, method, path, body, out, true)
	}
	req, err := oc.NewRequest(method, path, body, false)
	if err != nil {
		return err
	}
	var payload []byte
	if req.GetBody != nil {
		rc, err := req.GetBody()
		if err != nil {
			return err
		}
		payload, err = io.ReadAll(rc)
		if err != nil {
			return err
		}
	}
	ts := time.Now().Add(-offset).Unix()
	h := sha1.New()
	fmt.Fprintf(h, "%s+%s+%s+%s+%s+%d", oc.AppSecret, oc.ConsumerKey, method, oc.Endpoint()+path, payload, ts)
	req.Header.Set("X-Ovh-Timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("X-Ovh-Consumer", oc.ConsumerKey)
	req.Header.Set("X-Ovh-Signature", fmt.Sprintf("$1$%x", h.Sum(nil)))
	resp, err := oc.Do(req.WithContext(ctx))
	if err != nil {
		return err
	}
	return oc.UnmarshalResponse(resp, out)
}

// clockOffset returns the offset of this machine's clock from the OVH
// API's (GET /auth/time), read once for all the calls of c. The read runs
// aside, bounded by the HTTP client's deadlines, and the callers that need
// it wait for it until their own ctx ends; if it fails, they get its error
// and the next caller reads again.
func (c *Client) clockOffset(ctx context.Context) (time.Duration, error) {
	d, f := c.startClock(ctx)
	if f == nil {
		return d, nil
	}
	select {
	case <-f.done:
		if f.err != nil {
			return 0, fmt.Errorf("reading the clock of %s (GET /auth/time): %w", c.endpointName(), f.err)
		}
		c.clockMu.Lock()
		defer c.clockMu.Unlock()
		return *c.offset, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("reading the clock of %s (GET /auth/time): %w", c.endpointName(), context.Cause(ctx))
	}
}

// StartClockRead starts reading the OVH API's clock, which the first call
// needs, unless it is known or being read; it does not wait. A failure is
// reported by the calls, which read again.
func (c *Client) StartClockRead(ctx context.Context) {
	if c.clockc.AppKey != "" {
		c.startClock(ctx)
	}
}

// startClock returns the clock offset if it is known, else the read under
// way, started if need be.
func (c *Client) startClock(ctx context.Context) (time.Duration, *clockFetch) {
	c.clockMu.Lock()
	defer c.clockMu.Unlock()
	if c.offset != nil {
		return *c.offset, nil
	}
	if c.fetch == nil {
		c.fetch = &clockFetch{done: make(chan struct{})}
		go c.readClock(context.WithoutCancel(ctx), c.fetch)
	}
	return 0, c.fetch
}

// readClock runs the clock read f and records its outcome.
func (c *Client) readClock(ctx context.Context, f *clockFetch) {
	var seconds int64
	err := c.clockc.GetUnAuthWithContext(ctx, "/auth/time", &seconds)
	c.clockMu.Lock()
	defer c.clockMu.Unlock()
	if err == nil {
		// As go-ovh does: this machine's clock at the answer minus the
		// API's, which is truncated to the second.
		d := time.Since(time.Unix(seconds, 0))
		c.offset = &d
	}
	f.err = err
	c.fetch = nil
	close(f.done)
}

// authHint says what to do about an authentication failure of the OVH
// API: which credential is wrong, or how far off the clock is.
func (c *Client) authHint(e *ovh.APIError) string {
	switch {
	case strings.Contains(e.Message, "Invalid signature"):
		return "OVH_APPLICATION_SECRET (application_secret in ovh.conf) does not match OVH_APPLICATION_KEY, or the request was altered on the way: check the application secret"
	case strings.Contains(e.Message, "application key is invalid"):
		return "OVH_APPLICATION_KEY (application_key in ovh.conf) is unknown to " + c.endpointName() + ": check it, and that OVH_ENDPOINT is the API it was created on"
	case strings.Contains(e.Message, "credential does not exist"), strings.Contains(e.Message, "credential is not valid"):
		return "OVH_CONSUMER_KEY (consumer_key in ovh.conf) is unknown or expired: create a consumer key for this application and set it"
	case strings.Contains(e.Message, "Query out of time"):
		c.clockMu.Lock()
		defer c.clockMu.Unlock()
		if c.offset != nil {
			return fmt.Sprintf("the signed timestamp was refused: this machine's clock differs from the OVH API's by %s (measured at the first call): synchronise it (NTP) and run again", c.offset.Round(time.Second))
		}
		return "the signed timestamp was refused: this machine's clock is off from the OVH API's: synchronise it (NTP) and run again"
	}
	return ""
}

// endpointName names the OVH API endpoint in messages.
func (c *Client) endpointName() string {
	if c.endpoint == "" {
		return "the OVH API"
	}
	return "the OVH API " + c.endpoint
}

// Availability implements API.
func (c *Client) Availability(ctx context.Context) ([]Availability, error) {
	var all []Availability
	if err := c.call(ctx, http.MethodGet, c.path("/availability"), nil, &all); err != nil {
		return nil, fmt.Errorf("reading database availability: %w", err)
	}
	out := all[:0]
	for _, a := range all {
		if a.Engine == "" || a.Engine == "postgresql" {
			out = append(out, a)
		}
	}
	return out, nil
}

// ListClusters implements API: one list call, then one read per cluster.
func (c *Client) ListClusters(ctx context.Context) ([]Cluster, error) {
	ids, err := c.ClusterIDs(ctx)
	if err != nil {
		return nil, err
	}
	return getAll(ctx, ids, func(ctx context.Context, id string) (Cluster, error) {
		return c.GetCluster(ctx, id)
	})
}

// ClusterIDs implements API.
func (c *Client) ClusterIDs(ctx context.Context) ([]string, error) {
	var ids []string
	if err := c.call(ctx, http.MethodGet, c.path("/postgresql"), nil, &ids); err != nil {
		return nil, fmt.Errorf("listing database clusters: %w", err)
	}
	return ids, nil
}

// GetCluster implements API.
func (c *Client) GetCluster(ctx context.Context, id string) (Cluster, error) {
	var cl Cluster
	if err := c.call(ctx, http.MethodGet, c.path("/postgresql/%s", id), nil, &cl); err != nil {
		return Cluster{}, fmt.Errorf("reading database cluster %s: %w", id, err)
	}
	return cl, nil
}

// CACertificate implements API.
func (c *Client) CACertificate(ctx context.Context, clusterID string) (string, error) {
	var out struct {
		CA string `json:"ca"`
	}
	if err := c.call(ctx, http.MethodGet, c.path("/postgresql/%s/certificates", clusterID), nil, &out); err != nil {
		return "", fmt.Errorf("reading the CA certificate of database cluster %s: %w", clusterID, err)
	}
	return out.CA, nil
}

// CreateCluster implements API.
func (c *Client) CreateCluster(ctx context.Context, in ClusterCreate) (Cluster, error) {
	if in.IPRestrictions == nil {
		in.IPRestrictions = []IPRestriction{}
	}
	var cl Cluster
	if err := c.call(ctx, http.MethodPost, c.path("/postgresql"), in, &cl); err != nil {
		return Cluster{}, fmt.Errorf("creating database cluster %s: %w", in.Description, err)
	}
	return cl, nil
}

// UpdateCluster implements API.
func (c *Client) UpdateCluster(ctx context.Context, id string, u ClusterUpdate) error {
	if err := c.call(ctx, http.MethodPut, c.path("/postgresql/%s", id), u, nil); err != nil {
		return fmt.Errorf("updating database cluster %s: %w", id, err)
	}
	return nil
}

// DeleteCluster implements API.
func (c *Client) DeleteCluster(ctx context.Context, id string) error {
	if err := c.call(ctx, http.MethodDelete, c.path("/postgresql/%s", id), nil, nil); err != nil {
		return fmt.Errorf("deleting database cluster %s: %w", id, err)
	}
	return nil
}

// ListUsers implements API: one list call, then one read per user (OVH has
// no lookup by name).
func (c *Client) ListUsers(ctx context.Context, clusterID string) ([]User, error) {
	var ids []string
	if err := c.call(ctx, http.MethodGet, c.path("/postgresql/%s/user", clusterID), nil, &ids); err != nil {
		return nil, fmt.Errorf("listing users of cluster %s: %w", clusterID, err)
	}
	return getAll(ctx, ids, func(ctx context.Context, id string) (User, error) {
		return c.GetUser(ctx, clusterID, id)
	})
}

// GetUser implements API.
func (c *Client) GetUser(ctx context.Context, clusterID, id string) (User, error) {
	var u User
	if err := c.call(ctx, http.MethodGet, c.path("/postgresql/%s/user/%s", clusterID, id), nil, &u); err != nil {
		return User{}, fmt.Errorf("reading user %s of cluster %s: %w", id, clusterID, err)
	}
	u.Password = ""
	return u, nil
}

// CreateUser implements API.
func (c *Client) CreateUser(ctx context.Context, clusterID, name string, roles []string) (User, error) {
	if roles == nil {
		roles = []string{}
	}
	var u User
	body := map[string]any{"name": name, "roles": roles}
	if err := c.call(ctx, http.MethodPost, c.path("/postgresql/%s/user", clusterID), body, &u); err != nil {
		return User{}, fmt.Errorf("creating user %s in cluster %s: %w", name, clusterID, err)
	}
	return u, nil
}

// UpdateUserRoles implements API.
func (c *Client) UpdateUserRoles(ctx context.Context, clusterID, userID string, roles []string) error {
	if roles == nil {
		roles = []string{}
	}
	if err := c.call(ctx, http.MethodPut, c.path("/postgresql/%s/user/%s", clusterID, userID), map[string]any{"roles": roles}, nil); err != nil {
		return fmt.Errorf("updating roles of user %s in cluster %s: %w", userID, clusterID, err)
	}
	return nil
}

// ResetPassword implements API.
func (c *Client) ResetPassword(ctx context.Context, clusterID, userID string) (User, error) {
	var u User
	if err := c.call(ctx, http.MethodPost, c.path("/postgresql/%s/user/%s/credentials/reset", clusterID, userID), nil, &u); err != nil {
		return User{}, fmt.Errorf("resetting the password of user %s in cluster %s: %w", userID, clusterID, err)
	}
	return u, nil
}

// DeleteUser implements API.
func (c *Client) DeleteUser(ctx context.Context, clusterID, userID string) error {
	if err := c.call(ctx, http.MethodDelete, c.path("/postgresql/%s/user/%s", clusterID, userID), nil, nil); err != nil {
		return fmt.Errorf("deleting user %s of cluster %s: %w", userID, clusterID, err)
	}
	return nil
}

// ListDatabases implements API.
func (c *Client) ListDatabases(ctx context.Context, clusterID string) ([]Database, error) {
	var ids []string
	if err := c.call(ctx, http.MethodGet, c.path("/postgresql/%s/database", clusterID), nil, &ids); err != nil {
		return nil, fmt.Errorf("listing databases of cluster %s: %w", clusterID, err)
	}
	return getAll(ctx, ids, func(ctx context.Context, id string) (Database, error) {
		var d Database
		if err := c.call(ctx, http.MethodGet, c.path("/postgresql/%s/database/%s", clusterID, id), nil, &d); err != nil {
			return d, fmt.Errorf("reading database %s of cluster %s: %w", id, clusterID, err)
		}
		return d, nil
	})
}

// CreateDatabase implements API.
func (c *Client) CreateDatabase(ctx context.Context, clusterID, name string) (Database, error) {
	var d Database
	if err := c.call(ctx, http.MethodPost, c.path("/postgresql/%s/database", clusterID), map[string]any{"name": name}, &d); err != nil {
		return Database{}, fmt.Errorf("creating database %s in cluster %s: %w", name, clusterID, err)
	}
	return d, nil
}

// DeleteDatabase implements API.
func (c *Client) DeleteDatabase(ctx context.Context, clusterID, id string) error {
	if err := c.call(ctx, http.MethodDelete, c.path("/postgresql/%s/database/%s", clusterID, id), nil, nil); err != nil {
		return fmt.Errorf("deleting database %s of cluster %s: %w", id, clusterID, err)
	}
	return nil
}

// getAll reads every id with get, as many at once as the pool allows, in
// the order of ids; the ones deleted since the list are left out.
func getAll[T any](ctx context.Context, ids []string, get func(context.Context, string) (T, error)) ([]T, error) {
	items := make([]T, len(ids))
	found := make([]bool, len(ids))
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			v, err := get(ctx, id)
			switch {
			case errors.Is(err, ErrNotFound):
			case err != nil:
				errs[i] = err
			default:
				items[i], found[i] = v, true
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	out := make([]T, 0, len(ids))
	for i, v := range items {
		if found[i] {
			out = append(out, v)
		}
	}
	return out, nil
}
