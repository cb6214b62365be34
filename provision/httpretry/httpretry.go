// Package httpretry holds acco's one retry policy for cloud API calls: an
// http.RoundTripper that retries transient failures (5xx except 501, 429,
// 409, connection resets) with jittered exponential backoff and honours
// Retry-After.
//
// Requests that may change something and are not idempotent (POST, PATCH)
// are retried only when they surely did not reach the server: the
// connection could not be made, or the server answered 429 (rate limited,
// not processed). Any other failure of a POST is returned to the caller,
// which recovers by looking the resource up by its deterministic name
// (adopt) rather than creating it twice.
package httpretry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Transport retries transient failures of the requests it carries. The zero
// value of each field but Base has a usable default. A Transport is safe for
// concurrent use.
type Transport struct {
	// Base carries the requests; nil means http.DefaultTransport.
	Base http.RoundTripper
	// MaxAttempts bounds the attempts per request (default 6).
	MaxAttempts int
	// MinDelay is the first backoff (default 500ms); it doubles per attempt.
	MinDelay time.Duration
	// MaxDelay caps a backoff and a Retry-After wait (default 30s).
	MaxDelay time.Duration
	// Sleep waits d or until ctx is done (default: a timer); tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error
	// SafePOST, if set, says which POSTs may be sent again (requests with
	// no lasting effect, such as asking Keystone for a token); nil means
	// SafePOST, the default list.
	SafePOST func(req *http.Request) bool
	// OnRetry, if set, is told about each retry (for logs).
	OnRetry func(req *http.Request, attempt int, reason string, wait time.Duration)
	// AttemptTimeout bounds each attempt, from sending the request to
	// the end of reading the answer's body; 0 means no bound beyond the
	// request's context and Base's own deadlines.
	AttemptTimeout time.Duration
}

// Deadlines are the per-attempt deadlines of every HTTP call acco makes
// to a cloud API: a server that accepts a connection and never answers
// costs at most Attempts × (Header + backoff), never forever.
type Deadlines struct {
	// Connect bounds the TCP connection and, separately, the TLS handshake.
	Connect time.Duration
	// Header bounds the wait for the answer's headers once the request
	// is sent.
	Header time.Duration
	// Attempt bounds a whole attempt, body included.
	Attempt time.Duration
}

// DefaultDeadlines are the deadlines of a call to OpenStack, OVH or S3.
var DefaultDeadlines = Deadlines{Connect: 10 * time.Second, Header: 30 * time.Second, Attempt: 2 * time.Minute}

// DefaultAttempts is how many times a request is tried before its failure
// is returned (the first try included).
const DefaultAttempts = 6

// WithHeader returns d with the response-header deadline set to h (when h
// is positive); the connect deadline is kept no longer than h and the
// attempt deadline no shorter than 2h. Tests and impatient operators
// shorten every deadline at once this way.
func (d Deadlines) WithHeader(h time.Duration) Deadlines {
	if h <= 0 {
		return d
	}
	d.Header = h
	d.Connect = min(d.Connect, h)
	d.Attempt = max(2*h, min(d.Attempt, 4*h))
	return d
}

// BaseTransport returns an http.Transport (proxies from the environment,
// HTTP/2) with d's connect, TLS handshake and response-header deadlines.
func BaseTransport(d Deadlines) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	dialer := &net.Dialer{Timeout: d.Connect, KeepAlive: 30 * time.Second}
	tr.DialContext = dialer.DialContext
	tr.TLSHandshakeTimeout = d.Connect
	tr.ResponseHeaderTimeout = d.Header
	return tr
}

// ClientWith returns an *http.Client that retries with the default policy
// over a transport with d's deadlines, each attempt bounded by d.Attempt.
func ClientWith(d Deadlines) *http.Client {
	return &http.Client{Transport: &Transport{Base: BaseTransport(d), AttemptTimeout: d.Attempt}}
}

// New returns a Transport over base with the default policy.
func New(base http.RoundTripper) *Transport {
	return &Transport{Base: base}
}

