package state

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// S3Config says how to reach an S3 bucket.
type S3Config struct {
	// Bucket is the bucket name.
	Bucket string
	// Region is the region, e.g. gra. Empty means the AWS default sources
	// (AWS_REGION, shared config).
	Region string
	// Endpoint is the service URL, e.g. https://s3.gra.io.cloud.ovh.net.
	// Empty means AWS.
	Endpoint string
	// PathStyle puts the bucket in the URL path rather than the host name.
	PathStyle bool
	// HTTPClient, if set, carries the requests (tests use it to inject
	// faults). It replaces the SDK's client, so AWS_CA_BUNDLE does not
	// apply to it.
	HTTPClient *http.Client
	// Credentials, if set, replace the default chain (AWS_ACCESS_KEY_ID and
	// AWS_SECRET_ACCESS_KEY, shared credentials files).
	Credentials aws.CredentialsProvider
	// ResponseHeaderTimeout is how long each attempt waits for the
	// server's answer once the request is sent; 0 means 30s. It applies
	// unless HTTPClient is set.
	ResponseHeaderTimeout time.Duration
}

// Deadlines of each HTTP attempt to S3 (the SDK retries a failed attempt,
// see s3Retryer), so that a server that stops answering cannot hold acco.
// They match those of the cloud APIs (provision/httpretry.DefaultDeadlines).
const (
	s3ConnectTimeout        = 10 * time.Second
	s3TLSHandshakeTimeout   = 10 * time.Second
	s3ResponseHeaderTimeout = 30 * time.Second
	s3AttemptTimeout        = 2 * time.Minute
)

// The retry policy of S3 calls, the same as that of the cloud APIs
// (provision/httpretry, which state may not import): 6 attempts in all,
// a jittered exponential backoff from 500ms capped at 30s, Retry-After
// honoured (capped at 30s), 429, 5xx but 501, and broken or timed-out
// connections retried. No retry budget: a run under a burst of faults
// keeps retrying each call rather than failing them all at once.
const (
	s3Attempts   = 6
	s3MinBackoff = 500 * time.Millisecond
	s3MaxBackoff = 30 * time.Second
)

// s3Retryer returns the SDK retryer that applies acco's retry policy.
func s3Retryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = s3Attempts
		o.MaxBackoff = s3MaxBackoff
		o.Backoff = s3Backoff{}
		o.RateLimiter = ratelimit.None
		o.Retryables = append(o.Retryables, retry.RetryableHTTPStatusCode{Codes: map[int]struct{}{
			http.StatusTooManyRequests: {}, http.StatusInternalServerError: {}, http.StatusBadGateway: {},
			http.StatusServiceUnavailable: {}, http.StatusGatewayTimeout: {},
		}})
	})
}

// s3Backoff waits what the server's Retry-After says, else a jittered
// exponential delay.
type s3Backoff struct{}

// BackoffDelay implements retry.BackoffDelayer.
func (s3Backoff) BackoffDelay(attempt int, err error) (time.Duration, error) {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		if d, ok := parseRetryAfter(re.Response.Header.Get("Retry-After"), time.Now()); ok {
			return min(d, s3MaxBackoff), nil
		}
	}
	d := s3MinBackoff << min(max(attempt-1, 0), 20)
	if d <= 0 || d > s3MaxBackoff {
		d = s3MaxBackoff
	}
	return d/2 + rand.N(d/2+1), nil
}

// parseRetryAfter parses a Retry-After value: delay seconds or an HTTP
// date (relative to now).
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0, false
		}
		return time.Duration(s) * time.Second, true
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(at.Sub(now), 0), true
	}
	return 0, false
}

// s3HTTPClient is the SDK's HTTP client with a deadline on each step of an
// attempt: connect, TLS handshake, response headers, and the whole
// attempt. It remains the SDK's buildable client, so AWS_CA_BUNDLE applies.
func s3HTTPClient(headerTimeout time.Duration) *awshttp.BuildableClient {
	if headerTimeout <= 0 {
		headerTimeout = s3ResponseHeaderTimeout
	}
	connect := min(s3ConnectTimeout, headerTimeout)
	return awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = connect }).
		WithTransportOptions(func(tr *http.Transport) {
			tr.TLSHandshakeTimeout = min(s3TLSHandshakeTimeout, headerTimeout)
			tr.ResponseHeaderTimeout = headerTimeout
		}).
		WithTimeout(max(2*headerTimeout, min(s3AttemptTimeout, 4*headerTimeout)))
}

