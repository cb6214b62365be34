package state

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Blob is a tiny object store with conditional writes. Keys are
// slash-separated relative paths; ETags are opaque strings, without quotes.
// A Blob is safe for concurrent use.
type Blob interface {
	// Get returns an object and its ETag, or an error wrapping ErrNotFound.
	Get(ctx context.Context, key string) (data []byte, etag string, err error)
	// Put writes an object and returns its new ETag. With IfNoneMatch it
	// writes only if the object is absent, with IfMatch(etag) only if its
	// current ETag is etag, and with the zero Cond unconditionally. A
	// condition that does not hold gives an error wrapping ErrPrecondition.
	Put(ctx context.Context, key string, data []byte, cond Cond) (etag string, err error)
	// Delete removes an object; a missing object is not an error. With
	// IfMatch(etag) it removes the object only if its current ETag is etag,
	// else returns an error wrapping ErrPrecondition.
	Delete(ctx context.Context, key string, cond Cond) error
	// List returns the keys that start with prefix, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
}

// Bootstrapper is implemented by the blobs that can create their own
// bucket: S3Blob and DirBlob.
type Bootstrapper interface {
	// EnsureBucket creates the bucket if it is missing, makes sure it keeps
	// old versions of objects, and reports what it had to do.
	EnsureBucket(ctx context.Context) (BootstrapReport, error)
}

// BootstrapReport says which steps EnsureBucket had to take. All false
// means the bucket was already set up and nothing changed.
type BootstrapReport struct {
	// BucketCreated: the bucket (or directory) did not exist and was made.
	BucketCreated bool `json:"bucket_created"`
	// VersioningEnabled: versioning was off and was turned on.
	VersioningEnabled bool `json:"versioning_enabled"`
	// MarkerWritten: the marker object saying acco owns the bucket was
	// written (a new bucket, or an empty one that acco adopted).
	MarkerWritten bool `json:"marker_written"`
}

// Changed reports whether EnsureBucket changed anything.
func (r BootstrapReport) Changed() bool {
	return r.BucketCreated || r.VersioningEnabled || r.MarkerWritten
}

// String lists the steps taken, for people.
func (r BootstrapReport) String() string {
	var steps []string
	if r.BucketCreated {
		steps = append(steps, "bucket created")
	}
	if r.VersioningEnabled {
		steps = append(steps, "versioning enabled")
	}
	if r.MarkerWritten {
		steps = append(steps, "marked as acco's")
	}
	if len(steps) == 0 {
		return "nothing needed"
	}
	return strings.Join(steps, ", ")
}

// MarkerKey is the key of the object that marks a bucket as created by acco.
const MarkerKey = ".acco-bucket.json"

// Cond is a precondition on Put or Delete. The zero Cond means none; use
// IfNoneMatch or IfMatch otherwise.
type Cond string

// IfNoneMatch is the condition "only if the object is absent".
const IfNoneMatch Cond = "if-none-match:*"

const ifMatchPrefix = "if-match:"

// IfMatch is the condition "only if the object's current ETag is etag".
// Surrounding quotes in etag are ignored.
func IfMatch(etag string) Cond {
	return Cond(ifMatchPrefix + trimETag(etag))
}

const ifMatchHeldPrefix = "if-match-held:"

// IfMatchHeld is IfMatch for a caller that holds a live lease on the
// object: nobody else may have written it since etag, so a store that does
// not enforce If-Match on a delete (see S3Blob) need not read the object
// first. The condition is still sent.
func IfMatchHeld(etag string) Cond {
	return Cond(ifMatchHeldPrefix + trimETag(etag))
}

// Match returns the ETag of an IfMatch or IfMatchHeld condition.
func (c Cond) Match() (etag string, ok bool) {
	if etag, ok = strings.CutPrefix(string(c), ifMatchPrefix); ok {
		return etag, true
	}
	if etag, ok = strings.CutPrefix(string(c), ifMatchHeldPrefix); ok {
		return etag, true
	}
	return "", false
}

// held reports whether c is an IfMatchHeld condition.
func (c Cond) held() bool { return strings.HasPrefix(string(c), ifMatchHeldPrefix) }

// String describes the condition for messages, as the HTTP header that
// expresses it.
func (c Cond) String() string {
	if etag, ok := c.Match(); ok {
		return "If-Match: " + etag
	}
	switch c {
	case "":
		return "unconditional"
	case IfNoneMatch:
		return "If-None-Match: *"
	}
	return fmt.Sprintf("invalid condition %q", string(c))
}

// valid reports whether c is one of the conditions above.
func (c Cond) valid() error {
	if etag, ok := c.Match(); ok {
		if etag == "" {
			return fmt.Errorf("condition %s: empty ETag", c)
		}
		return nil
	}
	if c == "" || c == IfNoneMatch {
		return nil
	}
	return fmt.Errorf("invalid condition %q: use IfNoneMatch or IfMatch(etag)", string(c))
}

