package flows

import (
	"fmt"

	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/provision"
	"github.com/accoreboot/acco/state"
)

// FromNothing is what deploy's plan says of a host that does not exist
// yet: its configuration is planned once it is there.
const FromNothing = "configured from nothing after create"

// HostFromNothing reports whether deploy configures the services host from
// nothing once the cloud plan p is applied, and why: the host is not in
// the state st (nil when there is none) or has no address there yet, or p
// creates or replaces it. When it returns false the host exists and its
// configuration can be planned now, over SSH.
func HostFromNothing(env *spec.Environment, st *state.State, p *provision.Plan) (bool, string) {
	addr := spec.Address(spec.KindInstance, env.Services.Host)
	if p != nil {
		if c := p.Change(addr); c != nil {
			switch c.Action {
			case provision.Create:
				return true, FromNothing
			case provision.Replace:
				return true, fmt.Sprintf("configured from nothing after %s is replaced", addr)
			case provision.Delete:
				return true, fmt.Sprintf("%s is deleted by this plan", addr)
			}
		}
	}
	if st == nil {
		return true, FromNothing
	}
	r, ok := st.Resource(addr)
	if !ok {
		return true, FromNothing
	}
	if ipv4, _ := r.Attributes["ipv4"].(string); ipv4 == "" || r.Status == state.StatusTainted {
		return true, fmt.Sprintf("configured from nothing after %s is finished", addr)
	}
	return false, ""
}
