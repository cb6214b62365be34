package state_test

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/accoreboot/acco/state"
	"github.com/accoreboot/acco/state/statetest"
)

const testRegion = "gra"

func testCredentials() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider("AKIDTEST", "secret-test", "")
}

// fakeS3 is gofakes3 with its in-memory (versioned) backend, over HTTP on
// loopback.
type fakeS3 struct {
	backend *s3mem.Backend
	url     string
}

func newFakeS3(t *testing.T) *fakeS3 {
	t.Helper()
	backend := s3mem.New()
	srv := httptest.NewServer(gofakes3.New(backend, gofakes3.WithAutoBucket(false)).Server())
	t.Cleanup(srv.Close)
	return &fakeS3{backend: backend, url: srv.URL}
}

// blob returns an S3Blob for bucket whose requests go through rt.
func (f *fakeS3) blob(t *testing.T, bucket string, rt http.RoundTripper) *state.S3Blob {
	t.Helper()
	if rt == nil {
		rt = http.DefaultTransport
	}
	b, err := state.NewS3Blob(t.Context(), state.S3Config{
		Bucket:      bucket,
		Region:      testRegion,
		Endpoint:    f.url,
		PathStyle:   true,
		HTTPClient:  &http.Client{Transport: rt},
		Credentials: testCredentials(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// client returns a plain SDK client of the fake, to look behind the blob.
func (f *fakeS3) client() *s3.Client {
	return s3.New(s3.Options{
		Region:       testRegion,
		BaseEndpoint: aws.String(f.url),
		UsePathStyle: true,
		Credentials:  testCredentials(),
	})
}

// loseAnswer is a RoundTripper that, once armed for a key, lets the next
// conditional PUT of that key reach the server and then reports a
// connection reset instead of the server's answer. The SDK takes the reset
// for a retryable error and sends the PUT again, which then fails its
// condition (412) because the first one was applied.
type loseAnswer struct {
	base http.RoundTripper

	mu  sync.Mutex
	key string
	hit bool
}

func (l *loseAnswer) arm(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.key, l.hit = key, false
}

func (l *loseAnswer) take(req *http.Request) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	conditional := req.Header.Get("If-None-Match") != "" || req.Header.Get("If-Match") != ""
	if l.key == "" || req.Method != http.MethodPut || !conditional || !strings.HasSuffix(req.URL.Path, "/"+l.key) {
		return false
	}
	l.key, l.hit = "", true
	return true
}

func (l *loseAnswer) RoundTrip(req *http.Request) (*http.Response, error) {
	if !l.take(req) {
		return l.base.RoundTrip(req)
	}
	resp, err := l.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return nil, &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
}

// s3Faults arms the loseAnswer transport of the blob.
type s3Faults struct {
	transports sync.Map // *state.S3Blob → *loseAnswer
}

func (f *s3Faults) Redeliver(t *testing.T, b state.Blob, key string) state.Blob {
	v, ok := f.transports.Load(b)
	if !ok {
		t.Fatalf("no transport recorded for %T", b)
	}
	la := v.(*loseAnswer)
	la.arm(key)
	t.Cleanup(func() {
		la.mu.Lock()
		defer la.mu.Unlock()
		if !la.hit {
			t.Errorf("the fault for %s was never triggered", key)
		}
	})
	return b
}

func TestS3Conformance(t *testing.T) {
	faults := &s3Faults{}
	newBlob := func(t *testing.T) state.Blob {
		f := newFakeS3(t)
		la := &loseAnswer{base: http.DefaultTransport}
		b := f.blob(t, "acco-state", la)
		if _, err := b.EnsureBucket(t.Context()); err != nil {
			t.Fatal(err)
		}
		faults.transports.Store(b, la)
		return b
	}
	statetest.Run(t, newBlob, faults)
}

func TestS3EnsureBucket(t *testing.T) {
	ctx := t.Context()
	f := newFakeS3(t)
	b := f.blob(t, "acco-state", nil)

	rep, err := b.EnsureBucket(ctx)
	if want := (state.BootstrapReport{BucketCreated: true, VersioningEnabled: true, MarkerWritten: true}); err != nil || rep != want {
		t.Fatalf("first EnsureBucket = %+v, %v; want %+v", rep, err, want)
	}
	rep, err = b.EnsureBucket(ctx)
	if err != nil || rep != (state.BootstrapReport{}) {
		t.Fatalf("second EnsureBucket = %+v, %v; want nothing done", rep, err)
	}

	c := f.client()
	buckets, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(buckets.Buckets) != 1 || aws.ToString(buckets.Buckets[0].Name) != "acco-state" {
		t.Errorf("buckets = %+v, want acco-state only", buckets.Buckets)
	}
	v, err := c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String("acco-state")})
	if err != nil {
		t.Fatal(err)
	}
	if v.Status != types.BucketVersioningStatusEnabled {
		t.Errorf("versioning = %q, want Enabled", v.Status)
	}
	objs, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("acco-state")})
	if err != nil {
		t.Fatal(err)
	}
	if len(objs.Contents) != 1 || aws.ToString(objs.Contents[0].Key) != state.MarkerKey {
		t.Errorf("objects = %+v, want the marker only", objs.Contents)
	}
}

