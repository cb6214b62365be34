package provision

import (
	"math/rand/v2"
	"sync"
	"time"
)

// pollStep is one phase of a poll schedule: polls every `every` until the
// wait has lasted `until` (zero: for the rest of the wait).
type pollStep struct {
	until, every time.Duration
}

// pollSchedule spaces the polls of one kind of wait. Intervals are dense
// early, where the local cloud and quick operations finish, and grow to the
// last step's interval, the cap. Each interval is jittered by ±jitter of its
// step's interval and clamped to [floor, cap], so the cap is never exceeded
// and the moment the cloud reports ready is seen at most one cap later.
type pollSchedule struct {
	steps  []pollStep
	jitter float64
}

// serverPolls is the schedule of waits for servers (built, updated or
// deleted): every 250 ms for the first 2 s, 500 ms up to 5 s, then 1 s, so a
// server the cloud reports ready is seen within 1 s.
func serverPolls() pollSchedule {
	return pollSchedule{steps: []pollStep{
		{until: 2 * time.Second, every: 250 * time.Millisecond},
		{until: 5 * time.Second, every: 500 * time.Millisecond},
		{every: time.Second},
	}, jitter: 0.15}
}

// clusterPolls is the schedule of waits for database clusters: every 1 s
// for the first 10 s, then 2 s, so a cluster the cloud reports ready is seen
// within 2 s. OVH creates a cluster in 10 to 40 minutes: a 10-minute create
// costs about 320 GETs (TestPollSchedules logs the count).
func clusterPolls() pollSchedule {
	return pollSchedule{steps: []pollStep{
		{until: 10 * time.Second, every: time.Second},
		{every: 2 * time.Second},
	}, jitter: 0.15}
}

// userPolls is the schedule of waits for database users: as servers.
func userPolls() pollSchedule {
	return serverPolls()
}

// fixedPollSchedule returns a schedule polling every d, jittered below it
// (an ApplyOptions override: d is both the start and the cap).
func fixedPollSchedule(d time.Duration) pollSchedule {
	return pollSchedule{steps: []pollStep{{every: d}}, jitter: 0.15}
}

// orFixed returns s, or fixedPollSchedule(override) when override is set.
func (s pollSchedule) orFixed(override time.Duration) pollSchedule {
	if override > 0 {
		return fixedPollSchedule(override)
	}
	return s
}

// maxInterval is the longest interval of the schedule.
func (s pollSchedule) maxInterval() time.Duration {
	return s.steps[len(s.steps)-1].every
}

// floor is the shortest interval of the schedule: the first step's
// interval less its jitter.
func (s pollSchedule) floor() time.Duration {
	return time.Duration(float64(s.steps[0].every) * (1 - s.jitter))
}

// poller spaces the polls of one wait along a schedule. Its phases follow
// the sum of the intervals it returned, not the clock, so the schedule is
// the same whatever the requests cost. It is used by one goroutine.
type poller struct {
	sched   pollSchedule
	elapsed time.Duration
	rnd     *rand.Rand
}

func newPoller(s pollSchedule, seed1, seed2 uint64) *poller {
	return &poller{sched: s, rnd: rand.New(rand.NewPCG(seed1, seed2))}
}

// next returns the wait before the next poll.
func (p *poller) next() time.Duration {
	step := p.sched.steps[len(p.sched.steps)-1]
	for _, s := range p.sched.steps {
		if s.until > 0 && p.elapsed < s.until {
			step = s
			break
		}
	}
	f := 1 + p.sched.jitter*(2*p.rnd.Float64()-1)
	d := min(max(time.Duration(float64(step.every)*f), p.sched.floor()), p.sched.maxInterval())
	p.elapsed += d
	return d
}

// pollSeeds hands each poller of an apply its own seeds, so concurrent
// waits do not share a random source.
type pollSeeds struct {
	mu  sync.Mutex
	rnd *rand.Rand
}

func newPollSeeds() *pollSeeds {
	return &pollSeeds{rnd: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
}

// poller returns a poller on schedule s with fresh seeds.
func (a *applier) poller(s pollSchedule) *poller {
	a.seeds.mu.Lock()
	s1, s2 := a.seeds.rnd.Uint64(), a.seeds.rnd.Uint64()
	a.seeds.mu.Unlock()
	return newPoller(s, s1, s2)
}
