package provision

import (
	"sort"
	"testing"
	"time"
)

// TestPollSchedules checks the poll schedules deterministically, from the
// poll moments a fixed seed gives (no clock involved): every interval lies
// within [floor, cap], and a readiness moment anywhere in the wait is seen
// within the bound (and within earlyBound before earlyUntil).
func TestPollSchedules(t *testing.T) {
	for _, tc := range []struct {
		name        string
		sched       pollSchedule
		cap, floor  time.Duration
		bound       time.Duration
		earlyUntil  time.Duration
		earlyBound  time.Duration
		horizon     time.Duration
		maxRequests int
	}{
		{name: "server", sched: serverPolls(), cap: time.Second, floor: 212 * time.Millisecond, bound: time.Second,
			earlyUntil: 2 * time.Second, earlyBound: 500 * time.Millisecond, horizon: 10 * time.Minute, maxRequests: 640},
		{name: "cluster", sched: clusterPolls(), cap: 2 * time.Second, floor: 850 * time.Millisecond, bound: 2 * time.Second,
			earlyUntil: 10 * time.Second, earlyBound: 1150 * time.Millisecond, horizon: 10 * time.Minute, maxRequests: 330},
		{name: "user", sched: userPolls(), cap: time.Second, floor: 212 * time.Millisecond, bound: time.Second,
			earlyUntil: 2 * time.Second, earlyBound: 500 * time.Millisecond, horizon: 10 * time.Minute, maxRequests: 640},
		{name: "override 10ms", sched: clusterPolls().orFixed(10 * time.Millisecond), cap: 10 * time.Millisecond, floor: 8 * time.Millisecond, bound: 10 * time.Millisecond,
			horizon: time.Minute, maxRequests: 7100},
		{name: "no override", sched: serverPolls().orFixed(0), cap: time.Second, floor: 212 * time.Millisecond, bound: time.Second,
			horizon: time.Minute, maxRequests: 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.sched.maxInterval(); got != tc.cap {
				t.Fatalf("cap %s, want %s", got, tc.cap)
			}
			for seed := uint64(1); seed <= 5; seed++ {
				p := newPoller(tc.sched, seed, 42)
				// The first poll is at 0; polls[i] is the moment of poll i.
				polls := []time.Duration{0}
				for polls[len(polls)-1] < tc.horizon {
					d := p.next()
					if d < tc.floor || d > tc.cap {
						t.Fatalf("seed %d: interval %d is %s, outside [%s, %s]", seed, len(polls), d, tc.floor, tc.cap)
					}
					polls = append(polls, polls[len(polls)-1]+d)
				}
				if tc.name == "cluster" && seed == 1 {
					t.Logf("a 10-minute cluster create: %d GETs", len(polls))
				}
				if len(polls) > tc.maxRequests {
					t.Errorf("seed %d: %d polls over %s, want at most %d", seed, len(polls), tc.horizon, tc.maxRequests)
				}
				for ready := time.Duration(0); ready <= tc.horizon; ready += 7 * time.Millisecond {
					i := sort.Search(len(polls), func(i int) bool { return polls[i] >= ready })
					over := polls[i] - ready
					bound := tc.bound
					if ready < tc.earlyUntil {
						bound = tc.earlyBound
					}
					if over > bound {
						t.Fatalf("seed %d: ready at %s, seen at %s: %s late, want at most %s", seed, ready, polls[i], over, bound)
					}
				}
			}
		})
	}
}

// TestPollerSeeds checks that the same seeds give the same intervals and
// other seeds other intervals.
func TestPollerSeeds(t *testing.T) {
	seq := func(s1, s2 uint64) []time.Duration {
		p := newPoller(clusterPolls(), s1, s2)
		var out []time.Duration
		for range 20 {
			out = append(out, p.next())
		}
		return out
	}
	a, b, c := seq(1, 2), seq(1, 2), seq(3, 4)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("interval %d: %s then %s with the same seeds", i, a[i], b[i])
		}
	}
	same := true
	for i := range a {
		same = same && a[i] == c[i]
	}
	if same {
		t.Fatal("other seeds gave the same intervals")
	}
}
