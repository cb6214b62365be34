package provision

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/provision/openstack"
	"github.com/accoreboot/acco/state"
)

// userData is the cloud-init configuration of an instance: its host name.
// The services are configured over SSH afterwards (package configure).
func userData(cloudName string) string {
	return "#cloud-config\npreserve_hostname: false\nhostname: " + cloudName + "\n"
}

// serverAttrs describes a live server in the shape of an instance's
// attributes.
func (p *planner) serverAttrs(s openstack.Server, network string) map[string]any {
	flavor := s.FlavorID
	for _, f := range p.in.Observed.Flavors {
		if f.ID == s.FlavorID {
			flavor = f.Name
		}
	}
	image := s.ImageID
	for _, i := range p.in.Observed.Images {
		if i.ID == s.ImageID {
			image = i.Name
		}
	}
	groups := sortedCopy(s.SecurityGroups)
	return map[string]any{
		"name": s.Name, "flavor": flavor, "flavor_id": s.FlavorID, "image": image, "image_id": s.ImageID,
		"network": network, "keypair": s.KeyName, "security_groups": slices.Compact(groups),
		"status": s.Status, "ipv4": s.IPv4(network), "ipv6": s.IPv6(network),
	}
}

func (p *planner) planInstances() {
	byID := map[string]openstack.Server{}
	for _, s := range p.in.Observed.Servers {
		byID[s.ID] = s
	}
	seen := map[string]bool{}
	if p.wanted() {
		for _, name := range sortedKeys(p.in.Env.Instances) {
			inst := p.in.Env.Instances[name]
			addr := spec.Address(spec.KindInstance, name)
			seen[addr] = true
			cloud := CloudName(p.env, name)
			after, ok := p.resolveInstance(name, inst)
			if !ok {
				continue
			}
			deps := []string{spec.Address(spec.KindKeypair, inst.Keypair)}
			for _, g := range inst.SecurityGroups {
				deps = append(deps, spec.Address(spec.KindSecurityGroup, g))
			}
			r := p.stateOf(addr)
			have, adopt := p.findServer(r, name, byID)
			if have == nil {
				p.add(Change{Address: addr, Action: Create, After: after, DependsOn: deps})
				continue
			}
			before := p.serverAttrs(*have, inst.Network)
			// What the cloud does not show is as acco made it.
			for _, k := range []string{"network_id", "ssh_user"} {
				before[k] = after[k]
			}
			if r != nil && r.ID == have.ID {
				if id := attrString(r.Attributes, "network_id"); id != "" {
					before["network_id"] = id
				}
			}
			c := Change{Address: addr, Action: NoOp, ID: have.ID, Before: before, After: after, Adopt: adopt, DependsOn: deps}
			// An image name that OVH now resolves to a newer image is not a
			// change: the instance keeps the image it was built from.
			if r != nil && attrString(r.Attributes, "image") == inst.Image && attrString(r.Attributes, "image_id") == have.ImageID {
				after["image_id"] = have.ImageID
			}
			if r != nil && r.ID == have.ID {
				if d := compare(r.Attributes, before, "flavor_id", "image_id", "keypair", "security_groups"); len(d) > 0 {
					p.drift(addr, "changed outside acco: %s", describeDiff(d, r.Attributes, before))
				}
			}
			switch diff := compare(after, before, "flavor_id", "image_id", "network", "keypair"); {
			case have.Status == "ERROR":
				c.Action, c.Reason = Replace, "instance is in ERROR"
				if have.Fault != "" {
					c.Reason += ": " + have.Fault
				}
			case r != nil && r.ID == have.ID && r.Status == state.StatusTainted:
				c.Action, c.Reason = Replace, "tainted by a failed creation"
			case len(diff) > 0:
				c.Action, c.Reason = Replace, instanceReason(diff)
			case len(compare(after, before, "security_groups")) > 0:
				c.Action, c.Reason = Update, fmt.Sprintf("security groups %s -> %s: attach and detach in place", show(before["security_groups"]), show(after["security_groups"]))
			case r != nil && r.ID == have.ID && (have.Name != cloud || have.Metadata[MetaEnv] != p.env || have.Metadata[MetaName] != name):
				// Imported under a name of its own (acco import): acco's
				// name and metadata, so that it is found as acco's.
				c.Action, c.Reason = Update, fmt.Sprintf("rename %s to %s and set acco's metadata", show(have.Name), show(cloud))
			case have.Status != "ACTIVE" || have.IPv4(inst.Network) == "" || (r != nil && (attrString(r.Attributes, "ipv4") == "" || attrString(r.Attributes, "ipv4") == Unknown)):
				c.Action, c.Reason = Update, "creation not finished: wait for ACTIVE and its address"
			case adopt:
				c.Action, c.Reason = Read, fmt.Sprintf("found %s in the cloud and not in state: adopt it", cloud)
			}
			p.add(c)
		}
	}
	for _, r := range p.stateKind(spec.KindInstance) {
		if seen[r.Address] {
			continue
		}
		s, ok := byID[r.ID]
		p.orphan(r, p.serverAttrs(s, attrString(r.Attributes, "network")), ok, p.removedReason())
		seen[r.Address] = true
	}
	for _, s := range p.in.Observed.Servers {
		// acco's metadata name the environment and the instance: the
		// whole name must be acco's name for them.
		name := s.Metadata[MetaName]
		addr := spec.Address(spec.KindInstance, name)
		if name != "" && s.Metadata[MetaEnv] == p.env && s.Name == CloudName(p.env, name) && p.sweep(addr, seen) {
			p.add(Change{Address: addr, Action: Delete, ID: s.ID, Before: p.serverAttrs(s, spec.DefaultNetwork), Reason: p.sweepReason()})
		}
	}
}

