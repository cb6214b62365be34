package s3store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

const (
	testKey    = "acco0123456789abcdef"
	testSecret = "0123456789abcdef0123456789abcdef01234567"
)

// signedServer is the local S3 behind RequireSignature, with the payload
// hashes the requests it passed carried.
type signedServer struct {
	*httptest.Server
	v      *verifier
	mu     sync.Mutex
	hashes []string
}

func newSignedServer(t *testing.T) *signedServer {
	t.Helper()
	s := &signedServer{}
	fake := gofakes3.New(s3mem.New()).Server()
	record := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hashes = append(s.hashes, r.Method+" "+r.Header.Get("X-Amz-Content-Sha256"))
		s.mu.Unlock()
		fake.ServeHTTP(w, r)
	})
	s.v = RequireSignature(record, map[string]string{testKey: testSecret}).(*verifier)
	s.Server = httptest.NewServer(s.v)
	t.Cleanup(s.Close)
	return s
}

func sdkClient(url, key, secret string) *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint:               aws.String(url),
		Region:                     "gra",
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(key, secret, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		RetryMaxAttempts:           1,
	})
}

// errCode returns the S3 error code and HTTP status of an SDK error.
func errCode(err error) (string, int) {
	var ae smithy.APIError
	var re *awshttp.ResponseError
	code, status := "", 0
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	return code, status
}

// TestSDKRequestsPass: every call acco and the tests make, signed by the
// real SDK with the right key, passes, keys with awkward characters too,
// whatever the SDK chose as payload hash.
func TestSDKRequestsPass(t *testing.T) {
	srv := newSignedServer(t)
	c := sdkClient(srv.URL, testKey, testSecret)
	ctx := context.Background()
	bucket := aws.String("acco-state")
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: bucket}); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"test/state.json", "dir/a b+c~d=e&f%g é.json", "x/y:z@!$'()*,;"} {
		body := []byte(`{"serial":1}`)
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: bucket, Key: aws.String(key), Body: bytes.NewReader(body), IfNoneMatch: aws.String("*")}); err != nil {
			t.Fatalf("put %q: %v", key, err)
		}
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: bucket, Key: aws.String(key)})
		if err != nil {
			t.Fatalf("get %q: %v", key, err)
		}
		got, _ := io.ReadAll(out.Body)
		out.Body.Close()
		if !bytes.Equal(got, body) {
			t.Errorf("get %q: %q", key, got)
		}
		if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: bucket, Key: aws.String(key)}); err != nil {
			t.Fatalf("head %q: %v", key, err)
		}
	}
	if _, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: bucket, Prefix: aws.String("dir/a b")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: bucket, Prefix: aws.String("test/"), MaxKeys: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: bucket, Key: aws.String("test/state.json")}); err != nil {
		t.Fatal(err)
	}
	// Over plain http the SDK signs the SHA-256 of every body (no
	// aws-chunked stream, since checksums are computed only when required).
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.hashes) < 10 {
		t.Fatalf("requests seen: %v", srv.hashes)
	}
	for _, h := range srv.hashes {
		if _, v, _ := strings.Cut(h, " "); len(v) != 64 {
			t.Errorf("payload hash %q", h)
		}
	}
}

// TestBadCredentialsRefused: a wrong secret or an unknown key gets the 403
// an S3 service answers, with its code.
func TestBadCredentialsRefused(t *testing.T) {
	srv := newSignedServer(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name, key, secret, code string
	}{
		{"wrong secret", testKey, testSecret + "x", "SignatureDoesNotMatch"},
		{"unknown key", "someone-else", testSecret, "InvalidAccessKeyId"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := sdkClient(srv.URL, tc.key, tc.secret)
			_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k"), Body: strings.NewReader("v")})
			if code, status := errCode(err); code != tc.code || status != http.StatusForbidden {
				t.Errorf("put: got %q %d (%v), want %s 403", code, status, err, tc.code)
			}
			_, err = c.ListBuckets(ctx, &s3.ListBucketsInput{})
			if code, status := errCode(err); code != tc.code || status != http.StatusForbidden {
				t.Errorf("list buckets: got %q %d (%v), want %s 403", code, status, err, tc.code)
			}
		})
	}
}

