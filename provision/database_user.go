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

// secretPassword is the key of a database user's sealed password in state.
const secretPassword = "password"

// ErrNoSealer means a database user's password must be sealed into state
// and no ACCO_STATE_KEY was given. Not retryable: set the key.
var ErrNoSealer = errors.New("a database password must be sealed into state: set ACCO_STATE_KEY")

// clusterOf returns the planned change of a child's cluster and the live
// cluster ID it acts on ("" when the cluster is to be made).
func (p *planner) clusterOf(cluster string) (c *Change, liveID string, reason string) {
	c = p.plan.Change(spec.Address(spec.KindDatabase, cluster))
	if c == nil {
		return nil, "", ""
	}
	switch c.Action {
	case Create:
		return c, "", "the cluster is created"
	case Replace:
		return c, "", "the cluster is replaced"
	case Delete:
		return c, "", ""
	case Update, NoOp, Read:
	}
	return c, c.ID, ""
}

func userAttrs(cluster, name string, roles []string) map[string]any {
	r := sortedCopy(roles)
	if r == nil {
		r = []string{}
	}
	return map[string]any{"cluster": spec.Address(spec.KindDatabase, cluster), "username": name, "roles": r, "password": Sensitive}
}

func (p *planner) planDatabaseUsers() {
	seen := map[string]bool{}
	if p.wanted() {
		for _, cluster := range sortedKeys(p.in.Env.Databases) {
			if _, ok := p.dormant[cluster]; ok {
				continue // stopped on demand: its users and databases went with it
			}
			db := p.in.Env.Databases[cluster]
			_, liveID, why := p.clusterOf(cluster)
			for _, name := range sortedKeys(db.Users) {
				addr := spec.Address(spec.KindDatabaseUser, cluster, name)
				seen[addr] = true
				after := userAttrs(cluster, name, db.Users[name].Roles)
				deps := []string{spec.Address(spec.KindDatabase, cluster)}
				if liveID == "" {
					p.add(Change{Address: addr, Action: Create, After: after, Reason: why, DependsOn: deps})
					continue
				}
				r := p.stateOf(addr)
				var have *ovhdb.User
				adopt := false
				for _, u := range p.in.Observed.Users[liveID] {
					if r != nil && u.ID == r.ID {
						have = &u
						break
					}
				}
				if have == nil && r != nil {
					p.drift(addr, "user %s deleted outside acco", r.ID)
				}
				if have == nil {
					for _, u := range p.in.Observed.Users[liveID] {
						if u.Username == name {
							have, adopt = &u, true
							break
						}
					}
				}
				if have == nil {
					p.add(Change{Address: addr, Action: Create, After: after, DependsOn: deps})
					continue
				}
				if adopt && !p.opts.ResetUnknownUsers && !p.pending(addr) {
					// Not ours as far as state knows, and no interrupted
					// apply of acco was making it: resetting its password
					// would break whatever uses it.
					p.add(Change{Address: addr, Action: NoOp, After: after, DependsOn: deps,
						Reason: "found in the cluster and not in state: left alone"})
					p.laterDrift = append(p.laterDrift, Drift{Address: addr, Message: fmt.Sprintf(
						"user %s (%s) is in the cluster and not in state: acco does not know its password and will not reset it (that would break the services using it until acco configure); adopt it with --reset-unknown-users, or restore the newest state if it was lost", name, have.ID)})
					continue
				}
				before := userAttrs(cluster, have.Username, have.Roles)
				c := Change{Address: addr, Action: NoOp, ID: have.ID, Before: before, After: after, Adopt: adopt, DependsOn: deps}
				switch diff := compare(after, before, "roles"); {
				case adopt:
					c.Action, c.Reason = Update, "found in the cluster and not in state: adopt it and reset its password (OVH shows a password only once)"
				case r != nil && r.Secrets[secretPassword] == "":
					c.Action, c.Reason = Update, "no password in state: reset it"
				case len(diff) > 0:
					c.Action, c.Reason = Update, describeDiff(diff, before, after)
				}
				p.add(c)
			}
		}
	}
	p.planChildOrphans(spec.KindDatabaseUser, seen, func(r *state.Resource, liveID string) (map[string]any, bool) {
		for _, u := range p.in.Observed.Users[liveID] {
			if u.ID == r.ID {
				return userAttrs(strings.TrimPrefix(attrString(r.Attributes, "cluster"), spec.KindDatabase+"."), u.Username, u.Roles), true
			}
		}
		return nil, false
	})
}

// planChildOrphans plans the users or databases in state that the plan no
// longer wants. Those of a cluster that is deleted go with it.
func (p *planner) planChildOrphans(kind string, seen map[string]bool, find func(r *state.Resource, liveID string) (map[string]any, bool)) {
	for _, r := range p.stateKind(kind) {
		if seen[r.Address] {
			continue
		}
		cluster := strings.TrimPrefix(attrString(r.Attributes, "cluster"), spec.KindDatabase+".")
		if _, ok := p.dormant[cluster]; ok && !p.opts.Destroy {
			continue // its cluster is stopped on demand: left as it is
		}
		cc := p.plan.Change(spec.Address(spec.KindDatabase, cluster))
		if cc == nil || cc.ID == "" || cc.Action == Read && cc.Before == nil {
			p.add(Change{Address: r.Address, Kind: kind, Action: Read, ID: r.ID, Reason: "its cluster is gone: forget it"})
			continue
		}
		before, ok := find(r, cc.ID)
		if cc.Action == Delete {
			p.add(Change{Address: r.Address, Kind: kind, Action: Delete, ID: r.ID, Before: before, Reason: "deleted with its cluster"})
			continue
		}
		p.orphan(r, before, ok, p.removedReason())
	}
}

