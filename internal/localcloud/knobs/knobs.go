// Package knobs makes the local cloud as slow and flaky as the real one on
// purpose: per-request latency with jitter, injected faults at a seeded
// rate, and a request log in JSON lines that tests and benchmarks read to
// count calls.
package knobs

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fault is a kind of injected failure.
type Fault string

// The faults the local cloud can inject.
const (
	FaultInternal     Fault = "500"           // HTTP 500, request not processed
	FaultUnavailable  Fault = "503"           // HTTP 503, request not processed
	FaultRateLimited  Fault = "429"           // HTTP 429 with Retry-After, request not processed
	FaultDrop         Fault = "drop"          // connection closed before the request is processed
	FaultLostResponse Fault = "lost-response" // request processed, connection closed before the answer
	FaultSlow         Fault = "slow"          // the answer comes SlowBy late
)

// AllFaults lists every fault kind, in the order they are drawn from.
func AllFaults() []Fault {
	return []Fault{FaultInternal, FaultUnavailable, FaultRateLimited, FaultDrop, FaultLostResponse, FaultSlow}
}

// ParseFaults parses a comma-separated list of fault kinds; "" or "all" is every kind.
func ParseFaults(s string) ([]Fault, error) {
	if s == "" || s == "all" {
		return AllFaults(), nil
	}
	known := map[Fault]bool{}
	for _, f := range AllFaults() {
		known[f] = true
	}
	var out []Fault
	for _, part := range strings.Split(s, ",") {
		f := Fault(strings.TrimSpace(part))
		if !known[f] {
			return nil, fmt.Errorf("unknown fault %q: use some of %v", f, AllFaults())
		}
		out = append(out, f)
	}
	return out, nil
}

// Config sets the knobs.
type Config struct {
	Latency    time.Duration // added to every request
	Jitter     time.Duration // up to this much more, uniformly
	FaultRate  float64       // probability in [0,1] that a request gets a fault
	Faults     []Fault       // which faults to draw from (default: all)
	Seed       uint64        // seeds latency jitter and faults, for repeatable runs
	RetryAfter time.Duration // Retry-After of a 429 (default 1s)
	SlowBy     time.Duration // delay of a slow answer (default 2s)
	// Exempt requests never get faults (latency still applies): the local
	// cloud's own status endpoint, for instance.
	Exempt func(*http.Request) bool
}

// Entry is one line of the request log.
type Entry struct {
	Time     time.Time `json:"time"`
	Service  string    `json:"service"`
	Method   string    `json:"method"`
	Path     string    `json:"path"`
	Status   int       `json:"status"`
	Duration float64   `json:"duration_ms"`
	Fault    Fault     `json:"fault,omitempty"`
}

// Log writes request log entries as JSON lines; it is safe for concurrent use.
type Log struct {
	mu sync.Mutex
	w  io.Writer
}

// NewLog returns a log that writes to w (nil discards).
func NewLog(w io.Writer) *Log { return &Log{w: w} }

func (l *Log) write(e Entry) {
	if l == nil || l.w == nil {
		return
	}
	line, err := json.Marshal(e)
	if err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.w.Write(append(line, '\n'))
}

// ReadLog parses a request log.
func ReadLog(r io.Reader) ([]Entry, error) {
	var out []Entry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var e Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("request log: %w", err)
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// Knobs wraps handlers with latency, faults and logging.
type Knobs struct {
	cfg Config
	log *Log
	mu  sync.Mutex
	rng *rand.Rand
}

// New returns knobs for cfg that log to log (which may be nil).
func New(cfg Config, log *Log) (*Knobs, error) {
	if cfg.FaultRate < 0 || cfg.FaultRate > 1 {
		return nil, fmt.Errorf("fault rate %v is not between 0 and 1", cfg.FaultRate)
	}
	if cfg.Latency < 0 || cfg.Jitter < 0 {
		return nil, fmt.Errorf("latency and jitter must not be negative")
	}
	if len(cfg.Faults) == 0 {
		cfg.Faults = AllFaults()
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = time.Second
	}
	if cfg.SlowBy <= 0 {
		cfg.SlowBy = 2 * time.Second
	}
	return &Knobs{cfg: cfg, log: log, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))}, nil
}

// draw picks this request's delay and fault.
func (k *Knobs) draw(exempt bool) (time.Duration, Fault) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delay := k.cfg.Latency
	if k.cfg.Jitter > 0 {
		delay += time.Duration(k.rng.Int64N(int64(k.cfg.Jitter) + 1))
	}
	if exempt || k.cfg.FaultRate == 0 || k.rng.Float64() >= k.cfg.FaultRate {
		return delay, ""
	}
	return delay, k.cfg.Faults[k.rng.IntN(len(k.cfg.Faults))]
}

// Wrap returns next behind the knobs; service names the API in the log.
func (k *Knobs) Wrap(service string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		exempt := k.cfg.Exempt != nil && k.cfg.Exempt(r)
		delay, fault := k.draw(exempt)
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			k.log.write(Entry{Time: start.UTC(), Service: service, Method: r.Method, Path: r.URL.Path, Status: rec.status, Duration: float64(time.Since(start).Microseconds()) / 1000, Fault: fault})
		}()
		if !sleep(r, delay) {
			rec.status = 499
			return
		}
		switch fault {
		case FaultInternal:
			rec.status = http.StatusInternalServerError
			http.Error(w, "injected fault: internal server error", rec.status)
		case FaultUnavailable:
			rec.status = http.StatusServiceUnavailable
			http.Error(w, "injected fault: service unavailable", rec.status)
		case FaultRateLimited:
			rec.status = http.StatusTooManyRequests
			w.Header().Set("Retry-After", strconv.Itoa(int((k.cfg.RetryAfter+time.Second-1)/time.Second)))
			http.Error(w, "injected fault: too many requests", rec.status)
		case FaultDrop:
			rec.status = 0
			drop(w)
		case FaultLostResponse:
			// Let the handler do its work, then lose its answer.
			next.ServeHTTP(&discard{header: http.Header{}}, r)
			rec.status = 0
			drop(w)
		case FaultSlow:
			if !sleep(r, k.cfg.SlowBy) {
				rec.status = 499
				return
			}
			next.ServeHTTP(rec, r)
		default:
			next.ServeHTTP(rec, r)
		}
	})
}

// sleep waits d unless the client goes away first.
func sleep(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

// drop closes the client's connection without an answer.
func drop(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // reset, as a broken connection would
	}
	_ = conn.Close()
}

// recorder remembers the status a handler wrote.
type recorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

// Flush passes flushes through for streaming answers.
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// discard is a ResponseWriter whose answer is lost.
type discard struct{ header http.Header }

func (d *discard) Header() http.Header         { return d.header }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}
