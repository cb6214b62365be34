package provision_test

import (
	"encoding/json"
	"sync"
	"testing"

	"github.com/accoreboot/acco/internal/localcloud"
	"github.com/accoreboot/acco/provision"
	"github.com/accoreboot/acco/state"
)

// The writes of an apply leave the high-water mark behind; every run,
// finished or stopped, raises it to the state it wrote by its end.
func TestApplyRaisesTheMarkByItsEnd(t *testing.T) {
	for _, tc := range []struct {
		name string
		stop bool
	}{{"Finished", false}, {"Stopped", true}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, localcloud.Options{})
			stop := make(chan struct{})
			var once sync.Once
			opts := provision.ApplyOptions{Sealer: h.sealer, Dumps: h.blob, Stop: stop, OnEvent: func(e provision.Event) {
				if tc.stop && e.Type == provision.EventComplete {
					once.Do(func() { close(stop) })
				}
			}}
			rep, err := provision.Apply(t.Context(), h.cl, h.store, h.plan(provision.PlanOptions{}), opts)
			if (err != nil) != tc.stop {
				t.Fatalf("apply: %v", err)
			}
			data, _, err := h.blob.Get(t.Context(), state.MarkKey(h.env.Name))
			if err != nil {
				t.Fatal(err)
			}
			var mark struct{ Serial uint64 }
			if err := json.Unmarshal(data, &mark); err != nil {
				t.Fatal(err)
			}
			st := h.state()
			if mark.Serial != st.Serial || rep.State.Serial != st.Serial || st.Serial < 2 {
				t.Errorf("mark at serial %d, report's state %d, stored state %d; want them equal (and more than one write)", mark.Serial, rep.State.Serial, st.Serial)
			}
		})
	}
}
