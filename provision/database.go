package provision

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/provision/ovhdb"
	"github.com/accoreboot/acco/state"
)

// clusterAttrs describes a live cluster in the shape of a database's
// attributes.
func clusterAttrs(c ovhdb.Cluster) map[string]any {
	ips := make([]string, 0, len(c.IPRestrictions))
	for _, r := range c.IPRestrictions {
		ips = append(ips, r.IP)
	}
	slices.Sort(ips)
	nodes := c.NodeNumber
	if nodes == 0 {
		nodes = len(c.Nodes)
	}
	protect := c.DeletionProtection != nil && *c.DeletionProtection
	m := map[string]any{
		"description": c.Description, "engine": "postgresql", "version": c.Version, "plan": c.Plan, "flavor": c.Flavor,
		"region": c.Region(), "nodes": nodes, "disk_gb": c.Disk.Size, "ip_restrictions": ips, "protect": protect,
		"maintenance_time": c.MaintenanceTime, "status": c.Status,
	}
	if c.Backups != nil {
		m["backup_time"] = c.Backups.Time
	}
	if e, ok := c.Endpoint("postgresql"); ok {
		m["host"] = e.Domain
		if e.Port != nil {
			m["port"] = *e.Port
		}
	}
	return m
}

// normalizeTime writes HH:MM as HH:MM:SS, as OVH does.
func normalizeTime(t string) string {
	if len(t) == 5 {
		return t + ":00"
	}
	return t
}

