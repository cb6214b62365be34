package provision_test

import (
	"bytes"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/accoreboot/acco/internal/localcloud"
	"github.com/accoreboot/acco/provision"
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