func TestS3EnsureBucketExisting(t *testing.T) {
	for _, tc := range []struct {
		name    string
		objects []string
		want    state.BootstrapReport
		wantErr error
	}{
		{"EmptyIsAdopted", nil, state.BootstrapReport{VersioningEnabled: true, MarkerWritten: true}, nil},
		{"Foreign", []string{"backup.tar"}, state.BootstrapReport{}, state.ErrForeignBucket},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			f := newFakeS3(t)
			if err := f.backend.CreateBucket("shared"); err != nil {
				t.Fatal(err)
			}
			for _, key := range tc.objects {
				if _, err := f.backend.PutObject("shared", key, nil, strings.NewReader("x"), 1, nil); err != nil {
					t.Fatal(err)
				}
			}
			rep, err := f.blob(t, "shared", nil).EnsureBucket(ctx)
			if !errors.Is(err, tc.wantErr) || rep != tc.want {
				t.Fatalf("EnsureBucket = %+v, %v; want %+v, %v", rep, err, tc.want, tc.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "state.bucket") {
				t.Errorf("error %q does not say what to change", err)
			}
			v, err := f.client().GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String("shared")})
			if err != nil {
				t.Fatal(err)
			}
			if on := v.Status == types.BucketVersioningStatusEnabled; on != (tc.wantErr == nil) {
				t.Errorf("versioning = %q after EnsureBucket", v.Status)
			}
		})
	}
}