func (p *planner) planDatabases() {
	byID := map[string]ovhdb.Cluster{}
	for _, c := range p.in.Observed.Clusters {
		if c.Status != ovhdb.StatusDeleting {
			byID[c.ID] = c
		}
	}
	seen := map[string]bool{}
	p.planOnDemand(byID, seen)
	if p.wanted() {
		for _, name := range sortedKeys(p.in.Env.Databases) {
			db := p.in.Env.Databases[name]
			addr := spec.Address(spec.KindDatabase, name)
			if seen[addr] {
				continue // stopped on demand
			}
			seen[addr] = true
			cloud := CloudName(p.env, name)
			after, deps := p.desiredDatabase(name, db)
			r := p.stateOf(addr)
			have, adopt := p.findCluster(r, cloud, byID)
			if have == nil {
				p.add(Change{Address: addr, Action: Create, After: after, DependsOn: deps})
				continue
			}
			before := clusterAttrs(*have)
			after["host"], after["port"] = before["host"], before["port"]
			// The CA clients verify the server against: as observed, else
			// as state has it (a cluster that is not READY shows none).
			ca := p.in.Observed.CACerts[have.ID]
			if ca == "" && r != nil && r.ID == have.ID {
				ca = attrString(r.Attributes, "ca_certificate")
			}
			if ca != "" {
				before["ca_certificate"], after["ca_certificate"] = ca, ca
			}
			// What the cloud does not show is as acco made it.
			for _, k := range []string{"allow_from", "timeout_create", "timeout_update", "timeout_delete"} {
				before[k] = after[k]
			}
			if db.DiskGB == 0 {
				after["disk_gb"] = before["disk_gb"] // the flavor's included storage
			}
			if db.BackupTime == "" {
				after["backup_time"] = before["backup_time"]
			}
			if db.MaintenanceTime == "" {
				after["maintenance_time"] = before["maintenance_time"]
			}
			c := Change{Address: addr, Action: NoOp, ID: have.ID, Before: before, After: after, Adopt: adopt, DependsOn: deps}
			if r != nil && r.ID == have.ID {
				if d := compare(r.Attributes, before, "version", "plan", "flavor", "disk_gb", "ip_restrictions", "protect"); len(d) > 0 {
					p.drift(addr, "changed outside acco: %s", describeDiff(d, r.Attributes, before))
				}
			}
			// The description is the cluster's name: one given in the
			// control panel (acco import) is renamed to acco's.
			keys := []string{"description", "version", "plan", "flavor", "ip_restrictions", "protect"}
			if db.DiskGB > 0 {
				keys = append(keys, "disk_gb")
			}
			if db.BackupTime != "" {
				keys = append(keys, "backup_time")
			}
			if db.MaintenanceTime != "" {
				keys = append(keys, "maintenance_time")
			}
			replace := compare(after, before, "region", "nodes")
			update := compare(after, before, keys...)
			switch {
			case len(replace) > 0:
				c.Action, c.Reason = Replace, strings.Join(replace, ", ")+" changed: cannot update in place"
				if db.Protect || attrBool(before, "protect") {
					p.fail("databases.%s: %s, which replaces (deletes) the protected cluster %s; set protect: false first if you mean it", name, c.Reason, have.ID)
				}
			case have.Status == ovhdb.StatusError:
				c.Action, c.Reason = Replace, "cluster is in ERROR"
			case len(update) == 1 && update[0] == "ip_restrictions" && after["ip_restrictions"] == Unknown:
				c.Action, c.Reason = Update, "the allow-list follows the new address of "+strings.Join(deps, ", ")
			case len(update) > 0:
				c.Action, c.Reason = Update, describeDiff(update, before, after)
			case have.Status != ovhdb.StatusReady:
				c.Action, c.Reason = Update, fmt.Sprintf("cluster is %s: wait for READY", have.Status)
			case adopt:
				c.Action, c.Reason = Read, fmt.Sprintf("found %s in the cloud and not in state: adopt it", cloud)
			case ca != "" && r != nil && attrString(r.Attributes, "ca_certificate") != ca:
				c.Action, c.Reason = Read, "record the cluster's CA certificate in state (acco output needs it)"
			}
			p.add(c)
		}
	}
	for _, r := range p.stateKind(spec.KindDatabase) {
		if seen[r.Address] {
			continue
		}
		seen[r.Address] = true
		c, ok := byID[r.ID]
		name := strings.TrimPrefix(r.Address, spec.KindDatabase+".")
		if ok {
			if db := p.in.Env.Databases[name]; (db != nil && db.Protect) || (db == nil && attrBool(r.Attributes, "protect")) {
				p.fail("database.%s is protected (protect: true): acco will not delete it; set protect: false in the YAML and apply first if you mean it", name)
				continue
			}
		}
		p.orphan(r, clusterAttrs(c), ok, p.removedReason())
	}
	own := p.ownNames(spec.KindDatabase, sortedKeys(p.in.Env.Databases))
	for _, c := range p.in.Observed.Clusters {
		name, ok := own[c.Description]
		addr := spec.Address(spec.KindDatabase, name)
		if ok && c.Status != ovhdb.StatusDeleting && p.sweep(addr, seen) {
			// The YAML decides for a database it declares; for one it no
			// longer does, OVH's deletion protection is what says.
			if db := p.in.Env.Databases[name]; db != nil && db.Protect {
				p.fail("database.%s is protected (protect: true): acco will not delete it", name)
				continue
			} else if db == nil && c.DeletionProtection != nil && *c.DeletionProtection {
				p.fail("database.%s is protected (OVH deletion protection is on for %s, which an interrupted apply left): acco will not delete it; lift the protection in the OVH control panel if you mean it", name, c.Description)
				continue
			}
			p.add(Change{Address: addr, Action: Delete, ID: c.ID, Before: clusterAttrs(c), Reason: p.sweepReason()})
		}
	}
}