// S3Blob is a Blob over an S3 bucket, using the server's conditional
// writes (If-None-Match: * and If-Match on PutObject, If-Match on
// DeleteObject).
//
// ETags are returned without quotes and sent without quotes, as OVH
// requires. A 409 ConditionalRequestConflict (a concurrent conditional
// operation) is retried a few times with backoff, then reported as
// ErrPrecondition.
//
// Delete with IfMatch first reads the object and compares its ETag, then
// sends DeleteObject with If-Match. On a server that honours If-Match on
// DeleteObject (OVH documents it, as does AWS) the delete is atomic; on one
// that ignores it (gofakes3) only the read-compare protects it, which
// leaves a short window in which a write between the read and the delete
// is lost. Delete with IfMatchHeld (a lock released by its live lease)
// sends the If-Match without the read.
type S3Blob struct {
	client *s3.Client
	bucket string
	region string
}

var (
	_ Blob         = (*S3Blob)(nil)
	_ Bootstrapper = (*S3Blob)(nil)
)

// Retries of a 409 ConditionalRequestConflict.
const (
	conflictRetries = 4
	conflictBackoff = 50 * time.Millisecond
)

// NewS3Blob returns an S3Blob for cfg. It makes no request. Checksums are
// computed and validated only when an operation requires them, since OVH
// has rejected some of the SDK's default checksum headers
// (x-amz-sdk-checksum-algorithm, streaming trailers): PutObject and the
// other calls send none, and PutBucketVersioning, which requires one, sends
// Content-MD5 rather than x-amz-checksum-crc32.
func NewS3Blob(ctx context.Context, cfg S3Config) (*S3Blob, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("s3 state: no bucket name")
	}
	opts := []func(*config.LoadOptions) error{
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
		// acco does not run with EC2 instance roles; asking the metadata
		// service would only add a slow failure (OpenStack has one too).
		config.WithEC2IMDSClientEnableState(imds.ClientDisabled),
		config.WithRetryer(s3Retryer),
	}
	if cfg.HTTPClient == nil {
		opts = append(opts, config.WithHTTPClient(s3HTTPClient(cfg.ResponseHeaderTimeout)))
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.Credentials != nil {
		opts = append(opts, config.WithCredentialsProvider(cfg.Credentials))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3 state: load AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		return nil, fmt.Errorf("s3 state: no region for bucket %s: add region=REGION to the state URL", cfg.Bucket)
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
		if cfg.HTTPClient != nil {
			// Set here rather than in LoadDefaultConfig, which refuses a
			// plain *http.Client when AWS_CA_BUNDLE is set.
			o.HTTPClient = cfg.HTTPClient
		}
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	return &S3Blob{client: client, bucket: cfg.Bucket, region: awsCfg.Region}, nil
}

// Bucket returns the bucket name.
func (b *S3Blob) Bucket() string { return b.bucket }

// apiError returns the S3 error code and HTTP status of err, when known.
func apiError(err error) (code string, status int) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	var se interface{ HTTPStatusCode() int }
	if errors.As(err, &se) {
		status = se.HTTPStatusCode()
	}
	return code, status
}

func isNotFound(code string, status int) bool {
	return code == "NoSuchKey" || (status == http.StatusNotFound && (code == "" || code == "NotFound"))
}

func isConflict(code string, status int) bool {
	return code == "ConditionalRequestConflict" || (status == http.StatusConflict && code != "BucketAlreadyExists" && code != "BucketAlreadyOwnedByYou")
}

