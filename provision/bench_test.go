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