// planOnDemand plans the clusters that acco db stop archived (state's
// on_demand records): a dormant one (stopped; or being stopped, outside a
// destroy) is marked seen, so that nothing creates, updates, adopts,
// forgets or sweeps it, and is listed in the plan's Stopped. A cluster
// found in the cloud for a stopped record is left alone and reported. A
// destroy plan lists every record, to say what becomes of its dumps, and
// forgets what state still holds of a stopped cluster.
func (p *planner) planOnDemand(byID map[string]ovhdb.Cluster, seen map[string]bool) {
	for _, name := range sortedKeys(p.st.OnDemand) {
		arch := p.st.OnDemand[name]
		addr := spec.Address(spec.KindDatabase, name)
		_, dormant := p.dormant[name]
		if !dormant && !p.opts.Destroy {
			continue // starting: planned as usual, acco db start re-creates it
		}
		p.plan.Stopped = append(p.plan.Stopped, StoppedDatabase{Address: addr, Status: arch.Status, Since: arch.Since.UTC(),
			Manifest: arch.Manifest, Dumps: len(arch.Dumps), DumpPrefix: state.DumpPrefix(p.env, name), DeleteDumps: p.opts.DeleteDumps})
		if !dormant {
			continue // destroyed like any cluster
		}
		seen[addr] = true
		r := p.stateOf(addr)
		var live *ovhdb.Cluster
		if r != nil {
			if c, ok := byID[r.ID]; ok {
				live = &c
			}
		}
		for _, c := range p.in.Observed.Clusters {
			if live == nil && c.Description == CloudName(p.env, name) && c.Status != ovhdb.StatusDeleting {
				live = &c
			}
		}
		switch {
		case live != nil && arch.Status == state.ArchiveStopped:
			// Drift even where an interrupted apply left an intent: the
			// record says the cluster was deleted after its dumps.
			p.laterDrift = append(p.laterDrift, Drift{Address: addr, Message: fmt.Sprintf(
				"recorded as stopped (on demand) since %s, yet cluster %s (%s) is in the cloud: it was made outside acco db start. acco leaves it alone (the data of the stop is in the dumps under %s): see what it holds, and delete it in the OVH control panel if it is not wanted",
				arch.Since.UTC().Format("2006-01-02 15:04 UTC"), live.Description, live.ID, state.DumpPrefix(p.env, name))})
		case live == nil && r != nil && p.opts.Destroy:
			p.add(Change{Address: addr, Kind: r.Kind, Action: Read, ID: r.ID, Reason: "the cluster is stopped (on demand): forget it"})
		}
	}
}

// attrBool reads a boolean attribute.
func attrBool(m map[string]any, k string) bool {
	b, _ := m[k].(bool)
	return b
}

// desiredDatabase resolves a database's attributes, checking the offer
// against OVH's availability and the allow-list against the instances.
func (p *planner) desiredDatabase(name string, db *spec.Database) (map[string]any, []string) {
	ok := false
	var offered []string
	for _, o := range p.in.Observed.Offers {
		if o.Plan != db.Plan || o.Region != db.Region {
			continue
		}
		offered = append(offered, fmt.Sprintf("%s/%s", o.Version, o.FlavorName()))
		if o.Version == db.Version && o.FlavorName() == db.Flavor {
			if (o.MinNodeNumber > 0 && db.Nodes < o.MinNodeNumber) || (o.MaxNodeNumber > 0 && db.Nodes > o.MaxNodeNumber) {
				p.fail("databases.%s.nodes: plan %s takes %d to %d nodes, not %d", name, db.Plan, o.MinNodeNumber, o.MaxNodeNumber, db.Nodes)
			}
			ok = true
		}
	}
	if !ok {
		slices.Sort(offered)
		list := "nothing"
		if len(offered) > 0 {
			list = "version/flavor " + strings.Join(slices.Compact(offered), ", ")
		}
		p.fail("databases.%s: OVH does not offer PostgreSQL %s on plan %s with flavor %s in %s (it offers %s there)", name, db.Version, db.Plan, db.Flavor, db.Region, list)
	}
	instances, cidrs := db.AllowList()
	var ips []string
	var deps []string
	known := true
	for _, n := range instances {
		iaddr := spec.Address(spec.KindInstance, n)
		deps = append(deps, iaddr)
		c := p.plan.Change(iaddr)
		ip := ""
		if c != nil && c.Action != Create && c.Action != Replace && c.Action != Delete {
			ip = attrString(c.Before, "ipv4")
		}
		if ip == "" {
			known = false
			continue
		}
		ips = append(ips, ip+"/32")
	}
	for _, c := range cidrs {
		ips = append(ips, c.Masked().String())
	}
	slices.Sort(ips)
	after := map[string]any{
		"description": CloudName(p.env, name), "engine": db.Engine, "version": db.Version, "plan": db.Plan, "flavor": db.Flavor,
		"region": db.Region, "nodes": db.Nodes, "disk_gb": db.DiskGB, "protect": db.Protect,
		"allow_from": slices.Clone(db.AllowFrom), "ip_restrictions": slices.Compact(ips),
		"backup_time": normalizeTime(db.BackupTime), "maintenance_time": normalizeTime(db.MaintenanceTime),
		"timeout_create": db.Timeouts.Create.String(), "timeout_update": db.Timeouts.Update.String(), "timeout_delete": db.Timeouts.Delete.String(),
		"host": Unknown, "port": Unknown,
	}
	if !known {
		after["ip_restrictions"] = Unknown
	}
	return after, deps
}