// instanceReason names the attributes that force a replacement.
func instanceReason(diff []string) string {
	names := map[string]string{"flavor_id": "flavor", "image_id": "image", "network": "network", "keypair": "keypair"}
	var parts []string
	for _, d := range diff {
		parts = append(parts, names[d])
	}
	return strings.Join(parts, ", ") + " changed: cannot update in place"
}

// resolveInstance turns an instance's names into IDs (flavor, image,
// network), failing the plan on a name the cloud does not know.
func (p *planner) resolveInstance(name string, inst *spec.Instance) (map[string]any, bool) {
	o := p.in.Observed
	var flavorID, imageID, networkID string
	var flavors, images []string
	for _, f := range o.Flavors {
		flavors = append(flavors, f.Name)
		if f.Name == inst.Flavor {
			flavorID = f.ID
		}
	}
	for _, i := range o.Images {
		if i.Name == inst.Image && (i.Status == "" || i.Status == "active") && imageID == "" {
			imageID = i.ID
			images = append(images, i.Name)
		} else if i.Status == "" || i.Status == "active" {
			images = append(images, i.Name)
		}
	}
	for _, n := range o.Networks {
		if n.Name == inst.Network {
			networkID = n.ID
		}
	}
	ok := true
	if flavorID == "" {
		p.fail("instances.%s.flavor: the region %s has no flavor %q%s", name, p.in.Env.Region, inst.Flavor, suggest(inst.Flavor, flavors))
		ok = false
	}
	if imageID == "" {
		p.fail("instances.%s.image: the region %s has no active image %q%s", name, p.in.Env.Region, inst.Image, suggest(inst.Image, images))
		ok = false
	}
	if networkID == "" {
		p.fail("instances.%s.network: the project sees no network %q in %s", name, inst.Network, p.in.Env.Region)
		ok = false
	}
	groups := make([]string, 0, len(inst.SecurityGroups))
	for _, g := range inst.SecurityGroups {
		groups = append(groups, CloudName(p.env, g))
	}
	slices.Sort(groups)
	return map[string]any{
		"name": CloudName(p.env, name), "flavor": inst.Flavor, "flavor_id": flavorID, "image": inst.Image, "image_id": imageID,
		"network": inst.Network, "network_id": networkID, "keypair": p.keypairName(inst.Keypair),
		"security_groups": groups, "ssh_user": inst.SSHUser, "ipv4": Unknown, "ipv6": Unknown,
	}, ok
}

// keypairName returns the name in the cloud of the keypair NAME: the one
// state records (Nova cannot rename a keypair, so one imported under a name
// of its own keeps it), else acco's acco-<env>-NAME.
func (p *planner) keypairName(name string) string {
	if r := p.stateOf(spec.Address(spec.KindKeypair, name)); r != nil && r.ID != "" {
		return r.ID
	}
	return CloudName(p.env, name)
}