// objectError turns an SDK error on an object operation into one that says
// what happened, wrapping ErrNotFound or ErrPrecondition when it is one,
// and ErrCredentials, with what to do, when the service refused the
// credentials.
func (b *S3Blob) objectError(ctx context.Context, err error) error {
	code, status := apiError(err)
	switch {
	case status == http.StatusForbidden || isCredentialCode(code):
		return b.credentialError(ctx, code, err)
	case code == "PreconditionFailed" || status == http.StatusPreconditionFailed:
		return ErrPrecondition
	case code == "NoSuchBucket":
		return fmt.Errorf("bucket %s does not exist: run acco bootstrap", b.bucket)
	case isNotFound(code, status):
		return ErrNotFound
	}
	var exhausted *retry.MaxAttemptsError
	if errors.As(err, &exhausted) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// ErrUnavailable is wrapped by an S3Blob error when every attempt of a
// call failed for a passing reason (5xx, 429, broken or timed-out
// connections): the same call may well succeed a little later.
var ErrUnavailable = errors.New("state store unavailable")

// Get implements Blob.
func (b *S3Blob) Get(ctx context.Context, key string) ([]byte, string, error) {
	if err := checkKey(key); err != nil {
		return nil, "", fmt.Errorf("get %s: %w", key, err)
	}
	out, err := b.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &b.bucket, Key: &key})
	if err != nil {
		return nil, "", fmt.Errorf("get %s: %w", key, b.objectError(ctx, err))
	}
	defer out.Body.Close()
	data, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, "", fmt.Errorf("get %s: read body: %w", key, err)
	}
	etag := trimETag(aws.ToString(out.ETag))
	if etag == "" {
		return nil, "", fmt.Errorf("get %s: the server sent no ETag", key)
	}
	return data, etag, nil
}

// Put implements Blob.
func (b *S3Blob) Put(ctx context.Context, key string, data []byte, cond Cond) (string, error) {
	etag, err := b.put(ctx, key, data, cond)
	if err != nil {
		return "", fmt.Errorf("put %s (%s): %w", key, cond, err)
	}
	return etag, nil
}

func (b *S3Blob) put(ctx context.Context, key string, data []byte, cond Cond) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	if err := cond.valid(); err != nil {
		return "", err
	}
	in := &s3.PutObjectInput{
		Bucket:        &b.bucket,
		Key:           &key,
		ContentLength: aws.Int64(int64(len(data))),
		ContentType:   aws.String("application/json"),
	}
	match, isMatch := cond.Match()
	switch {
	case cond == IfNoneMatch:
		in.IfNoneMatch = aws.String("*")
	case isMatch:
		in.IfMatch = aws.String(match)
	}
	for attempt := 0; ; attempt++ {
		in.Body = bytes.NewReader(data)
		out, err := b.client.PutObject(ctx, in)
		if err == nil {
			if etag := trimETag(aws.ToString(out.ETag)); etag != "" {
				return etag, nil
			}
			// A single-part upload without SSE-KMS/SSE-C has the MD5 of
			// its content as ETag. If that guess is wrong, the next
			// conditional write fails: safe.
			sum := md5.Sum(data)
			return hex.EncodeToString(sum[:]), nil
		}
		code, status := apiError(err)
		if cond != "" && isConflict(code, status) {
			if attempt < conflictRetries {
				if err := sleepBackoff(ctx, attempt); err != nil {
					return "", err
				}
				continue
			}
			return "", fmt.Errorf("concurrent conditional writes kept conflicting: %w", ErrPrecondition)
		}
		if isMatch && code == "NoSuchKey" {
			// AWS answers If-Match on a missing object with 404.
			return "", fmt.Errorf("object does not exist: %w", ErrPrecondition)
		}
		return "", b.objectError(ctx, err)
	}
}

