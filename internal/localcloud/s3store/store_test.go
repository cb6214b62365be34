package s3store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/johannesboyne/gofakes3"
)

// serve starts an S3 server over the store at dir and returns a real SDK client.
func serve(t *testing.T, dir string) (*s3.Client, *Store) {
	t.Helper()
	st, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(RequireSignature(gofakes3.New(st).Server(), map[string]string{"k": "s"}))
	t.Cleanup(func() { srv.Close(); st.Close() })
	client := s3.New(s3.Options{
		BaseEndpoint:               aws.String(srv.URL),
		Region:                     "gra",
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider("k", "s", ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	return client, st
}

func versions(t *testing.T, c *s3.Client, bucket string) []string {
	t.Helper()
	out, err := c.ListObjectVersions(context.Background(), &s3.ListObjectVersionsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, v := range out.Versions {
		ids = append(ids, aws.ToString(v.Key)+"@"+aws.ToString(v.VersionId)+"@"+v.LastModified.UTC().String())
	}
	return ids
}

func get(t *testing.T, c *s3.Client, bucket, key string) (string, string) {
	t.Helper()
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, _ := io.ReadAll(out.Body)
	return string(b), aws.ToString(out.ETag)
}

func TestStoreSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c, st := serve(t, dir)
	bucket := aws.String("state")
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: bucket}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: bucket, VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"one", "two"} {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: bucket, Key: aws.String("test/state.json"), Body: bytes.NewReader([]byte(body))}); err != nil {
			t.Fatal(err)
		}
	}
	// A failed conditional write is not journaled.
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: bucket, Key: aws.String("test/state.json"), Body: bytes.NewReader([]byte("three")), IfNoneMatch: aws.String("*")})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "PreconditionFailed" {
		t.Fatalf("conditional put over an existing object: got %v, want PreconditionFailed", err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: bucket, Key: aws.String("gone"), Body: bytes.NewReader([]byte("x"))}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: bucket, Key: aws.String("gone")}); err != nil {
		t.Fatal(err)
	}
	wantVersions := versions(t, c, "state")
	wantBody, wantETag := get(t, c, "state", "test/state.json")
	st.Close()

	c2, _ := serve(t, dir)
	if got := versions(t, c2, "state"); !equal(got, wantVersions) {
		t.Errorf("versions after restart:\n got %v\nwant %v", got, wantVersions)
	}
	body, etag := get(t, c2, "state", "test/state.json")
	if body != wantBody || body != "two" || etag != wantETag {
		t.Errorf("after restart: body %q etag %s, want %q %s", body, etag, wantBody, wantETag)
	}
	if _, err := c2.GetObject(ctx, &s3.GetObjectInput{Bucket: bucket, Key: aws.String("gone")}); err == nil {
		t.Error("deleted object is back after restart")
	}
	v, err := c2.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: bucket})
	if err != nil || v.Status != types.BucketVersioningStatusEnabled {
		t.Errorf("versioning after restart: %v %v", v.Status, err)
	}
	// The restored ETag still guards conditional writes.
	if _, err := c2.PutObject(ctx, &s3.PutObjectInput{Bucket: bucket, Key: aws.String("test/state.json"), Body: bytes.NewReader([]byte("three")), IfMatch: aws.String(etag)}); err != nil {
		t.Fatalf("If-Match with the restored ETag: %v", err)
	}
}

func TestTornJournalTailIsDropped(t *testing.T) {
	dir := t.TempDir()
	c, st := serve(t, dir)
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bkt")}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	f, err := os.OpenFile(filepath.Join(dir, journalName), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"op":"put","bucket":"bkt","key":"half`); err != nil {
		t.Fatal(err)
	}
	f.Close()

	c2, _ := serve(t, dir)
	if _, err := c2.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k"), Body: bytes.NewReader([]byte("v"))}); err != nil {
		t.Fatal(err)
	}
	if body, _ := get(t, c2, "bkt", "k"); body != "v" {
		t.Fatalf("got %q", body)
	}
	// The journal is readable again after the torn tail was cut.
	if _, _, err := readJournal(filepath.Join(dir, journalName)); err != nil {
		t.Fatal(err)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) > 0
}
