package ovhdb

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
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
type Client struct {
	pool     chan *pooled
	project  string
	endpoint string
	// offset is the measured clock offset (local minus OVH), once known.
	offsetMu sync.Mutex
	offset   *time.Duration
}

// pooled is one go-ovh client and whether its clock offset is known.
type pooled struct {
	oc         *ovh.Client
	clockKnown bool
}

// poolSize is how many calls to the OVH API run at once.
const poolSize = 4

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
	cl := &Client{pool: make(chan *pooled, poolSize), project: cfg.Project, endpoint: endpoint}
	for range poolSize {
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
		cl.pool <- &pooled{oc: c}
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
	var p *pooled
	select {
	case p = <-c.pool:
	case <-ctx.Done():
		return ctx.Err()
	}
	if !p.clockKnown && p.oc.AppKey != "" {
		if err := c.readClock(ctx, p); err != nil {
			return err
		}
	}
	err := p.oc.CallAPIWithContext(ctx, method, path, body, out, true)
	c.pool <- p
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

// readClock measures p's clock offset from the OVH API (GET /auth/time),
// which go-ovh does once per client, before its first signed call, under
// no context: here the call runs aside and the wait for it ends with ctx.
// Its own duration is bounded by the HTTP client's deadlines. p goes back
// to the pool when the call ends, whether or not this waited for it.
func (c *Client) readClock(ctx context.Context, p *pooled) error {
	done := make(chan error, 1)
	go func() {
		d, err := p.oc.TimeDelta()
		if err == nil {
			c.offsetMu.Lock()
			c.offset = &d
			c.offsetMu.Unlock()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			c.pool <- p
			return fmt.Errorf("reading the clock of %s (GET /auth/time): %w", c.endpointName(), err)
		}
		p.clockKnown = true
		return nil
	case <-ctx.Done():
		go func() {
			if <-done == nil {
				p.clockKnown = true
			}
			c.pool <- p
		}()
		return fmt.Errorf("reading the clock of %s (GET /auth/time): %w", c.endpointName(), context.Cause(ctx))
	}
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
		c.offsetMu.Lock()
		defer c.offsetMu.Unlock()
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
	var ids []string
	if err := c.call(ctx, http.MethodGet, c.path("/postgresql"), nil, &ids); err != nil {
		return nil, fmt.Errorf("listing database clusters: %w", err)
	}
	return getAll(ctx, ids, func(ctx context.Context, id string) (Cluster, error) {
		return c.GetCluster(ctx, id)
	})
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
		var u User
		if err := c.call(ctx, http.MethodGet, c.path("/postgresql/%s/user/%s", clusterID, id), nil, &u); err != nil {
			return u, fmt.Errorf("reading user %s of cluster %s: %w", id, clusterID, err)
		}
		u.Password = ""
		return u, nil
	})
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