// findCluster looks a cluster up by the ID in state, then by its
// description acco-<env>-NAME.
func (p *planner) findCluster(r *state.Resource, cloud string, byID map[string]ovhdb.Cluster) (*ovhdb.Cluster, bool) {
	if r != nil {
		if c, ok := byID[r.ID]; ok {
			return &c, false
		}
		p.drift(r.Address, "database cluster %s deleted outside acco", r.ID)
	}
	for _, c := range p.in.Observed.Clusters {
		if c.Description == cloud && c.Status != ovhdb.StatusDeleting {
			return &c, true
		}
	}
	return nil, false
}

// resolveIPs computes a database's allow-list from the instances' addresses
// in state, at apply time. With partial, the instances without an address
// yet are left out instead of failing.
func (a *applier) resolveIPs(after map[string]any, partial bool) ([]ovhdb.IPRestriction, error) {
	var out []ovhdb.IPRestriction
	for _, src := range attrStrings(after, "allow_from") {
		if inst, ok := strings.CutPrefix(src, spec.KindInstance+"."); ok {
			r, found := a.rec.resource(spec.Address(spec.KindInstance, inst))
			ip := attrString(r.Attributes, "ipv4")
			if !found || ip == "" || ip == Unknown {
				if partial {
					continue
				}
				return nil, fmt.Errorf("the allow-list names instance.%s, which has no address yet", inst)
			}
			out = append(out, ovhdb.IPRestriction{IP: ip + "/32", Description: src})
			continue
		}
		out = append(out, ovhdb.IPRestriction{IP: src, Description: "acco"})
	}
	slices.SortFunc(out, func(x, y ovhdb.IPRestriction) int { return strings.Compare(x.IP, y.IP) })
	return slices.CompactFunc(out, func(x, y ovhdb.IPRestriction) bool { return x.IP == y.IP }), nil
}

// createDatabase adopts the cluster named acco-<env>-NAME or orders it,
// records its ID at once, then waits for READY and converges the rest.
//
// It does not wait for the instances of its allow-list to be built: the
// cluster is ordered with the addresses known (none, or only the CIDRs, so
// it admits nobody it should not), and once the instances are done and the
// cluster READY, one update sets the full allow-list. A cluster takes
// longer to create than a server to boot, so the two overlap.
func (a *applier) createDatabase(ctx context.Context, c *Change) error {
	desc := attrString(c.After, "description")
	ips, err := a.resolveIPs(c.After, true)
	if err != nil {
		return err
	}
	clusters, err := a.cl.DB.ListClusters(ctx)
	if err != nil {
		return err
	}
	var id string
	for _, cl := range clusters {
		if cl.Description == desc && cl.Status != ovhdb.StatusDeleting && cl.Status != ovhdb.StatusError {
			id = cl.ID
		}
	}
	if id == "" {
		in := ovhdb.ClusterCreate{
			Description: desc, Plan: attrString(c.After, "plan"), Version: attrString(c.After, "version"),
			NodesPattern:   ovhdb.NodesPattern{Flavor: attrString(c.After, "flavor"), Number: attrInt(c.After, "nodes"), Region: attrString(c.After, "region")},
			IPRestrictions: ips, MaintenanceTime: attrString(c.After, "maintenance_time"),
		}
		if d := attrInt(c.After, "disk_gb"); d > 0 {
			in.Disk = &ovhdb.Disk{Size: d}
		}
		if t := attrString(c.After, "backup_time"); t != "" {
			in.Backups = &ovhdb.Backups{Time: t}
		}
		cl, err := a.cl.DB.CreateCluster(ctx, in)
		if err != nil {
			return err
		}
		id = cl.ID
	}
	attrs := copyAttrs(c.After)
	attrs["status"] = ovhdb.StatusCreating
	if err := a.rec.record(ctx, state.Resource{Address: c.Address, Kind: c.Kind, ID: id, Attributes: attrs, DependsOn: c.DependsOn}); err != nil {
		return err
	}
	if err := a.awaitCreated(ctx, instanceDeps(c)); err != nil {
		return err
	}
	c2 := *c
	c2.ID = id
	return a.updateDatabase(ctx, &c2, durationAttr(c.After, "timeout_create", spec.DefaultCreateTimeout))
}