// signedRequest is a PUT signed by the SDK's signer with payload hash
// hash (the body's when empty).
func signedRequest(t *testing.T, url, secret, hash string, body []byte, at time.Time) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, url+"/bucket/dir/key.json?x-id=PutObject&a=b%20c~d", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if hash == "" {
		sum := sha256.Sum256(body)
		hash = hex.EncodeToString(sum[:])
	}
	req.Header.Set("X-Amz-Content-Sha256", hash)
	req.Header.Set("X-Amz-Meta-Who", "  alice   at host ")
	req.Header.Set("Content-Type", "application/json")
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	creds := aws.Credentials{AccessKeyID: testKey, SecretAccessKey: secret}
	if err := signer.SignHTTP(context.Background(), creds, req, hash, "s3", "gra", at); err != nil {
		t.Fatal(err)
	}
	return req
}

// s3ErrorOf sends req and returns the status and the code of its error.
func s3ErrorOf(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct{ Code string }
	data, _ := io.ReadAll(resp.Body)
	_ = xml.Unmarshal(data, &e)
	return resp.StatusCode, e.Code
}

// TestTamperedRequestRefused: a request signed with the right key and then
// altered in any part the signature covers is refused.
func TestTamperedRequestRefused(t *testing.T) {
	srv := newSignedServer(t)
	if _, err := sdkClient(srv.URL, testKey, testSecret).CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("bucket")}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	body := []byte("the body")
	for _, tc := range []struct {
		name   string
		hash   string
		tamper func(r *http.Request)
		status int
		code   string
	}{
		{"none", "", func(*http.Request) {}, http.StatusOK, ""},
		{"unsigned payload", "UNSIGNED-PAYLOAD", func(*http.Request) {}, http.StatusOK, ""},
		{"signed header", "", func(r *http.Request) { r.Header.Set("X-Amz-Meta-Who", "mallory") }, http.StatusForbidden, "SignatureDoesNotMatch"},
		{"content type", "", func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }, http.StatusForbidden, "SignatureDoesNotMatch"},
		{"date", "", func(r *http.Request) { r.Header.Set("X-Amz-Date", now.Add(time.Second).UTC().Format(amzDateFormat)) }, http.StatusForbidden, "SignatureDoesNotMatch"},
		{"path", "", func(r *http.Request) { r.URL.Path = "/bucket/dir/other.json" }, http.StatusForbidden, "SignatureDoesNotMatch"},
		{"query", "", func(r *http.Request) { r.URL.RawQuery += "&c=d" }, http.StatusForbidden, "SignatureDoesNotMatch"},
		{"method", "", func(r *http.Request) { r.Method = http.MethodPost }, http.StatusForbidden, "SignatureDoesNotMatch"},
		{"body", "", func(r *http.Request) { r.Body = io.NopCloser(strings.NewReader("the bodx")) }, http.StatusBadRequest, "XAmzContentSHA256Mismatch"},
		{"anonymous", "", func(r *http.Request) { r.Header.Del("Authorization") }, http.StatusForbidden, "AccessDenied"},
		{"signature version 2", "", func(r *http.Request) { r.Header.Set("Authorization", "AWS "+testKey+":c2lnbmF0dXJl") }, http.StatusBadRequest, "InvalidRequest"},
		{"unknown key", "", func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), testKey, "nobody", 1))
		}, http.StatusForbidden, "InvalidAccessKeyId"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := signedRequest(t, srv.URL, testSecret, tc.hash, body, now)
			tc.tamper(req)
			status, code := s3ErrorOf(t, req)
			if status != tc.status || code != tc.code {
				t.Errorf("got %d %s, want %d %s", status, code, tc.status, tc.code)
			}
		})
	}
}