// sleepBackoff waits before retry attempt+1: exponential with jitter.
func sleepBackoff(ctx context.Context, attempt int) error {
	d := conflictBackoff << attempt
	d += rand.N(d)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Delete implements Blob. See S3Blob for how IfMatch is enforced.
func (b *S3Blob) Delete(ctx context.Context, key string, cond Cond) error {
	if err := b.delete(ctx, key, cond); err != nil {
		return fmt.Errorf("delete %s (%s): %w", key, cond, err)
	}
	return nil
}

func (b *S3Blob) delete(ctx context.Context, key string, cond Cond) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := cond.valid(); err != nil {
		return err
	}
	if cond == IfNoneMatch {
		return errors.New("delete takes no If-None-Match condition")
	}
	in := &s3.DeleteObjectInput{Bucket: &b.bucket, Key: &key}
	if match, ok := cond.Match(); ok && cond.held() {
		in.IfMatch = aws.String(match)
	} else if ok {
		_, cur, err := b.Get(ctx, key)
		switch {
		case errors.Is(err, ErrNotFound):
			return nil
		case err != nil:
			return err
		case cur != match:
			return fmt.Errorf("ETag is %s: %w", cur, ErrPrecondition)
		}
		in.IfMatch = aws.String(match)
	}
	for attempt := 0; ; attempt++ {
		_, err := b.client.DeleteObject(ctx, in)
		if err == nil {
			return nil
		}
		code, status := apiError(err)
		if in.IfMatch != nil && isConflict(code, status) {
			if attempt < conflictRetries {
				if err := sleepBackoff(ctx, attempt); err != nil {
					return err
				}
				continue
			}
			return fmt.Errorf("concurrent conditional operations kept conflicting: %w", ErrPrecondition)
		}
		err = b.objectError(ctx, err)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	}
}

// List implements Blob.
func (b *S3Blob) List(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	p := s3.NewListObjectsV2Paginator(b.client, &s3.ListObjectsV2Input{Bucket: &b.bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, b.objectError(ctx, err))
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys, nil
}

// EnsureBucket makes the bucket ready for acco's state, as acco bootstrap
// does. A missing bucket is created with the marker object MarkerKey. An
// existing bucket is accepted if it has the marker, or is empty (it is then
// adopted and the marker written); a bucket that holds other objects, or
// that belongs to someone else, is refused with an error wrapping
// ErrForeignBucket. Then versioning is turned on unless it already is.
// Running it again on a ready bucket changes nothing and reports so.
func (b *S3Blob) EnsureBucket(ctx context.Context) (BootstrapReport, error) {
	var rep BootstrapReport
	exists, err := b.bucketExists(ctx)
	if err != nil {
		return rep, err
	}
	if !exists {
		created, err := b.createBucket(ctx)
		if err != nil {
			return rep, err
		}
		rep.BucketCreated = created
	}

	switch _, _, err := b.Get(ctx, MarkerKey); {
	case err == nil:
	case !errors.Is(err, ErrNotFound):
		return rep, fmt.Errorf("bootstrap bucket %s: %w", b.bucket, err)
	default:
		if !rep.BucketCreated {
			out, err := b.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &b.bucket, MaxKeys: aws.Int32(1)})
			if err != nil {
				return rep, fmt.Errorf("bootstrap bucket %s: list objects: %w", b.bucket, b.objectError(ctx, err))
			}
			if len(out.Contents) > 0 {
				return rep, fmt.Errorf("bucket %s already holds objects and was not created by acco (no %s): %w; choose another bucket name in environments/defaults.yaml (state.bucket)",
					b.bucket, MarkerKey, ErrForeignBucket)
			}
		}
		switch _, err := b.Put(ctx, MarkerKey, markerBody(time.Now()), IfNoneMatch); {
		case errors.Is(err, ErrPrecondition): // another bootstrap just wrote it
		case err != nil:
			return rep, fmt.Errorf("bootstrap bucket %s: %w", b.bucket, err)
		default:
			rep.MarkerWritten = true
		}
	}

	v, err := b.client.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: &b.bucket})
	if err != nil {
		return rep, fmt.Errorf("bootstrap bucket %s: get versioning: %w", b.bucket, err)
	}
	if v.Status != types.BucketVersioningStatusEnabled {
		_, err := b.client.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{
			Bucket:                  &b.bucket,
			VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled},
		}, contentMD5Instead)
		if err != nil {
			return rep, fmt.Errorf("bootstrap bucket %s: turn versioning on: %w", b.bucket, err)
		}
		rep.VersioningEnabled = true
	}
	return rep, nil
}

