package provision_test

import (
	"bytes"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/accoreboot/acco/internal/localcloud"
	"github.com/accoreboot/acco/internal/localcloud/knobs"
	"github.com/accoreboot/acco/provision"
	"github.com/accoreboot/acco/state"
)

// BenchmarkPlanNoop measures a no-op plan (observe + plan) of the test
// environment and of one with 50 instances, against the local cloud at
// 50 ms latency per request, and reports the API requests per plan.
//
//	go test ./provision -run '^$' -bench PlanNoop -benchtime 5x
func BenchmarkPlanNoop(b *testing.B) {
	for _, n := range []int{1, 50} {
		b.Run(fmt.Sprintf("instances=%d", n), func(b *testing.B) {
			h := newHarness(b, localcloud.Options{Latency: 50 * time.Millisecond})
			app := h.env.Instances["app"]
			for i := 2; i <= n; i++ {
				inst := *app
				h.env.Instances[fmt.Sprintf("app%d", i)] = &inst
			}
			h.apply(h.plan(provision.PlanOptions{}))
			if p := h.plan(provision.PlanOptions{}); p.HasChanges() {
				b.Fatalf("not a no-op: %v", actions(p))
			}
			before := requestsB(b, h)
			b.ResetTimer()
			for b.Loop() {
				h.plan(provision.PlanOptions{})
			}
			b.StopTimer()
			b.ReportMetric(float64(requestsB(b, h)-before)/float64(b.N), "requests/plan")
		})
	}
}

// requestsB counts the requests the local cloud has served.
func requestsB(b *testing.B, h *harness) int {
	b.Helper()
	data, err := os.ReadFile(h.lc.RequestLog())
	if err != nil {
		b.Fatal(err)
	}
	return bytes.Count(data, []byte("\n"))
}

// BenchmarkApplyDefaultPolls measures an apply from nothing of the test
// environment with the default poll schedules, against the local cloud with
// its default delays (server build 2 s, address 1 s, database create 5 s),
// and reports the wall time and the API requests per apply. The critical
// path is the database create (5 s), beside the server build and address
// (3 s); the polls add at most one interval to each.
//
//	go test ./provision -run '^$' -bench ApplyDefaultPolls -benchtime 1x
func BenchmarkApplyDefaultPolls(b *testing.B) {
	var wall time.Duration
	var requests int
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		h := newHarness(b, localcloud.Options{BuildDelay: 2 * time.Second, AddressDelay: time.Second, DBCreateDelay: 5 * time.Second, DBDeleteDelay: 2 * time.Second})
		p := h.plan(provision.PlanOptions{})
		before := requestsB(b, h)
		b.StartTimer()
		start := time.Now()
		if _, err := provision.Apply(b.Context(), h.cl, h.store, p, provision.ApplyOptions{Sealer: h.sealer, Dumps: h.blob}); err != nil {
			b.Fatalf("apply: %v", err)
		}
		wall += time.Since(start)
		b.StopTimer()
		requests += requestsB(b, h) - before
	}
	b.ReportMetric(wall.Seconds()/float64(b.N), "s/apply")
	b.ReportMetric(float64(requests)/float64(b.N), "requests/apply")
}

// BenchmarkApply50 measures an apply from nothing, then a destroy, of the
// test environment with 50 instances, with its state in the local cloud's
// S3 (through the S3 client acco uses), at 50 ms latency per request and the
// local cloud's default delays. It reports the wall time of each, the API
// requests per apply and, among them, the S3 requests (state and mark
// reads and writes).
//
//	go test ./provision -run '^$' -bench Apply50 -benchtime 1x
func BenchmarkApply50(b *testing.B) {
	var wall, destroyWall time.Duration
	var requests, s3requests, destroyS3 int
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		h := newHarness(b, localcloud.Options{Latency: 50 * time.Millisecond, BuildDelay: 2 * time.Second, AddressDelay: time.Second, DBCreateDelay: 5 * time.Second, DBDeleteDelay: 2 * time.Second})
		app := h.env.Instances["app"]
		for i := 2; i <= 50; i++ {
			inst := *app
			h.env.Instances[fmt.Sprintf("app%d", i)] = &inst
		}
		blob, err := state.NewS3Blob(b.Context(), state.S3Config{
			Bucket: localcloud.StateBucket, Region: "gra", Endpoint: h.lc.Info.S3URL, PathStyle: true,
			Credentials: credentials.NewStaticCredentialsProvider(h.lc.Creds.S3AccessKey, h.lc.Creds.S3SecretKey, ""),
		})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := blob.EnsureBucket(b.Context()); err != nil {
			b.Fatal(err)
		}
		h.store, h.blob = state.NewStore(blob), blob
		opts := provision.ApplyOptions{Sealer: h.sealer, Dumps: h.blob}

		p := h.plan(provision.PlanOptions{})
		before, beforeS3 := requestsS3(b, h)
		b.StartTimer()
		start := time.Now()
		if _, err := provision.Apply(b.Context(), h.cl, h.store, p, opts); err != nil {
			b.Fatalf("apply: %v", err)
		}
		wall += time.Since(start)
		b.StopTimer()
		after, afterS3 := requestsS3(b, h)
		requests += after - before
		s3requests += afterS3 - beforeS3

		p = h.plan(provision.PlanOptions{Destroy: true})
		_, beforeS3 = requestsS3(b, h)
		start = time.Now()
		if _, err := provision.Apply(b.Context(), h.cl, h.store, p, opts); err != nil {
			b.Fatalf("destroy: %v", err)
		}
		destroyWall += time.Since(start)
		_, afterS3 = requestsS3(b, h)
		destroyS3 += afterS3 - beforeS3
	}
	n := float64(b.N)
	b.ReportMetric(wall.Seconds()/n, "s/apply")
	b.ReportMetric(float64(requests)/n, "requests/apply")
	b.ReportMetric(float64(s3requests)/n, "S3-requests/apply")
	b.ReportMetric(destroyWall.Seconds()/n, "s/destroy")
	b.ReportMetric(float64(destroyS3)/n, "S3-requests/destroy")
}

// requestsS3 counts the requests the local cloud has served, all and those
// of its S3 service.
func requestsS3(b *testing.B, h *harness) (all, s3 int) {
	b.Helper()
	f, err := os.Open(h.lc.RequestLog())
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	entries, err := knobs.ReadLog(f)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range entries {
		if e.Service == "s3" {
			s3++
		}
	}
	return len(entries), s3
}