// TestS3EnsureBucketTaken covers answers gofakes3 does not give: a bucket
// name owned by another account.
func TestS3EnsureBucketTaken(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"CreateSaysAlreadyExists", func(w http.ResponseWriter, r *http.Request) {
			switch r.Method {
			case http.MethodHead:
				w.WriteHeader(http.StatusNotFound)
			case http.MethodPut:
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(http.StatusConflict)
				_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>BucketAlreadyExists</Code><Message>The requested bucket name is not available.</Message></Error>`)
			default:
				http.Error(w, "unexpected", http.StatusTeapot)
			}
		}},
		{"HeadForbidden", func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodHead {
				http.Error(w, "unexpected", http.StatusTeapot)
				return
			}
			w.WriteHeader(http.StatusForbidden)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			t.Cleanup(srv.Close)
			f := &fakeS3{url: srv.URL}
			_, err := f.blob(t, "taken", nil).EnsureBucket(t.Context())
			if !errors.Is(err, state.ErrForeignBucket) || !strings.Contains(err.Error(), "state.bucket") {
				t.Fatalf("EnsureBucket: got %v, want ErrForeignBucket saying to change state.bucket", err)
			}
		})
	}
}

func TestS3MissingBucket(t *testing.T) {
	f := newFakeS3(t)
	b := f.blob(t, "nope", nil)
	_, _, err := b.Get(t.Context(), "test/state.json")
	if err == nil || errors.Is(err, state.ErrNotFound) || !strings.Contains(err.Error(), "bootstrap") {
		t.Fatalf("Get in a missing bucket: got %v, want an error saying to bootstrap", err)
	}
}

// TestS3SendsBareETags checks the If-Match header carries the ETag without
// quotes, as OVH requires.
func TestS3SendsBareETags(t *testing.T) {
	ctx := t.Context()
	f := newFakeS3(t)
	var (
		mu   sync.Mutex
		seen []string
	)
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if v := r.Header.Get("If-Match"); v != "" {
			mu.Lock()
			seen = append(seen, r.Method+" "+v)
			mu.Unlock()
		}
		return http.DefaultTransport.RoundTrip(r)
	})
	b := f.blob(t, "acco-state", rt)
	if _, err := b.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	etag, err := b.Put(ctx, "k", []byte("one"), "")
	if err != nil {
		t.Fatal(err)
	}
	if etag, err = b.Put(ctx, "k", []byte("two"), state.IfMatch(`"`+etag+`"`)); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, "k", state.IfMatch(etag)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 {
		t.Fatalf("If-Match sent %d times (%q), want 2", len(seen), seen)
	}
	for _, s := range seen {
		if strings.Contains(s, `"`) {
			t.Errorf("If-Match with quotes: %s", s)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// dropConditions serves h as a server that ignores some conditional
// headers: it removes them from each request before h sees it.
func dropConditions(h http.Handler, headers ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, name := range headers {
			r.Header.Del(name)
		}
		h.ServeHTTP(w, r)
	})
}

func TestS3CheckConditionalWrites(t *testing.T) {
	for _, tc := range []struct {
		name    string
		drop    []string
		wantErr string // "" for none
	}{
		{"Honoured", nil, ""},
		{"IgnoresIfNoneMatch", []string{"If-None-Match"}, "If-None-Match"},
		{"IgnoresIfMatch", []string{"If-Match"}, "If-Match"},
		{"IgnoresBoth", []string{"If-None-Match", "If-Match"}, "If-None-Match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			backend := s3mem.New()
			srv := httptest.NewServer(dropConditions(gofakes3.New(backend, gofakes3.WithAutoBucket(false)).Server(), tc.drop...))
			t.Cleanup(srv.Close)
			f := &fakeS3{backend: backend, url: srv.URL}
			b := f.blob(t, "acco-state", nil)
			if _, err := b.EnsureBucket(ctx); err != nil {
				t.Fatal(err)
			}
			err := b.CheckConditionalWrites(ctx)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("CheckConditionalWrites: %v", err)
			case tc.wantErr != "" && (!errors.Is(err, state.ErrNoConditionalWrites) || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("CheckConditionalWrites: got %v, want ErrNoConditionalWrites naming %s", err, tc.wantErr)
			case err != nil && !strings.Contains(err.Error(), "lock"):
				t.Errorf("error %q does not say why acco needs conditional writes", err)
			}
			// The probe leaves nothing behind, not even old versions.
			versions, err := f.client().ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String("acco-state")})
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range versions.Versions {
				if k := aws.ToString(v.Key); k != state.MarkerKey {
					t.Errorf("left behind: version %s of %s", aws.ToString(v.VersionId), k)
				}
			}
			for _, m := range versions.DeleteMarkers {
				t.Errorf("left behind: delete marker of %s", aws.ToString(m.Key))
			}
		})
	}
}

func TestDirCheckConditionalWrites(t *testing.T) {
	b := newDirBlob(t)
	if err := b.(state.ConditionalChecker).CheckConditionalWrites(t.Context()); err != nil {
		t.Fatalf("CheckConditionalWrites: %v", err)
	}
	if keys, err := b.List(t.Context(), ""); err != nil || len(keys) != 1 || keys[0] != state.MarkerKey {
		t.Errorf("after the probe: keys %q, %v; want the marker only", keys, err)
	}
}

// sentRequest is what a recording transport saw of one request.
type sentRequest struct {
	method, path, query string
	header              http.Header
	body                []byte
}

// recorder is a RoundTripper that keeps a copy of every request.
type recorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	reqs []sentRequest
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		_ = req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, sentRequest{req.Method, req.URL.Path, req.URL.RawQuery, req.Header.Clone(), body})
	r.mu.Unlock()
	return r.base.RoundTrip(req)
}

