package state_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"

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
