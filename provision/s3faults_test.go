package provision_test

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/accoreboot/acco/internal/localcloud"
	"github.com/accoreboot/acco/internal/localcloud/knobs"
	"github.com/accoreboot/acco/state"
)

// TestLifecycleUnderFaultsWithS3State runs the lifecycle with its state in
// the local cloud's S3, which gets the same 20 % faults as the cloud APIs,
// through the S3 client and retry policy acco uses (state.NewS3Blob). At
// least 9 seeds in 10 must pass on the first run: state I/O is as patient
// as cloud I/O. Each seed takes about 25 s (the S3 retries wait as long as
// in production); -short runs 3 seeds, which must all pass.
func TestLifecycleUnderFaultsWithS3State(t *testing.T) {
	seeds, mustPass := uint64(10), uint64(9)
	if testing.Short() {
		seeds, mustPass = 3, 3
	}
	faults := slices.DeleteFunc(knobs.AllFaults(), func(f knobs.Fault) bool { return f == knobs.FaultSlow })
	var failed []string
	for seed := uint64(1); seed <= seeds; seed++ {
		h := newHarness(t, localcloud.Options{FaultRate: 0.2, Seed: seed, Faults: faults})
		blob, err := state.NewS3Blob(t.Context(), state.S3Config{
			Bucket: localcloud.StateBucket, Region: "gra", Endpoint: h.lc.Info.S3URL, PathStyle: true,
			Credentials: credentials.NewStaticCredentialsProvider(h.lc.Creds.S3AccessKey, h.lc.Creds.S3SecretKey, ""),
		})
		if err != nil {
			t.Fatal(err)
		}
		// The bucket, as acco bootstrap makes it (retried: setup is
		// not what is measured).
		for attempt := 0; ; attempt++ {
			_, err := blob.EnsureBucket(t.Context())
			if err == nil {
				break
			}
			if attempt == 5 {
				t.Fatalf("seed %d: creating the state bucket: %v", seed, err)
			}
		}
		h.store = state.NewStore(blob)
		rec := &recorder{TB: t}
		h.t = rec
		done := make(chan struct{})
		go func() {
			defer close(done)
			runLifecycle(rec, h)
		}()
		<-done
		if msgs := rec.failures(); len(msgs) > 0 {
			failed = append(failed, fmt.Sprintf("seed %d: %s", seed, strings.Join(msgs, "; ")))
		}
	}
	for _, f := range failed {
		t.Log(f)
	}
	t.Logf("%d of %d seeds passed on the first run (at least %d must)", seeds-uint64(len(failed)), seeds, mustPass)
	if uint64(len(failed)) > seeds-mustPass {
		t.Errorf("%d of %d seeds failed on the first run, want at most %d", len(failed), seeds, seeds-mustPass)
	}
}

// recorder is a testing.TB that records failures instead of failing the
// test, so that a test can count the runs that failed. Fatal ends the
// calling goroutine, as testing's does: run the body in a goroutine of its
// own.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) record(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, msg)
}

func (r *recorder) failures() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

func (r *recorder) Error(args ...any)                 { r.record(fmt.Sprint(args...)) }
func (r *recorder) Errorf(format string, args ...any) { r.record(fmt.Sprintf(format, args...)) }
func (r *recorder) Fail()                             { r.record("failed") }
func (r *recorder) Failed() bool                      { return len(r.failures()) > 0 }
func (r *recorder) FailNow()                          { r.record("failed"); runtime.Goexit() }
func (r *recorder) Fatal(args ...any)                 { r.Error(args...); runtime.Goexit() }
func (r *recorder) Fatalf(format string, args ...any) { r.Errorf(format, args...); runtime.Goexit() }