// TestS3SendsNoChecksumHeaders records, over TLS as with OVH, the headers
// of every request acco's S3 calls make, and checks that none carries the
// SDK's flexible checksums (x-amz-checksum-*, x-amz-sdk-checksum-algorithm,
// streaming trailers), which OVH has refused. PutBucketVersioning, for
// which S3 requires an integrity check, carries Content-MD5 instead.
func TestS3SendsNoChecksumHeaders(t *testing.T) {
	ctx := t.Context()
	backend := s3mem.New()
	srv := httptest.NewTLSServer(gofakes3.New(backend, gofakes3.WithAutoBucket(false)).Server())
	t.Cleanup(srv.Close)
	rec := &recorder{base: srv.Client().Transport}
	b, err := state.NewS3Blob(ctx, state.S3Config{
		Bucket: "acco-state", Region: testRegion, Endpoint: srv.URL, PathStyle: true,
		HTTPClient: &http.Client{Transport: rec}, Credentials: testCredentials(),
	})
	if err != nil {
		t.Fatal(err)
	}

	// Every kind of call acco makes: bootstrap (HeadBucket, CreateBucket,
	// marker, versioning), the probe, state writes and reads, locks, list.
	if _, err := b.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.CheckConditionalWrites(ctx); err != nil {
		t.Fatal(err)
	}
	store := state.NewStore(b)
	st := state.New("test", "dev")
	etag, err := store.Write(ctx, "test", st, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Write(ctx, "test", st, etag); err != nil {
		t.Fatal(err)
	}
	lease, err := state.NewLocker(b).Lock(ctx, "test", state.LockInfo{Operation: "apply"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := lease.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	if err := lease.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.List(ctx, "test/"); err != nil {
		t.Fatal(err)
	}

	rec.mu.Lock()
	defer rec.mu.Unlock()
	versioning := 0
	for _, r := range rec.reqs {
		what := r.method + " " + r.path + "?" + r.query
		for name, values := range r.header {
			h := strings.ToLower(name)
			if strings.HasPrefix(h, "x-amz-checksum-") || h == "x-amz-sdk-checksum-algorithm" || h == "x-amz-trailer" {
				t.Errorf("%s sends %s: %s", what, name, values)
			}
		}
		if v := r.header.Get("X-Amz-Content-Sha256"); strings.HasPrefix(v, "STREAMING-") {
			t.Errorf("%s sends x-amz-content-sha256: %s", what, v)
		}
		if r.method == http.MethodPut && strings.Contains(r.query, "versioning") {
			versioning++
			sum := md5.Sum(r.body)
			if got, want := r.header.Get("Content-Md5"), base64.StdEncoding.EncodeToString(sum[:]); got != want {
				t.Errorf("%s: Content-MD5 %q, want %q", what, got, want)
			}
		}
	}
	if versioning != 1 {
		t.Errorf("PutBucketVersioning sent %d times, want 1", versioning)
	}
}

// hangingS3 is gofakes3 behind a switch: once hung, every request waits
// without an answer until the client gives up (or the test ends), as an S3
// endpoint behind a broken link does.
type hangingS3 struct {
	*fakeS3
	hung    atomic.Bool
	unblock chan struct{}
}

func newHangingS3(t *testing.T) *hangingS3 {
	t.Helper()
	backend := s3mem.New()
	h := &hangingS3{unblock: make(chan struct{})}
	fake := gofakes3.New(backend, gofakes3.WithAutoBucket(false)).Server()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.hung.Load() {
			select {
			case <-r.Context().Done():
			case <-h.unblock:
			}
			return
		}
		fake.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(h.unblock) }) // runs first: frees the waiting handlers
	h.fakeS3 = &fakeS3{backend: backend, url: srv.URL}
	return h
}

// TestKeepAliveGivesUpBeforeExpiryWhenS3Hangs: when S3 stops answering,
// each renewal gives up at its deadline, and the lease is declared lost
// while it is still valid (less than one renew interval left), so that
// the holder stops starting cloud operations before anyone else may take
// the lock.
func TestKeepAliveGivesUpBeforeExpiryWhenS3Hangs(t *testing.T) {
	ctx := t.Context()
	s3 := newHangingS3(t)
	b := s3.blob(t, "acco-state", nil)
	if _, err := b.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	// A 3s lease renewed every 1s (a third): lost at the latest when 1s is
	// left, 2s after the last renewal.
	lease, err := state.NewLocker(b).Lock(ctx, "test", state.LockInfo{Operation: "apply"}, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	expires := lease.Info().Expires
	stop := lease.KeepAlive(ctx)
	defer stop()
	s3.hung.Store(true)

	select {
	case <-lease.Lost():
	case <-time.After(30 * time.Second):
		t.Fatal("the lease was not declared lost while S3 hangs")
	}
	if now := time.Now(); !now.Before(expires) {
		t.Errorf("declared lost at %s, after the lease expired (%s): another operator may already hold the lock", now.Format(time.RFC3339Nano), expires.Format(time.RFC3339Nano))
	}
	if err := lease.Err(); !errors.Is(err, state.ErrLockLost) || !strings.Contains(err.Error(), "renew") {
		t.Errorf("Err = %v, want ErrLockLost saying the lease could not be renewed", err)
	}
	stop() // returns although S3 still hangs
}

// TestS3HungServerTimesOut: without an HTTP client of the caller's, each
// attempt has deadlines, so a server that stops answering gives an error
// rather than a call that never returns.
func TestS3HungServerTimesOut(t *testing.T) {
	s3 := newHangingS3(t)
	s3.hung.Store(true)
	b, err := state.NewS3Blob(t.Context(), state.S3Config{
		Bucket: "acco-state", Region: testRegion, Endpoint: s3.url, PathStyle: true,
		Credentials: testCredentials(), ResponseHeaderTimeout: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, _, err := b.Get(t.Context(), "test/state.json")
		errc <- err
	}()
	select {
	case err := <-errc:
		if err == nil || errors.Is(err, state.ErrNotFound) {
			t.Fatalf("Get from a hung server: got %v, want a timeout", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Get from a hung server did not return")
	}
}

// TestS3RetryPolicy: S3 calls get the cloud APIs' retry policy: six
// attempts in all, 429 and 5xx retried (waiting what Retry-After says),
// 501 and 4xx not, and an error wrapping ErrUnavailable once every
// attempt failed.
func TestS3RetryPolicy(t *testing.T) {
	for _, tc := range []struct {
		name        string
		failures    int // answers before the real one
		status      int
		wantCalls   int32
		unavailable bool
	}{
		{name: "503 five times then ok", failures: 5, status: http.StatusServiceUnavailable, wantCalls: 6},
		{name: "429 then ok", failures: 1, status: http.StatusTooManyRequests, wantCalls: 2},
		{name: "500 six times", failures: 6, status: http.StatusInternalServerError, wantCalls: 6, unavailable: true},
		{name: "501 not retried", failures: 6, status: http.StatusNotImplemented, wantCalls: 1},
		{name: "403 not retried", failures: 6, status: http.StatusForbidden, wantCalls: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			backend := gofakes3.New(s3mem.New()).Server()
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/k") {
					if n := calls.Add(1); int(n) <= tc.failures {
						w.Header().Set("Retry-After", "0")
						w.WriteHeader(tc.status)
						return
					}
				}
				backend.ServeHTTP(w, r)
			}))
			defer srv.Close()
			b, err := state.NewS3Blob(t.Context(), state.S3Config{
				Bucket: "acco-state", Region: testRegion, Endpoint: srv.URL, PathStyle: true, Credentials: testCredentials(),
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.EnsureBucket(t.Context()); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Put(t.Context(), "k", []byte("v"), state.IfNoneMatch); err != nil {
				t.Fatal(err)
			}
			_, _, err = b.Get(t.Context(), "k")
			if got := calls.Load(); got != tc.wantCalls {
				t.Errorf("%d attempts, want %d", got, tc.wantCalls)
			}
			switch {
			case tc.unavailable && !errors.Is(err, state.ErrUnavailable):
				t.Errorf("Get = %v, want ErrUnavailable", err)
			case !tc.unavailable && tc.wantCalls > 1 && err != nil:
				t.Errorf("Get = %v, want success", err)
			case tc.wantCalls == 1 && (err == nil || errors.Is(err, state.ErrUnavailable)):
				t.Errorf("Get = %v, want a plain error", err)
			}
		})
	}
}

// TestS3CredentialErrors: a 403 of the S3 service says which credential
// was refused, where it was read from, the bucket and the endpoint, and
// what to do; it never shows the secret.
func TestS3CredentialErrors(t *testing.T) {
	const secret = "secret-from-env-0123456789"
	for _, tc := range []struct {
		code string
		want []string
	}{
		{"SignatureDoesNotMatch", []string{"AWS_SECRET_ACCESS_KEY is not the secret of that key", "access key AKIDENV", "bucket acco-state"}},
		{"InvalidAccessKeyId", []string{"does not know the access key AKIDENV", "read from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", "set AWS_ACCESS_KEY_ID to an S3 access key of the project that owns bucket acco-state"}},
		{"AccessDenied", []string{"refused access to bucket acco-state for access key AKIDENV", "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"}},
		{"RequestTimeTooSkewed", []string{"clock of this machine"}},
	} {
		t.Run(tc.code, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(http.StatusForbidden)
				_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>`+tc.code+`</Code><Message>refused</Message></Error>`)
			}))
			t.Cleanup(srv.Close)
			t.Setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
			t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
			t.Setenv("AWS_PROFILE", "")
			t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
			t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
			b, err := state.NewS3Blob(t.Context(), state.S3Config{Bucket: "acco-state", Region: testRegion, Endpoint: srv.URL, PathStyle: true})
			if err != nil {
				t.Fatal(err)
			}
			for name, call := range map[string]func() error{
				"get": func() error { _, _, err := b.Get(t.Context(), "test/state.json"); return err },
				"put": func() error {
					_, err := b.Put(t.Context(), "test/lock.json", []byte("{}"), state.IfNoneMatch)
					return err
				},
				"list": func() error { _, err := b.List(t.Context(), "test/"); return err },
			} {
				err := call()
				if !errors.Is(err, state.ErrCredentials) {
					t.Fatalf("%s: got %v, want ErrCredentials", name, err)
				}
				msg := err.Error()
				for _, w := range append(tc.want, srv.URL) {
					if !strings.Contains(msg, w) {
						t.Errorf("%s: %q\nlacks %q", name, msg, w)
					}
				}
				if strings.Contains(msg, secret) {
					t.Errorf("%s: the secret is in the error: %s", name, msg)
				}
			}
		})
	}
}

// TestS3ReleaseALiveLeaseWithoutARead checks that releasing a lock whose
// lease is live is one DELETE with If-Match (nobody else may hold it), and
// that a lease past half its time is checked with a read first.
func TestS3ReleaseALiveLeaseWithoutARead(t *testing.T) {
	ctx := t.Context()
	f := newFakeS3(t)
	var (
		mu   sync.Mutex
		seen []string
	)
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if strings.Contains(r.URL.Path, "lock.json") {
			mu.Lock()
			seen = append(seen, r.Method+" "+r.Header.Get("If-Match"))
			mu.Unlock()
		}
		return http.DefaultTransport.RoundTrip(r)
	})
	b := f.blob(t, "acco-state", rt)
	if _, err := b.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		elapsed time.Duration // of a one-hour lease, when released
		want    []string
	}{
		{"live", 0, []string{"DELETE"}},
		{"past half its time", 40 * time.Minute, []string{"GET", "DELETE"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Now()
			clock := func() time.Time { return now }
			l := state.NewLocker(b, state.WithClock(clock))
			lease, err := l.Lock(ctx, "test", state.LockInfo{Operation: "apply"}, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			now = now.Add(tc.elapsed)
			mu.Lock()
			seen = nil
			mu.Unlock()
			if err := lease.Release(ctx); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			got := slices.Clone(seen)
			mu.Unlock()
			var methods []string
			for _, s := range got {
				method, etag, _ := strings.Cut(s, " ")
				if method == "DELETE" && etag == "" {
					t.Errorf("DELETE without If-Match")
				}
				methods = append(methods, method)
			}
			if !slices.Equal(methods, tc.want) {
				t.Errorf("release sent %v, want %v", methods, tc.want)
			}
			if _, _, err := b.Get(ctx, "test/lock.json"); !errors.Is(err, state.ErrNotFound) {
				t.Errorf("lock after release: %v, want it gone", err)
			}
		})
	}
}