// trimETag removes the quotes S3 puts around ETags (and a weak marker).
func trimETag(etag string) string {
	etag = strings.TrimPrefix(etag, "W/")
	if len(etag) >= 2 && etag[0] == '"' && etag[len(etag)-1] == '"' {
		etag = etag[1 : len(etag)-1]
	}
	return etag
}

// checkKey refuses keys that are not clean relative slash paths.
func checkKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("empty key")
	case strings.HasPrefix(key, "/"), strings.Contains(key, `\`),
		path.Clean(key) != key, key == "..", strings.HasPrefix(key, "../"):
		return fmt.Errorf("invalid key %q: want a clean relative path such as test/state.json", key)
	}
	return nil
}

// OpenBlob opens the store named by a URL:
//
//	s3://BUCKET?endpoint=https://s3.gra.io.cloud.ovh.net&region=gra&path_style=true
//	file:///ABSOLUTE/DIR
//
// For s3, endpoint, region and path_style are optional (the AWS defaults
// apply), and credentials come from the usual AWS sources (the
// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY variables, shared files). An
// http endpoint is refused unless PlainHTTPAllowed its host. Options
// adjust an s3 store (see WithResponseHeaderTimeout).
func OpenBlob(ctx context.Context, rawURL string, opts ...OpenOption) (Blob, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("state URL %q: %w", rawURL, err)
	}
	switch u.Scheme {
	case "s3":
		cfg, err := parseS3URL(u)
		if err != nil {
			return nil, fmt.Errorf("state URL %q: %w", rawURL, err)
		}
		for _, o := range opts {
			o(&cfg)
		}
		return NewS3Blob(ctx, cfg)
	case "file":
		dir, err := parseFileURL(u)
		if err != nil {
			return nil, fmt.Errorf("state URL %q: %w", rawURL, err)
		}
		return NewDirBlob(dir), nil
	default:
		return nil, fmt.Errorf("state URL %q: unsupported scheme: use s3://BUCKET?endpoint=URL&region=REGION or file:///ABSOLUTE/DIR", rawURL)
	}
}

// OpenOption adjusts the S3Config that OpenBlob builds.
type OpenOption func(*S3Config)

// WithResponseHeaderTimeout sets how long each S3 attempt waits for the
// server's answer (S3Config.ResponseHeaderTimeout); 0 keeps the default.
func WithResponseHeaderTimeout(d time.Duration) OpenOption {
	return func(c *S3Config) { c.ResponseHeaderTimeout = d }
}

func parseS3URL(u *url.URL) (S3Config, error) {
	var cfg S3Config
	if u.Host == "" {
		return cfg, fmt.Errorf("no bucket: want s3://BUCKET?endpoint=URL&region=REGION")
	}
	if u.Path != "" && u.Path != "/" {
		return cfg, fmt.Errorf("unexpected path %q after the bucket name (keys are chosen by acco)", u.Path)
	}
	if u.User != nil {
		return cfg, fmt.Errorf("credentials do not belong in the URL: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	}
	cfg.Bucket = u.Host
	for name, values := range u.Query() {
		if len(values) != 1 {
			return cfg, fmt.Errorf("parameter %s given %d times", name, len(values))
		}
		v := values[0]
		switch name {
		case "endpoint":
			eu, err := url.Parse(v)
			if err != nil || (eu.Scheme != "https" && eu.Scheme != "http") || eu.Host == "" {
				return cfg, fmt.Errorf("endpoint %q: want an http(s) URL such as https://s3.gra.io.cloud.ovh.net", v)
			}
			if eu.Scheme == "http" && !PlainHTTPAllowed(eu.Hostname()) {
				return cfg, fmt.Errorf("endpoint %s uses plain http: state, locks and sealed secrets travel over https except to a server on this machine (localhost, 127.0.0.0/8, ::1); write https://%s", v, eu.Host)
			}
			cfg.Endpoint = v
		case "region":
			cfg.Region = v
		case "path_style":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return cfg, fmt.Errorf("path_style %q: want true or false", v)
			}
			cfg.PathStyle = b
		default:
			return cfg, fmt.Errorf("unknown parameter %q (known: endpoint, region, path_style)", name)
		}
	}
	return cfg, nil
}

// PlainHTTPAllowed reports whether an S3 endpoint on host may be reached
// over plain http: only a server on this machine (localhost, 127.0.0.0/8,
// ::1) may, every other one needs https. It is the one rule for endpoints
// given in the YAML (state.endpoint), with --state and in ACCO_STATE.
func PlainHTTPAllowed(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

func parseFileURL(u *url.URL) (string, error) {
	if u.Host != "" && u.Host != "localhost" {
		return "", fmt.Errorf("host %q in a file URL: want file:///ABSOLUTE/DIR (three slashes)", u.Host)
	}
	if u.Opaque != "" || !strings.HasPrefix(u.Path, "/") {
		return "", fmt.Errorf("relative file URL: want file:///ABSOLUTE/DIR")
	}
	if u.RawQuery != "" {
		return "", fmt.Errorf("unexpected parameters in a file URL")
	}
	return filepath.FromSlash(path.Clean(u.Path)), nil
}