// TestPresignedURL: a URL presigned by the SDK works until it expires, and
// not once altered.
func TestPresignedURL(t *testing.T) {
	srv := newSignedServer(t)
	c := sdkClient(srv.URL, testKey, testSecret)
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bkt")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k"), Body: strings.NewReader("v")}); err != nil {
		t.Fatal(err)
	}
	p, err := s3.NewPresignClient(c).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k")}, s3.WithPresignExpires(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	get := func(url string) (int, string) {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s3ErrorOf(t, req)
	}
	if status, code := get(p.URL); status != http.StatusOK {
		t.Errorf("presigned GET: %d %s", status, code)
	}
	if status, code := get(strings.Replace(p.URL, "/bkt/k?", "/bkt/l?", 1)); status != http.StatusForbidden || code != "SignatureDoesNotMatch" {
		t.Errorf("altered presigned GET: %d %s", status, code)
	}
	srv.v.now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	if status, code := get(p.URL); status != http.StatusForbidden || code != "AccessDenied" {
		t.Errorf("expired presigned GET: %d %s", status, code)
	}
}

// chunkedBody builds an aws-chunked body of chunks, each signed with the
// SDK's stream signer from the request's signature seed.
func chunkedBody(t *testing.T, secret string, seed []byte, at time.Time, chunks ...string) []byte {
	t.Helper()
	signer := v4.NewStreamSigner(aws.Credentials{AccessKeyID: testKey, SecretAccessKey: secret}, "s3", "gra", seed)
	var b bytes.Buffer
	for _, c := range append(chunks, "") {
		sig, err := signer.GetSignature(context.Background(), nil, []byte(c), at)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%x;chunk-signature=%s\r\n%s\r\n", len(c), hex.EncodeToString(sig), c)
	}
	return b.Bytes()
}

// TestSignedChunks: an aws-chunked body whose chunks are signed from the
// request's signature is stored decoded; a chunk altered or signed with
// another secret is refused.
func TestSignedChunks(t *testing.T) {
	srv := newSignedServer(t)
	c := sdkClient(srv.URL, testKey, testSecret)
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bucket")}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	send := func(tamper func([]byte) []byte, secret string) (int, string) {
		req := signedRequest(t, srv.URL, testSecret, streamingSigned, nil, now)
		req.URL.RawQuery = ""
		req.Header.Set("Authorization", "")
		req.Header.Set("Content-Encoding", "aws-chunked")
		req.Header.Set("X-Amz-Decoded-Content-Length", "11")
		signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
		if err := signer.SignHTTP(ctx, aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret}, req, streamingSigned, "s3", "gra", now); err != nil {
			t.Fatal(err)
		}
		_, sig, _ := strings.Cut(req.Header.Get("Authorization"), "Signature=")
		seed, _ := hex.DecodeString(sig)
		body := tamper(chunkedBody(t, secret, seed, now, "hello", " world"))
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		return s3ErrorOf(t, req)
	}
	same := func(b []byte) []byte { return b }
	if status, code := send(same, testSecret); status != http.StatusOK {
		t.Fatalf("signed chunks: %d %s", status, code)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bucket"), Key: aws.String("dir/key.json")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(got) != "hello world" {
		t.Errorf("stored %q", got)
	}
	if status, code := send(func(b []byte) []byte { return bytes.Replace(b, []byte("world"), []byte("wörld"[:5]), 1) }, testSecret); status != http.StatusForbidden || code != "SignatureDoesNotMatch" {
		t.Errorf("altered chunk: %d %s", status, code)
	}
	if status, code := send(same, testSecret+"x"); status != http.StatusForbidden || code != "SignatureDoesNotMatch" {
		t.Errorf("chunks signed with another secret: %d %s", status, code)
	}
	if status, code := send(func(b []byte) []byte { return b[:len(b)-10] }, testSecret); status != http.StatusBadRequest || code != "IncompleteBody" {
		t.Errorf("truncated chunks: %d %s", status, code)
	}
}