// bucketExists reports whether the bucket exists and these credentials may
// use it.
func (b *S3Blob) bucketExists(ctx context.Context) (bool, error) {
	_, err := b.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &b.bucket})
	if err == nil {
		return true, nil
	}
	code, status := apiError(err)
	switch {
	case status == http.StatusNotFound || code == "NoSuchBucket" || code == "NotFound":
		return false, nil
	case status == http.StatusForbidden && !isCredentialCode(code):
		// A HEAD answer has no body, hence no code: ask a call whose
		// answer says whether the credentials themselves are refused.
		if _, lerr := b.client.ListBuckets(ctx, &s3.ListBucketsInput{}); lerr != nil {
			if lcode, _ := apiError(lerr); isCredentialCode(lcode) && lcode != "AccessDenied" {
				return false, b.credentialError(ctx, lcode, lerr)
			}
		}
		return false, fmt.Errorf("bucket %s exists but these credentials may not use it: it belongs to another account (%w; choose another bucket name in environments/defaults.yaml state.bucket), or the S3 credentials (%s, %s) are wrong",
			b.bucket, ErrForeignBucket, accessKeyVar, secretKeyVar)
	case isCredentialCode(code):
		return false, b.credentialError(ctx, code, err)
	}
	return false, fmt.Errorf("bootstrap bucket %s: %w", b.bucket, err)
}

// createBucket creates the bucket; false when it turned out to exist
// already and be ours.
func (b *S3Blob) createBucket(ctx context.Context) (bool, error) {
	in := &s3.CreateBucketInput{Bucket: &b.bucket}
	if b.region != "us-east-1" {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{
			LocationConstraint: types.BucketLocationConstraint(b.region),
		}
	}
	_, err := b.client.CreateBucket(ctx, in)
	if err == nil {
		return true, nil
	}
	switch code, _ := apiError(err); code {
	case "BucketAlreadyOwnedByYou":
		return false, nil
	case "BucketAlreadyExists":
		return false, fmt.Errorf("bucket %s is taken by someone else: %w; choose another bucket name in environments/defaults.yaml (state.bucket)",
			b.bucket, ErrForeignBucket)
	}
	return false, fmt.Errorf("create bucket %s: %w", b.bucket, err)
}

// contentMD5Instead makes an operation for which S3 requires an integrity
// check (PutBucketVersioning) send Content-MD5 rather than the SDK's
// default x-amz-checksum-crc32, a flexible checksum that OVH has refused;
// Content-MD5 is what every S3 service (OVH, AWS, MinIO) accepts there.
// The SDK computes the flexible checksum even with
// RequestChecksumCalculationWhenRequired when the operation requires one,
// so its middleware is removed and smithy's Content-MD5 one added.
func contentMD5Instead(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		// Without the algorithm this sets up, the checksum middleware of
		// the finalize step computes nothing.
		if _, err := stack.Initialize.Remove(checksumSetupID); err != nil {
			return fmt.Errorf("remove the SDK checksum middleware: %w", err)
		}
		return smithyhttp.AddContentChecksumMiddleware(stack)
	})
}

// checksumSetupID is the ID of the SDK middleware that chooses the
// flexible checksum algorithm of a request (service/internal/checksum).
const checksumSetupID = "AWSChecksum:SetupInputContext"

// CheckConditionalWrites implements ConditionalChecker: it writes a probe
// object under ProbePrefix as described there, then removes it with every
// version it left (the bucket keeps versions).
func (b *S3Blob) CheckConditionalWrites(ctx context.Context) error {
	if err := probeConditionalWrites(ctx, b, b.purge); err != nil {
		return fmt.Errorf("bucket %s: %w", b.bucket, err)
	}
	return nil
}

// purge removes key with all its versions and delete markers. When the
// versions cannot be listed or removed, it deletes the current object only.
func (b *S3Blob) purge(ctx context.Context, key string) error {
	out, err := b.client.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: &b.bucket, Prefix: &key})
	if err == nil {
		var errs []error
		del := func(k, version *string) {
			if aws.ToString(k) != key {
				return
			}
			if _, err := b.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &b.bucket, Key: k, VersionId: version}); err != nil {
				errs = append(errs, err)
			}
		}
		for _, v := range out.Versions {
			del(v.Key, v.VersionId)
		}
		for _, m := range out.DeleteMarkers {
			del(m.Key, m.VersionId)
		}
		if len(errs) == 0 {
			return nil
		}
	}
	return b.Delete(ctx, key, "")
}