// clusterID returns the live ID of a child's cluster from state, once the
// cluster stage recorded it.
func (a *applier) clusterID(after map[string]any) (string, error) {
	addr := attrString(after, "cluster")
	r, ok := a.rec.resource(addr)
	if !ok || r.ID == "" {
		return "", fmt.Errorf("%s is not in state", addr)
	}
	return r.ID, nil
}

// ensureUser adopts the user named NAME or creates it, seals its password
// (a fresh one for an adopted user: OVH shows a password only once) and
// converges its roles.
func (a *applier) ensureUser(ctx context.Context, c *Change) error {
	if a.opts.Sealer == nil {
		return ErrNoSealer
	}
	clusterID, err := a.clusterID(c.After)
	if err != nil {
		return err
	}
	name := attrString(c.After, "username")
	roles := attrStrings(c.After, "roles")
	r, inState := a.rec.resource(c.Address)
	find := func() (*ovhdb.User, error) {
		users, err := a.cl.DB.ListUsers(ctx, clusterID)
		if err != nil {
			return nil, err
		}
		for _, u := range users {
			if u.Username == name {
				return &u, nil
			}
		}
		return nil, nil
	}
	var u *ovhdb.User
	if err := a.whenReady(ctx, attrString(c.After, "cluster"), clusterID, func() (err error) {
		u, err = find()
		return err
	}); err != nil {
		return err
	}
	var withPassword ovhdb.User
	switch {
	case u != nil && inState && r.ID == u.ID && r.Secrets[secretPassword] != "":
		withPassword = *u // known user with a sealed password: keep it
	case u != nil:
		if withPassword, err = a.cl.DB.ResetPassword(ctx, clusterID, u.ID); err != nil {
			return err
		}
	default:
		withPassword, err = a.cl.DB.CreateUser(ctx, clusterID, name, roles)
		if err != nil {
			// OVH sometimes answers 500 or 409 for a user it did create:
			// find it and reset its password.
			u2, ferr := find()
			if ferr != nil || u2 == nil {
				return err
			}
			if withPassword, err = a.cl.DB.ResetPassword(ctx, clusterID, u2.ID); err != nil {
				return err
			}
		}
	}
	res := state.Resource{Address: c.Address, Kind: c.Kind, ID: withPassword.ID, Attributes: withoutSensitive(c.After), DependsOn: c.DependsOn, Secrets: map[string]string{}}
	if withPassword.Password != "" {
		sealed, err := a.opts.Sealer.Seal(withPassword.Password, c.Address+"/"+secretPassword)
		if err != nil {
			return fmt.Errorf("sealing the password of %s: %w", c.Address, err)
		}
		res.Secrets[secretPassword] = sealed
	} else if inState {
		res.Secrets = r.Secrets
	}
	if err := a.rec.finish(ctx, c.Address, &res); err != nil {
		return err
	}
	ready := withPassword.Status == ovhdb.StatusReady
	if !slices.Equal(sortedCopy(withPassword.Roles), sortedCopy(roles)) && withPassword.Roles != nil {
		if !ready {
			if err := a.waitUser(ctx, clusterID, withPassword.ID); err != nil {
				return err
			}
		}
		if err := a.cl.DB.UpdateUserRoles(ctx, clusterID, withPassword.ID, roles); err != nil {
			return err
		}
		ready = false
	}
	if ready {
		return nil // READY as created, its roles as wanted
	}
	return a.waitUser(ctx, clusterID, withPassword.ID)
}

// waitUser waits until a user is READY.
func (a *applier) waitUser(ctx context.Context, clusterID, id string) error {
	deadline := time.Now().Add(10 * time.Minute)
	poll := a.poller(userPolls().orFixed(a.opts.PollDatabase))
	for {
		u, err := a.cl.DB.GetUser(ctx, clusterID, id)
		switch {
		case errors.Is(err, ovhdb.ErrNotFound): // not listed yet: wait
		case err != nil:
			return err
		case u.Status == ovhdb.StatusReady || u.Status == "":
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("user %s of cluster %s is not READY after 10m", id, clusterID)
		}
		if err := a.wait(ctx, poll.next()); err != nil {
			return err
		}
	}
}

// deleteUser deletes a user; NotFound is done.
func (a *applier) deleteUser(ctx context.Context, c *Change) error {
	clusterID, err := a.clusterID(map[string]any{"cluster": a.childCluster(c)})
	if err == nil {
		if err := a.cl.DB.DeleteUser(ctx, clusterID, c.ID); err != nil && !errors.Is(err, ovhdb.ErrNotFound) {
			return err
		}
	}
	return a.rec.finish(ctx, c.Address, nil)
}

// childCluster returns the cluster address of a user or database change.
func (a *applier) childCluster(c *Change) string {
	for _, m := range []map[string]any{c.After, c.Before} {
		if s := attrString(m, "cluster"); s != "" {
			return s
		}
	}
	if r, ok := a.rec.resource(c.Address); ok {
		return attrString(r.Attributes, "cluster")
	}
	return ""
}

// withoutSensitive drops the placeholders of secrets from attributes.
func withoutSensitive(m map[string]any) map[string]any {
	out := copyAttrs(m)
	for k, v := range out {
		if v == Sensitive {
			delete(out, k)
		}
	}
	return out
}
