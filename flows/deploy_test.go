package flows

import (
	"testing"

	"github.com/accoreboot/acco/provision"
	"github.com/accoreboot/acco/state"
)

// TestHostFromNothing: deploy plans the host over SSH only when the host
// exists in state, has an address and the cloud plan keeps it.
func TestHostFromNothing(t *testing.T) {
	env := loadEnv(t, "local")
	addr := "instance." + env.Services.Host
	withHost := func(status, ipv4 string) *state.State {
		st := &state.State{Env: env.Name}
		attrs := map[string]any{}
		if ipv4 != "" {
			attrs["ipv4"] = ipv4
		}
		st.SetResource(state.Resource{Address: addr, Kind: "instance", Status: status, Attributes: attrs})
		return st
	}
	planWith := func(a provision.Action) *provision.Plan {
		return &provision.Plan{Env: env.Name, Changes: []provision.Change{{Address: addr, Kind: "instance", Action: a}}}
	}
	for _, tc := range []struct {
		name   string
		st     *state.State
		plan   *provision.Plan
		want   bool
		reason string
	}{
		{"no state", nil, planWith(provision.Create), true, FromNothing},
		{"no state, no plan", nil, nil, true, FromNothing},
		{"not in state", &state.State{Env: env.Name}, &provision.Plan{Env: env.Name}, true, FromNothing},
		{"created by the plan", withHost("", "198.51.100.7"), planWith(provision.Create), true, FromNothing},
		{"replaced", withHost("", "198.51.100.7"), planWith(provision.Replace), true, "configured from nothing after " + addr + " is replaced"},
		{"no address yet", withHost("", ""), planWith(provision.NoOp), true, "configured from nothing after " + addr + " is finished"},
		{"tainted", withHost(state.StatusTainted, "198.51.100.7"), nil, true, "configured from nothing after " + addr + " is finished"},
		{"kept", withHost("", "198.51.100.7"), planWith(provision.NoOp), false, ""},
		{"updated in place", withHost("", "198.51.100.7"), planWith(provision.Update), false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, reason := HostFromNothing(env, tc.st, tc.plan)
			if got != tc.want || reason != tc.reason {
				t.Errorf("HostFromNothing = %v, %q; want %v, %q", got, reason, tc.want, tc.reason)
			}
		})
	}
}