// suggest lists close names for an error message.
func suggest(bad string, names []string) string {
	var close []string
	lb := strings.ToLower(bad)
	for _, n := range names {
		ln := strings.ToLower(n)
		if strings.Contains(ln, lb) || strings.Contains(lb, ln) || (len(ln) > 1 && len(lb) > 1 && ln[:2] == lb[:2]) {
			close = append(close, n)
		}
	}
	slices.Sort(close)
	close = slices.Compact(close)
	if len(close) == 0 || len(close) > 8 {
		return ""
	}
	return " (did you mean " + strings.Join(close, ", ") + "?)"
}

// findServer looks a server up by the ID in state, then by its name and
// acco's metadata.
func (p *planner) findServer(r *state.Resource, name string, byID map[string]openstack.Server) (*openstack.Server, bool) {
	if r != nil {
		if s, ok := byID[r.ID]; ok && s.Status != "DELETED" {
			return &s, false
		}
		p.drift(r.Address, "instance %s deleted outside acco", r.ID)
	}
	if s := findOwnServer(p.in.Observed.Servers, p.env, name); s != nil {
		return s, true
	}
	return nil, false
}

// findOwnServer returns the server acco made for instance name, if any.
func findOwnServer(servers []openstack.Server, env, name string) *openstack.Server {
	for i, s := range servers {
		if s.Name == CloudName(env, name) && s.Metadata[MetaEnv] == env && s.Metadata[MetaName] == name && s.Status != "DELETED" {
			return &servers[i]
		}
	}
	return nil
}

// createInstance adopts the server acco made for the instance or boots
// it, records its ID at once, then waits for ACTIVE and its address.
func (a *applier) createInstance(ctx context.Context, c *Change) error {
	name := strings.TrimPrefix(c.Address, spec.KindInstance+".")
	servers, err := a.cl.Compute.ListServers(ctx)
	if err != nil {
		return err
	}
	var id string
	if s := findOwnServer(servers, a.env, name); s != nil && s.Status != "ERROR" {
		id = s.ID
	} else {
		s, err := a.cl.Compute.CreateServer(ctx, openstack.ServerSpec{
			Name:           attrString(c.After, "name"),
			FlavorID:       attrString(c.After, "flavor_id"),
			ImageID:        attrString(c.After, "image_id"),
			NetworkID:      attrString(c.After, "network_id"),
			KeyName:        attrString(c.After, "keypair"),
			SecurityGroups: attrStrings(c.After, "security_groups"),
			UserData:       []byte(userData(attrString(c.After, "name"))),
			Metadata:       map[string]string{MetaEnv: a.env, MetaName: name},
		})
		if err != nil {
			return err
		}
		id = s.ID
	}
	attrs := copyAttrs(c.After)
	attrs["ipv4"], attrs["ipv6"], attrs["status"] = "", "", "BUILD"
	// A new server has new host keys: forget the pinned ones, so that
	// configure checks the new keys against the new server's console.
	hostName := strings.TrimPrefix(c.Address, spec.KindInstance+".")
	if err := a.rec.update(ctx, "", func(st *state.State) {
		st.SetResource(state.Resource{Address: c.Address, Kind: c.Kind, ID: id, Attributes: attrs, DependsOn: c.DependsOn})
		delete(st.Hosts, hostName)
	}); err != nil {
		return err
	}
	c2 := *c
	c2.ID = id
	return a.waitInstance(ctx, &c2)
}

// waitInstance waits for a server to be ACTIVE with an address on its
// network, then records its addresses.
func (a *applier) waitInstance(ctx context.Context, c *Change) error {
	network := attrString(c.After, "network")
	poll := a.poller(serverPolls().orFixed(a.opts.PollServer))
	deadline := time.Now().Add(a.opts.serverTimeout())
	for {
		s, found, err := a.servers.get(ctx, c.ID, time.Now())
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("instance %s is no longer in the project (deleted outside acco?): %w; the next plan creates it again", c.ID, openstack.ErrNotFound)
		}
		switch {
		case s.Status == "ERROR":
			r, _ := a.rec.resource(c.Address)
			r.Status = state.StatusTainted
			if err := a.rec.finish(ctx, c.Address, &r); err != nil {
				return err
			}
			return fmt.Errorf("instance %s went into ERROR: %s (the next apply replaces it)", c.ID, s.Fault)
		case s.Status == "ACTIVE" && s.IPv4(network) != "":
			attrs := copyAttrs(c.After)
			attrs["ipv4"], attrs["ipv6"], attrs["status"] = s.IPv4(network), s.IPv6(network), s.Status
			if attrString(attrs, "image_id") == "" {
				attrs["image_id"] = s.ImageID
			}
			return a.rec.finish(ctx, c.Address, &state.Resource{Address: c.Address, Kind: c.Kind, ID: c.ID, Attributes: attrs, DependsOn: c.DependsOn})
		}
		a.rec.setStatus(c.Address, s.Status)
		if time.Now().After(deadline) {
			return fmt.Errorf("instance %s still %s without an address on %s after %s; apply again to keep waiting", c.ID, s.Status, network, a.opts.serverTimeout())
		}
		if err := a.wait(ctx, poll.next()); err != nil {
			return fmt.Errorf("waiting for instance %s to be ACTIVE with an address: %w", c.ID, err)
		}
	}
}