// Client returns an *http.Client whose transport retries over base.
func Client(base http.RoundTripper) *http.Client {
	return &http.Client{Transport: New(base)}
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

func (t *Transport) attempts() int {
	if t.MaxAttempts > 0 {
		return t.MaxAttempts
	}
	return DefaultAttempts
}

func (t *Transport) minDelay() time.Duration {
	if t.MinDelay > 0 {
		return t.MinDelay
	}
	return 500 * time.Millisecond
}

func (t *Transport) maxDelay() time.Duration {
	if t.MaxDelay > 0 {
		return t.MaxDelay
	}
	return 30 * time.Second
}

func (t *Transport) sleep(ctx context.Context, d time.Duration) error {
	if t.Sleep != nil {
		return t.Sleep(ctx, d)
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	// Make the body replayable.
	var body []byte
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		var err error
		body, err = io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	for attempt := 1; ; attempt++ {
		r := req.Clone(ctx)
		switch {
		case body != nil:
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
		case req.GetBody != nil && attempt > 1:
			b, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			r.Body = b
		}
		resp, err := t.attempt(r)
		reason, wait, retry := t.classify(req, resp, err, attempt)
		if !retry || attempt >= t.attempts() || ctx.Err() != nil {
			if err != nil && ctx.Err() == nil && Transient(err) && attempt > 1 {
				err = fmt.Errorf("%w (after %d attempts)", err, attempt)
			}
			return resp, err
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			_ = resp.Body.Close()
		}
		if t.OnRetry != nil {
			t.OnRetry(req, attempt, reason, wait)
		}
		if serr := t.sleep(ctx, wait); serr != nil {
			return nil, serr
		}
	}
}

// attempt sends r once, within AttemptTimeout when set: the deadline
// covers reading the body too, and is released when the body is closed.
func (t *Transport) attempt(r *http.Request) (*http.Response, error) {
	if t.AttemptTimeout <= 0 {
		return t.base().RoundTrip(r)
	}
	ctx, cancel := context.WithTimeoutCause(r.Context(), t.AttemptTimeout,
		fmt.Errorf("%w: no complete answer from %s within %s", errAttemptTimeout, r.URL.Host, t.AttemptTimeout))
	resp, err := t.base().RoundTrip(r.WithContext(ctx))
	if err != nil {
		if ctx.Err() != nil && r.Context().Err() == nil {
			err = context.Cause(ctx)
		}
		cancel()
		return nil, err
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// errAttemptTimeout is the cause of an attempt that ran out of time.
var errAttemptTimeout = attemptTimeout{}

type attemptTimeout struct{}

func (attemptTimeout) Error() string { return "attempt timed out" }

// Timeout marks the error as a net.Error timeout, so it is transient.
func (attemptTimeout) Timeout() bool { return true }

// Temporary implements net.Error.
func (attemptTimeout) Temporary() bool { return true }

// cancelBody releases an attempt's deadline when its body is closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// classify says whether a result is worth retrying, why, and how long to
// wait first.
func (t *Transport) classify(req *http.Request, resp *http.Response, err error, attempt int) (reason string, wait time.Duration, retry bool) {
	safePOST := t.SafePOST
	if safePOST == nil {
		safePOST = SafePOST
	}
	idempotent := Idempotent(req.Method) || safePOST(req)
	backoff := t.backoff(attempt)
	if err != nil {
		// The caller's context ended: stop. (An attempt's own deadline,
		// such as net/http's response-header timeout, also matches
		// context.DeadlineExceeded, and is worth another try.)
		if req.Context().Err() != nil || errors.Is(err, context.Canceled) {
			return "", 0, false
		}
		if NotSent(err) {
			return "connection failed: " + err.Error(), backoff, true
		}
		if idempotent && Transient(err) {
			return "connection error: " + err.Error(), backoff, true
		}
		return "", 0, false
	}
	code := resp.StatusCode
	switch {
	case code == http.StatusTooManyRequests:
		return resp.Status, t.retryAfter(resp, backoff), true
	case !idempotent:
		return "", 0, false
	case code == http.StatusConflict, code >= 500 && code != http.StatusNotImplemented:
		return resp.Status, t.retryAfter(resp, backoff), true
	}
	return "", 0, false
}

// backoff is the jittered exponential delay before attempt+1.
func (t *Transport) backoff(attempt int) time.Duration {
	d := t.minDelay() << min(attempt-1, 20)
	if d <= 0 || d > t.maxDelay() {
		d = t.maxDelay()
	}
	// Full jitter on the upper half: [d/2, d).
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// retryAfter reads the Retry-After header (seconds or an HTTP date), capped
// at MaxDelay; fallback when absent or unreadable.
func (t *Transport) retryAfter(resp *http.Response, fallback time.Duration) time.Duration {
	d, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	if !ok {
		return fallback
	}
	return min(d, t.maxDelay())
}

// ParseRetryAfter parses a Retry-After value: delay seconds or an HTTP date
// (relative to now).
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
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

// SafePOST reports whether a POST may be sent twice: a Keystone token
// request, or an OVH database password reset (a second reset only gives
// another password, and the first one's was lost anyway).
func SafePOST(req *http.Request) bool {
	p := req.URL.Path
	return strings.HasSuffix(p, "/auth/tokens") || strings.HasSuffix(p, "/credentials/reset")
}

// ErrTransient is wrapped by the errors of the API adapters when a failure
// may not happen again (a 5xx, 429 or 409 answer, a broken connection) and
// the operation, written to be idempotent (adopt by name, converge), can be
// run again.
var ErrTransient = errors.New("transient failure")

// TransientStatus reports whether an HTTP status is worth another try.
func TransientStatus(code int) bool {
	return code == http.StatusTooManyRequests || code == http.StatusConflict || (code >= 500 && code != http.StatusNotImplemented)
}

// Idempotent reports whether a request with this method may be sent twice
// without changing the outcome.
func Idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete, "":
		return true
	}
	return false
}

// NotSent reports whether err shows that a request never reached the server:
// the connection could not be made.
func NotSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns) || errors.Is(err, syscall.ECONNREFUSED)
}

// Transient reports whether err is a network failure that may not happen
// again: a reset or closed connection, an unexpected EOF, a timeout.
func Transient(err error) bool {
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
