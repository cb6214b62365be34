package provision

import (
	"context"
	"errors"
	"strings"

	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/provision/ovhdb"
	"github.com/accoreboot/acco/state"
)

func dbAttrs(cluster, name string) map[string]any {
	return map[string]any{"cluster": spec.Address(spec.KindDatabase, cluster), "name": name}
}

func (p *planner) planDatabaseDBs() {
	seen := map[string]bool{}
	if p.wanted() {
		for _, cluster := range sortedKeys(p.in.Env.Databases) {
			if _, ok := p.dormant[cluster]; ok {
				continue // stopped on demand: its users and databases went with it
			}
			db := p.in.Env.Databases[cluster]
			_, liveID, why := p.clusterOf(cluster)
			for _, name := range db.LogicalDatabases {
				addr := spec.Address(spec.KindDatabaseDB, cluster, name)
				seen[addr] = true
				after := dbAttrs(cluster, name)
				deps := []string{spec.Address(spec.KindDatabase, cluster)}
				if liveID == "" {
					p.add(Change{Address: addr, Action: Create, After: after, Reason: why, DependsOn: deps})
					continue
				}
				r := p.stateOf(addr)
				var have *ovhdb.Database
				adopt := false
				for _, d := range p.in.Observed.Databases[liveID] {
					if r != nil && d.ID == r.ID {
						have = &d
					}
				}
				if have == nil && r != nil {
					p.drift(addr, "database %s deleted outside acco", r.ID)
				}
				if have == nil {
					for _, d := range p.in.Observed.Databases[liveID] {
						if d.Name == name {
							have, adopt = &d, true
						}
					}
				}
				if have == nil {
					p.add(Change{Address: addr, Action: Create, After: after, DependsOn: deps})
					continue
				}
				c := Change{Address: addr, Action: NoOp, ID: have.ID, Before: dbAttrs(cluster, have.Name), After: after, Adopt: adopt, DependsOn: deps}
				if adopt {
					c.Action, c.Reason = Read, "found in the cluster and not in state: adopt it"
				}
				p.add(c)
			}
		}
	}
	p.planChildOrphans(spec.KindDatabaseDB, seen, func(r *state.Resource, liveID string) (map[string]any, bool) {
		for _, d := range p.in.Observed.Databases[liveID] {
			if d.ID == r.ID {
				return dbAttrs(strings.TrimPrefix(attrString(r.Attributes, "cluster"), spec.KindDatabase+"."), d.Name), true
			}
		}
		return nil, false
	})
}

// ensureDB adopts the logical database named NAME or creates it.
func (a *applier) ensureDB(ctx context.Context, c *Change) error {
	clusterID, err := a.clusterID(c.After)
	if err != nil {
		return err
	}
	name := attrString(c.After, "name")
	var dbs []ovhdb.Database
	if err := a.whenReady(ctx, attrString(c.After, "cluster"), clusterID, func() (err error) {
		dbs, err = a.cl.DB.ListDatabases(ctx, clusterID)
		return err
	}); err != nil {
		return err
	}
	id := ""
	for _, d := range dbs {
		if d.Name == name {
			id = d.ID
		}
	}
	if id == "" {
		d, err := a.cl.DB.CreateDatabase(ctx, clusterID, name)
		if err != nil {
			// A create whose answer was lost: find it.
			again, lerr := a.cl.DB.ListDatabases(ctx, clusterID)
			if lerr != nil {
				return err
			}
			for _, x := range again {
				if x.Name == name {
					d = x
				}
			}
			if d.ID == "" {
				return err
			}
		}
		id = d.ID
	}
	return a.rec.finish(ctx, c.Address, &state.Resource{Address: c.Address, Kind: c.Kind, ID: id, Attributes: c.After, DependsOn: c.DependsOn})
}

// deleteDB deletes a logical database; NotFound is done.
func (a *applier) deleteDB(ctx context.Context, c *Change) error {
	clusterID, err := a.clusterID(map[string]any{"cluster": a.childCluster(c)})
	if err == nil {
		if err := a.cl.DB.DeleteDatabase(ctx, clusterID, c.ID); err != nil && !errors.Is(err, ovhdb.ErrNotFound) {
			return err
		}
	}
	return a.rec.finish(ctx, c.Address, nil)
}