// durationAttr reads a duration attribute, or def.
func durationAttr(m map[string]any, k string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(attrString(m, k)); err == nil && d > 0 {
		return d
	}
	return def
}

// updateDatabase waits for READY, sends what differs from the live cluster
// in one PUT, waits for READY again and records the result.
func (a *applier) updateDatabase(ctx context.Context, c *Change, timeout time.Duration) error {
	if timeout == 0 {
		timeout = durationAttr(c.After, "timeout_update", spec.DefaultUpdateTimeout)
	}
	cl, err := a.waitCluster(ctx, c, timeout)
	if err != nil {
		return err
	}
	ips, err := a.resolveIPs(c.After, false)
	if err != nil {
		return err
	}
	var u ovhdb.ClusterUpdate
	changed := false
	set := func(want, have string, field **string) {
		if want != "" && want != have {
			w := want
			*field, changed = &w, true
		}
	}
	set(attrString(c.After, "description"), cl.Description, &u.Description)
	set(attrString(c.After, "version"), cl.Version, &u.Version)
	set(attrString(c.After, "plan"), cl.Plan, &u.Plan)
	set(attrString(c.After, "flavor"), cl.Flavor, &u.Flavor)
	set(attrString(c.After, "maintenance_time"), cl.MaintenanceTime, &u.MaintenanceTime)
	if d := attrInt(c.After, "disk_gb"); d > 0 && d != cl.Disk.Size {
		u.Disk, changed = &ovhdb.Disk{Size: d}, true
	}
	if t := attrString(c.After, "backup_time"); t != "" && (cl.Backups == nil || cl.Backups.Time != t) {
		b := ovhdb.Backups{Time: t}
		if cl.Backups != nil {
			b.Regions = cl.Backups.Regions
		}
		u.Backups, changed = &b, true
	}
	if !slices.Equal(ipList(ips), ipList(cl.IPRestrictions)) {
		u.IPRestrictions, changed = &ips, true
	}
	if want := attrBool(c.After, "protect"); want != (cl.DeletionProtection != nil && *cl.DeletionProtection) {
		u.DeletionProtection, changed = &want, true
	}
	if changed {
		if err := a.cl.DB.UpdateCluster(ctx, c.ID, u); err != nil {
			return err
		}
		a.rec.setStatus(c.Address, "UPDATING")
		if cl, err = a.waitCluster(ctx, c, timeout); err != nil {
			return err
		}
	}
	attrs := copyAttrs(c.After)
	live := clusterAttrs(cl)
	for _, k := range []string{"ip_restrictions", "host", "port", "status", "disk_gb", "backup_time", "maintenance_time"} {
		attrs[k] = live[k]
	}
	switch ca, err := a.cl.DB.CACertificate(ctx, c.ID); {
	case err == nil:
		attrs["ca_certificate"] = ca
	case !errors.Is(err, ovhdb.ErrNotFound):
		return err
	}
	return a.rec.finish(ctx, c.Address, &state.Resource{Address: c.Address, Kind: c.Kind, ID: c.ID, Attributes: attrs, DependsOn: c.DependsOn})
}

func ipList(rs []ovhdb.IPRestriction) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.IP)
	}
	slices.Sort(out)
	return out
}

// whenReady runs read while checking that the cluster is READY (one round
// trip for both); when it is not, it waits for READY and runs read again.
func (a *applier) whenReady(ctx context.Context, clusterAddr, clusterID string, read func() error) error {
	var cl ovhdb.Cluster
	var clErr, readErr error
	_ = parallel(ctx, 0,
		func(ctx context.Context) error { cl, clErr = a.cl.DB.GetCluster(ctx, clusterID); return nil },
		func(context.Context) error { readErr = read(); return nil },
	)
	if clErr == nil && cl.Status == ovhdb.StatusReady {
		return readErr
	}
	if _, err := a.waitCluster(ctx, &Change{Address: clusterAddr, ID: clusterID}, spec.DefaultUpdateTimeout); err != nil {
		return err
	}
	return read()
}