// maxSinglePut is the largest object one PutObject may write (S3's limit).
const maxSinglePut = 5 << 30

// PutFile implements FileStore: one PutObject streamed from the file, with
// its Content-Length and Content-MD5 (computed by a first pass over the
// file; the server refuses a body that does not match it), and no
// flexible checksum (see NewS3Blob). The body is re-read from the start of
// the file when the SDK retries an attempt (the retry policy of Put).
// Files over 5 GiB, the limit of a single PutObject, are refused.
func (b *S3Blob) PutFile(ctx context.Context, key, path string) (string, error) {
	etag, err := b.putFile(ctx, key, path)
	if err != nil {
		return "", fmt.Errorf("put %s from %s: %w", key, path, err)
	}
	return etag, nil
}

func (b *S3Blob) putFile(ctx context.Context, key, path string) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", path)
	}
	size := fi.Size()
	if size > maxSinglePut {
		return "", fmt.Errorf("the file has %d bytes, more than the 5 GiB one S3 PutObject may write", size)
	}
	h := md5.New()
	n, err := io.Copy(h, ctxReader{ctx, io.NewSectionReader(f, 0, size)})
	if err != nil {
		return "", err
	}
	if n != size {
		return "", fmt.Errorf("the file changed while it was read (%d bytes, then %d)", size, n)
	}
	sum := h.Sum(nil)
	out, err := b.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        &b.bucket,
		Key:           &key,
		ContentLength: aws.Int64(size),
		ContentMD5:    aws.String(base64.StdEncoding.EncodeToString(sum)),
		ContentType:   aws.String("application/octet-stream"),
		// A section reader: seekable, so that a retried attempt sends the
		// body again from its start, and without Close, so that the HTTP
		// transport cannot close the file.
		Body: io.NewSectionReader(f, 0, size),
	})
	if err != nil {
		return "", b.objectError(ctx, err)
	}
	if etag := trimETag(aws.ToString(out.ETag)); etag != "" {
		return etag, nil
	}
	return hex.EncodeToString(sum), nil
}

// GetFile implements FileStore: the object is streamed to a temporary file
// beside path, renamed to path once complete. A transfer broken after the
// answer began (which the SDK does not retry) starts again, up to the
// attempts of the retry policy.
func (b *S3Blob) GetFile(ctx context.Context, key, path string) error {
	if err := checkKey(key); err != nil {
		return fmt.Errorf("get %s: %w", key, err)
	}
	err := writeFileVia(path, func(w io.Writer) error {
		f := w.(*os.File)
		for attempt := 1; ; attempt++ {
			err := b.download(ctx, key, f)
			var be *bodyError
			if err == nil || !errors.As(err, &be) || attempt >= s3Attempts || ctx.Err() != nil {
				return err
			}
			if err := f.Truncate(0); err != nil {
				return err
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return err
			}
			d, _ := s3Backoff{}.BackoffDelay(attempt, err)
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
	})
	if err != nil {
		return fmt.Errorf("get %s into %s: %w", key, path, err)
	}
	return nil
}

// bodyError is a failure while reading an object's content.
type bodyError struct{ err error }

func (e *bodyError) Error() string { return "read content: " + e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

// download copies the object key to w.
func (b *S3Blob) download(ctx context.Context, key string, w io.Writer) error {
	out, err := b.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &b.bucket, Key: &key})
	if err != nil {
		return b.objectError(ctx, err)
	}
	defer out.Body.Close()
	body := &readTracker{r: out.Body}
	n, err := io.Copy(w, body)
	switch {
	case err != nil && ctx.Err() != nil:
		return ctx.Err()
	case err != nil && body.err != nil:
		return &bodyError{err}
	case err != nil:
		return err
	}
	if out.ContentLength != nil && n != *out.ContentLength {
		return &bodyError{fmt.Errorf("%d bytes of %d", n, *out.ContentLength)}
	}
	return nil
}

// readTracker remembers the error of a failed read (EOF excluded), so that
// a broken transfer is told from a failed write.
type readTracker struct {
	r   io.Reader
	err error
}

func (t *readTracker) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF {
		t.err = err
	}
	return n, err
}
