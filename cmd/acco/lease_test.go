package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/accoreboot/acco/state"
)

// lockedBuffer is a bytes.Buffer safe for the goroutines that write the
// run's messages.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestLockEnvStopsBeforeLeaseExpires: when S3 stops answering while a run
// holds the lock, the run's context is cancelled (so no new cloud
// operation starts) before the lease expires and someone else may take the
// lock, and the error says the lease was lost and what to do.
func TestLockEnvStopsBeforeLeaseExpires(t *testing.T) {
	ctx := t.Context()
	var hung atomic.Bool
	unblock := make(chan struct{})
	fake := gofakes3.New(s3mem.New()).Server()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hung.Load() {
			select {
			case <-r.Context().Done():
			case <-unblock:
			}
			return
		}
		fake.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(unblock) })
	blob, err := state.NewS3Blob(ctx, state.S3Config{
		Bucket: "acco-state", Region: "gra", Endpoint: srv.URL, PathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("acco-test", "acco-test-secret", ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := blob.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}

	stderr := &lockedBuffer{}
	a := &app{
		streams:   streams{in: strings.NewReader(""), out: &bytes.Buffer{}, err: stderr},
		lookupEnv: func(string) (string, bool) { return "", false },
		leaseTTL:  3 * time.Second, // renewed every second
	}
	runCtx, release, err := a.lockEnv(ctx, blob, "test", "apply", 0)
	if err != nil {
		t.Fatal(err)
	}
	info, err := state.NewLocker(blob).Status(ctx, "test")
	if err != nil || info == nil {
		t.Fatalf("lock status: %+v, %v", info, err)
	}
	hung.Store(true)

	select {
	case <-runCtx.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the run's context was not cancelled while S3 hangs")
	}
	if now := time.Now(); !now.Before(info.Expires) {
		t.Errorf("the run was stopped at %s, after its lease expired (%s)", now.Format(time.RFC3339Nano), info.Expires.Format(time.RFC3339Nano))
	}
	if cause := context.Cause(runCtx); !errors.Is(cause, state.ErrLockLost) {
		t.Errorf("cause = %v, want ErrLockLost", cause)
	}
	hung.Store(false)
	release()

	// The run fails with what its cancellation caused; the error shown is
	// the lost lease, with what to do.
	code := a.finish(fmt.Errorf("reading what is live in test: %w", runCtx.Err()))
	out := stderr.String()
	if code != exitError {
		t.Errorf("exit code %d, want %d", code, exitError)
	}
	for _, want := range []string{
		"Lost the lock of test",
		"Error: the lease of the state lock of test was lost: could not renew",
		"Hint: acco lock status test",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "interrupted") {
		t.Errorf("the lost lease is reported as an interruption:\n%s", out)
	}
}