// updateInstance gives an imported server acco's name and metadata,
// attaches the security groups the server lacks, then
// detaches the ones it should not have (so it is never left with none), and
// waits for ACTIVE and its address.
func (a *applier) updateInstance(ctx context.Context, c *Change) error {
	s, err := a.cl.Compute.GetServer(ctx, c.ID)
	if err != nil {
		return err
	}
	// An imported server takes acco's name and metadata.
	name := strings.TrimPrefix(c.Address, spec.KindInstance+".")
	rename := ""
	if want := attrString(c.After, "name"); want != "" && s.Name != want {
		rename = want
	}
	var meta map[string]string
	if s.Metadata[MetaEnv] != a.env || s.Metadata[MetaName] != name {
		meta = map[string]string{MetaEnv: a.env, MetaName: name}
	}
	if rename != "" || meta != nil {
		if err := a.cl.Compute.UpdateServer(ctx, c.ID, rename, meta); err != nil {
			return err
		}
	}
	want := attrStrings(c.After, "security_groups")
	for _, g := range want {
		if !slices.Contains(s.SecurityGroups, g) {
			if err := a.cl.Compute.AddSecurityGroup(ctx, c.ID, g); err != nil {
				return err
			}
		}
	}
	for _, g := range slices.Compact(sortedCopy(s.SecurityGroups)) {
		if !slices.Contains(want, g) {
			if err := a.cl.Compute.RemoveSecurityGroup(ctx, c.ID, g); err != nil {
				return err
			}
		}
	}
	return a.waitInstance(ctx, c)
}

// deleteInstance deletes a server and waits until it is gone; NotFound is
// done.
func (a *applier) deleteInstance(ctx context.Context, c *Change) error {
	if err := a.cl.Compute.DeleteServer(ctx, c.ID); err != nil && !openstack.IsNotFound(err) {
		return err
	}
	poll := a.poller(serverPolls().orFixed(a.opts.PollServer))
	deadline := time.Now().Add(a.opts.serverTimeout())
	for {
		s, found, err := a.servers.get(ctx, c.ID, time.Now())
		if err != nil {
			return err
		}
		if !found || s.Status == "DELETED" {
			break
		}
		a.rec.setStatus(c.Address, s.Status)
		if time.Now().After(deadline) {
			return fmt.Errorf("instance %s still %s after %s; apply again to keep waiting", c.ID, s.Status, a.opts.serverTimeout())
		}
		if err := a.wait(ctx, poll.next()); err != nil {
			return fmt.Errorf("waiting for instance %s to be deleted: %w", c.ID, err)
		}
	}
	// The host is gone: so are its pinned host keys and owed restarts.
	hostName := strings.TrimPrefix(c.Address, spec.KindInstance+".")
	return a.rec.update(ctx, c.Address, func(st *state.State) {
		st.RemoveResource(c.Address)
		delete(st.Hosts, hostName)
		prefix := "host." + hostName + ":"
		st.Pending = slices.DeleteFunc(st.Pending, func(p state.Pending) bool { return strings.HasPrefix(p.Address, prefix) })
	})
}

// copyAttrs returns a shallow copy of attributes.
func copyAttrs(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// errStopped is returned by waits when the operator asked to stop.
var errStopped = errors.New("stopped by the operator before it finished; run apply again to continue")

// wait sleeps d, or returns early when ctx is done or the run is stopped.
func (a *applier) wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-a.opts.Stop:
		return errStopped
	case <-t.C:
		return nil
	}
}