// waitCluster polls a cluster until READY, showing its status as progress.
func (a *applier) waitCluster(ctx context.Context, c *Change, timeout time.Duration) (ovhdb.Cluster, error) {
	deadline := time.Now().Add(timeout)
	poll := a.poller(clusterPolls().orFixed(a.opts.PollDatabase))
	for {
		cl, err := a.cl.DB.GetCluster(ctx, c.ID)
		if err != nil {
			return cl, err
		}
		a.rec.setStatus(c.Address, cl.Status)
		switch cl.Status {
		case ovhdb.StatusReady:
			return cl, nil
		case ovhdb.StatusError:
			return cl, fmt.Errorf("database cluster %s is in ERROR", c.ID)
		}
		if time.Now().After(deadline) {
			return cl, fmt.Errorf("database cluster %s still %s after %s (OVH takes 10 to 40 minutes; raise timeouts in the YAML and apply again to keep waiting)", c.ID, cl.Status, timeout)
		}
		if err := a.wait(ctx, poll.next()); err != nil {
			return cl, fmt.Errorf("waiting for database cluster %s to be READY: %w", c.ID, err)
		}
	}
}

// deleteDatabase lifts OVH's deletion protection if the YAML no longer asks
// for it, deletes the cluster and waits until it is gone; NotFound is done.
// The cluster's users and databases go with it.
func (a *applier) deleteDatabase(ctx context.Context, c *Change) error {
	cl, err := a.cl.DB.GetCluster(ctx, c.ID)
	switch {
	case errors.Is(err, ovhdb.ErrNotFound):
		return a.forgetCluster(ctx, c.Address)
	case err != nil:
		return err
	}
	if cl.DeletionProtection != nil && *cl.DeletionProtection {
		if _, err := a.waitCluster(ctx, c, spec.DefaultUpdateTimeout); err != nil {
			return err
		}
		off := false
		if err := a.cl.DB.UpdateCluster(ctx, c.ID, ovhdb.ClusterUpdate{DeletionProtection: &off}); err != nil {
			return err
		}
		if _, err := a.waitCluster(ctx, c, spec.DefaultUpdateTimeout); err != nil {
			return err
		}
	}
	if err := a.cl.DB.DeleteCluster(ctx, c.ID); err != nil && !errors.Is(err, ovhdb.ErrNotFound) {
		return err
	}
	timeout := durationAttr(c.Before, "timeout_delete", spec.DefaultDeleteTimeout)
	if r, ok := a.rec.resource(c.Address); ok {
		timeout = durationAttr(r.Attributes, "timeout_delete", timeout)
	}
	deadline := time.Now().Add(timeout)
	poll := a.poller(clusterPolls().orFixed(a.opts.PollDatabase))
	for {
		cl, err := a.cl.DB.GetCluster(ctx, c.ID)
		if errors.Is(err, ovhdb.ErrNotFound) {
			break
		}
		if err != nil {
			return err
		}
		a.rec.setStatus(c.Address, cl.Status)
		if time.Now().After(deadline) {
			return fmt.Errorf("database cluster %s still %s after %s", c.ID, cl.Status, timeout)
		}
		if err := a.wait(ctx, poll.next()); err != nil {
			return fmt.Errorf("waiting for database cluster %s to be deleted: %w", c.ID, err)
		}
	}
	return a.forgetCluster(ctx, c.Address)
}

// forgetCluster removes a cluster, its users and databases, and the admin
// login configure recorded for it from state.
func (a *applier) forgetCluster(ctx context.Context, addr string) error {
	name := strings.TrimPrefix(addr, spec.KindDatabase+".")
	return a.rec.update(ctx, addr, func(st *state.State) {
		st.RemoveResource(addr)
		for _, r := range slices.Clone(st.Resources) {
			if strings.HasPrefix(r.Address, spec.KindDatabaseUser+"."+name+".") || strings.HasPrefix(r.Address, spec.KindDatabaseDB+"."+name+".") ||
				r.Address == spec.KindDatabaseAdmin+"."+name {
				st.RemoveResource(r.Address)
			}
		}
	})
}
