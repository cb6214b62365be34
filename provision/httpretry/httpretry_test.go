package httpretry

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestRetries(t *testing.T) {
	for _, tc := range []struct {
		name      string
		method    string
		statuses  []int // answers in order; the last repeats
		wantCalls int32
		wantCode  int
	}{
		{name: "GET 503 then ok", method: "GET", statuses: []int{503, 503, 200}, wantCalls: 3, wantCode: 200},
		{name: "PUT 409 then ok", method: "PUT", statuses: []int{409, 200}, wantCalls: 2, wantCode: 200},
		{name: "DELETE 500 gives up", method: "DELETE", statuses: []int{500}, wantCalls: 4, wantCode: 500},
		{name: "POST 500 not retried", method: "POST", statuses: []int{500, 200}, wantCalls: 1, wantCode: 500},
		{name: "POST 409 not retried", method: "POST", statuses: []int{409, 200}, wantCalls: 1, wantCode: 409},
		{name: "POST 429 retried", method: "POST", statuses: []int{429, 201}, wantCalls: 2, wantCode: 201},
		{name: "GET 501 not retried", method: "GET", statuses: []int{501, 200}, wantCalls: 1, wantCode: 501},
		{name: "GET 404 not retried", method: "GET", statuses: []int{404, 200}, wantCalls: 1, wantCode: 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := int(calls.Add(1)) - 1
				body, _ := io.ReadAll(r.Body)
				if r.Method != "GET" && r.Method != "DELETE" && string(body) != "payload" {
					t.Errorf("attempt %d body = %q", n+1, body)
				}
				code := tc.statuses[min(n, len(tc.statuses)-1)]
				if code == 429 {
					w.Header().Set("Retry-After", "7")
				}
				w.WriteHeader(code)
			}))
			defer srv.Close()
			var waits []time.Duration
			tr := &Transport{MaxAttempts: 4, Sleep: func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }}
			var body io.Reader
			if tc.method != "GET" && tc.method != "DELETE" {
				body = strings.NewReader("payload")
			}
			req, _ := http.NewRequestWithContext(t.Context(), tc.method, srv.URL, body)
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.wantCode || calls.Load() != tc.wantCalls {
				t.Errorf("got %d after %d calls, want %d after %d", resp.StatusCode, calls.Load(), tc.wantCode, tc.wantCalls)
			}
			for i, w := range waits {
				if tc.statuses[min(i, len(tc.statuses)-1)] == 429 && w != 7*time.Second {
					t.Errorf("wait %d = %s, want Retry-After 7s", i, w)
				}
			}
		})
	}
}

func TestDialFailureRetriedEvenForPOST(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	url := srv.URL
	srv.Close() // nothing listens any more
	attempts := 0
	tr := &Transport{MaxAttempts: 3, Sleep: func(context.Context, time.Duration) error { attempts++; return nil }}
	req, _ := http.NewRequestWithContext(t.Context(), "POST", url, strings.NewReader("x"))
	if _, err := tr.RoundTrip(req); err == nil {
		t.Fatal("no error")
	}
	if attempts != 2 {
		t.Errorf("retried %d times, want 2", attempts)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"3", 3 * time.Second, true},
		{"Thu, 01 Jan 2026 00:00:10 GMT", 10 * time.Second, true},
		{"", 0, false},
		{"soon", 0, false},
		{"-1", 0, false},
	} {
		got, ok := ParseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseRetryAfter(%q) = %v %v, want %v %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// TestDeadlines: a server that never sends its headers, or stops in the
// middle of its body, costs each attempt its deadline and is retried; the
// caller's cancellation stops at once.
func TestDeadlines(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.URL.Path == "/body" {
			w.Header().Set("Content-Length", "100")
			_, _ = w.Write([]byte("partial"))
			w.(http.Flusher).Flush()
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	d := Deadlines{Connect: time.Second, Header: 50 * time.Millisecond, Attempt: 100 * time.Millisecond}
	noSleep := func(ctx context.Context, _ time.Duration) error { return ctx.Err() }
	for _, tc := range []struct {
		name, path string
		cancel     bool
		wantCalls  int32
		wantErr    string
	}{
		{name: "no headers", path: "/headers", wantCalls: 3, wantErr: "timeout awaiting response headers (after 3 attempts)"},
		{name: "body stalls", path: "/body", wantCalls: 1, wantErr: "no complete answer from"},
		{name: "cancelled", path: "/headers", cancel: true, wantCalls: 1, wantErr: "context canceled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls.Store(0)
			tr := &Transport{Base: BaseTransport(d), AttemptTimeout: d.Attempt, MaxAttempts: 3, Sleep: noSleep}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tc.cancel {
				tr.Base = roundTripFunc(func(r *http.Request) (*http.Response, error) {
					cancel()
					return BaseTransport(d).RoundTrip(r)
				})
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+tc.path, nil)
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err == nil {
				// The stalled body fails when read.
				_, err = io.ReadAll(resp.Body)
				_ = resp.Body.Close()
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
			if got := calls.Load(); !tc.cancel && got != tc.wantCalls {
				t.Errorf("%d attempts, want %d", got, tc.wantCalls)
			}
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestWithHeader(t *testing.T) {
	for _, tc := range []struct {
		h    time.Duration
		want Deadlines
	}{
		{0, DefaultDeadlines},
		{-time.Second, DefaultDeadlines},
		{200 * time.Millisecond, Deadlines{Connect: 200 * time.Millisecond, Header: 200 * time.Millisecond, Attempt: 800 * time.Millisecond}},
		{5 * time.Minute, Deadlines{Connect: 10 * time.Second, Header: 5 * time.Minute, Attempt: 10 * time.Minute}},
	} {
		if got := DefaultDeadlines.WithHeader(tc.h); got != tc.want {
			t.Errorf("WithHeader(%s) = %+v, want %+v", tc.h, got, tc.want)
		}
	}
}
