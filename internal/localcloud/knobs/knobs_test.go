package knobs

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestFaultsAsClientsSeeThem(t *testing.T) {
	tests := []struct {
		fault       Fault
		wantStatus  int  // 0: the client gets no answer
		wantHandled bool // the request reached the handler
	}{
		{FaultInternal, http.StatusInternalServerError, false},
		{FaultUnavailable, http.StatusServiceUnavailable, false},
		{FaultRateLimited, http.StatusTooManyRequests, false},
		{FaultDrop, 0, false},
		{FaultLostResponse, 0, true},
		{FaultSlow, http.StatusOK, true},
	}
	for _, tt := range tests {
		t.Run(string(tt.fault), func(t *testing.T) {
			var handled atomic.Int32
			logged := &signalWriter{wrote: make(chan struct{}, 1)}
			k, err := New(Config{FaultRate: 1, Faults: []Fault{tt.fault}, SlowBy: 1}, NewLog(logged))
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(k.Wrap("compute", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				handled.Add(1)
				io.WriteString(w, "ok")
			})))
			defer srv.Close()
			client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			resp, err := client.Post(srv.URL+"/v2.1/servers", "application/json", nil)
			switch {
			case tt.wantStatus == 0 && err == nil:
				resp.Body.Close()
				t.Fatalf("got status %d, want a broken connection", resp.StatusCode)
			case tt.wantStatus != 0 && err != nil:
				t.Fatalf("got %v, want status %d", err, tt.wantStatus)
			case tt.wantStatus != 0:
				resp.Body.Close()
				if resp.StatusCode != tt.wantStatus {
					t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
				}
				if tt.fault == FaultRateLimited && resp.Header.Get("Retry-After") != "1" {
					t.Errorf("Retry-After %q, want 1", resp.Header.Get("Retry-After"))
				}
			}
			if got := handled.Load() == 1; got != tt.wantHandled {
				t.Errorf("handled = %v, want %v", got, tt.wantHandled)
			}
			// The log line is written when the handler returns, which for a
			// dropped connection may be after the client saw the error.
			select {
			case <-logged.wrote:
			case <-time.After(10 * time.Second):
				t.Fatal("no request log entry")
			}
			entries, err := ReadLog(bytes.NewReader(logged.bytes()))
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 || entries[0].Fault != tt.fault || entries[0].Service != "compute" || entries[0].Path != "/v2.1/servers" || entries[0].Method != "POST" {
				t.Errorf("log = %+v", entries)
			}
		})
	}
}

// signalWriter is a request log destination that tells when it was written.
type signalWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{}
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	select {
	case w.wrote <- struct{}{}:
	default:
	}
	return n, err
}

func (w *signalWriter) bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Clone(w.buf.Bytes())
}

func TestFaultsAreSeededAndAtTheRate(t *testing.T) {
	sequence := func(seed uint64) []Fault {
		k, err := New(Config{FaultRate: 0.2, Seed: seed}, nil)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]Fault, 1000)
		for i := range out {
			_, out[i] = k.draw(false)
		}
		return out
	}
	a, b := sequence(7), sequence(7)
	faults := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, different fault at request %d: %q vs %q", i, a[i], b[i])
		}
		if a[i] != "" {
			faults++
		}
	}
	if faults < 150 || faults > 250 {
		t.Errorf("%d faults in 1000 requests at rate 0.2", faults)
	}
	k, _ := New(Config{FaultRate: 1}, nil)
	if _, f := k.draw(true); f != "" {
		t.Errorf("exempt request got fault %q", f)
	}
}

func TestParseFaults(t *testing.T) {
	if f, err := ParseFaults("500,drop"); err != nil || len(f) != 2 {
		t.Errorf("ParseFaults(500,drop) = %v, %v", f, err)
	}
	if _, err := ParseFaults("500,teapot"); err == nil {
		t.Error("unknown fault accepted")
	}
	if _, err := New(Config{FaultRate: 1.5}, nil); err == nil {
		t.Error("rate 1.5 accepted")
	}
}
