package provision

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/provision/openstack"
	"github.com/accoreboot/acco/state"
)

// PublicKeys reads the public key of every keypair of env: the YAML's
// public_key, or the file its public_key_file names.
func PublicKeys(env *spec.Environment) (map[string]string, error) {
	out := map[string]string{}
	for name, kp := range env.Keypairs {
		key := kp.PublicKey
		if key == "" {
			path, err := env.LocalPath(kp.PublicKeyFile)
			if err != nil {
				return nil, fmt.Errorf("keypairs.%s.public_key_file: %w", name, err)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("keypairs.%s.public_key_file: reading the public key: %w", name, err)
			}
			key = string(data)
		}
		key = normalizeKey(key)
		if len(strings.Fields(key)) < 2 {
			return nil, fmt.Errorf("keypairs.%s: %q is not an authorized_keys line (type and base64 key)", name, key)
		}
		out[name] = key
	}
	return out, nil
}

// normalizeKey keeps the type and key of an authorized_keys line: Nova
// keeps the comment, but two keys with different comments are the same key.
func normalizeKey(k string) string {
	f := strings.Fields(k)
	if len(f) > 2 {
		f = f[:2]
	}
	return strings.Join(f, " ")
}

func keypairAttrs(name, key string) map[string]any {
	return map[string]any{"name": name, "public_key": key}
}

func (p *planner) planKeypairs() {
	obs := map[string]openstack.Keypair{}
	for _, k := range p.in.Observed.Keypairs {
		obs[k.Name] = k
	}
	seen := map[string]bool{}
	if p.wanted() {
		for _, name := range sortedKeys(p.in.Env.Keypairs) {
			addr := spec.Address(spec.KindKeypair, name)
			seen[addr] = true
			cloud := CloudName(p.env, name)
			after := keypairAttrs(cloud, p.in.PublicKeys[name])
			r := p.stateOf(addr)
			var have *openstack.Keypair
			adopt := false
			if r != nil {
				if k, ok := obs[r.ID]; ok {
					have = &k
				} else {
					p.drift(addr, "keypair %s deleted outside acco", r.ID)
				}
			}
			if have == nil {
				if k, ok := obs[cloud]; ok {
					have, adopt = &k, r == nil || r.ID != cloud
				}
			}
			if have == nil {
				p.add(Change{Address: addr, Action: Create, After: after})
				continue
			}
			before := keypairAttrs(have.Name, normalizeKey(have.PublicKey))
			c := Change{Address: addr, Action: NoOp, ID: have.Name, Before: before, After: after, Adopt: adopt}
			if diff := compare(after, before, "public_key"); len(diff) > 0 {
				c.Action, c.Reason = Replace, "public key changed: cannot update in place"
			} else if adopt {
				c.Action, c.Reason = Read, fmt.Sprintf("found %s in the cloud and not in state: adopt it", cloud)
			}
			p.add(c)
		}
	}
	for _, r := range p.stateKind(spec.KindKeypair) {
		if seen[r.Address] {
			continue
		}
		k, ok := obs[r.ID]
		p.orphan(r, keypairAttrs(k.Name, normalizeKey(k.PublicKey)), ok, p.removedReason())
		seen[r.Address] = true
	}
	own := p.ownNames(spec.KindKeypair, sortedKeys(p.in.Env.Keypairs))
	for _, k := range p.in.Observed.Keypairs {
		if name, ok := own[k.Name]; ok && p.sweep(spec.Address(spec.KindKeypair, name), seen) {
			p.add(Change{Address: spec.Address(spec.KindKeypair, name), Action: Delete, ID: k.Name, Before: keypairAttrs(k.Name, normalizeKey(k.PublicKey)), Reason: p.sweepReason()})
		}
	}
}

// removedReason is the reason of deleting a resource the plan drops.
func (p *planner) removedReason() string {
	if p.opts.Destroy {
		return "destroy"
	}
	return "no longer in the environment"
}

// sweep reports whether a resource found by acco's name, not wanted and not
// in state, is to be deleted: on destroy, and when an interrupted apply left
// an intent for its address (it may have been created after all).
func (p *planner) sweep(addr string, seen map[string]bool) bool {
	if seen[addr] {
		return false
	}
	if p.opts.Destroy || slices.ContainsFunc(p.st.Pending, func(x state.Pending) bool { return x.Address == addr }) {
		seen[addr] = true
		return true
	}
	return false
}

// sweepReason is the reason of deleting a resource found by sweep.
func (p *planner) sweepReason() string {
	if p.opts.Destroy {
		return "found by acco's name, not in state"
	}
	return "left by an interrupted apply, no longer in the environment"
}

// ownNames returns the names of a kind's resources that this environment
// may find by name in the cloud, by cloud name (acco-<env>-NAME -> NAME):
// the ones its YAML declares and the ones an interrupted apply left an
// intent for. A sweep matches these whole names only, never the prefix
// acco-<env>-: acco-test-eu-main is environment test-eu's database main as
// much as it would be test's eu-main, and nothing on a keypair or an OVH
// database (which carry no tag) says which.
func (p *planner) ownNames(kind string, declared []string) map[string]string {
	out := map[string]string{}
	for _, name := range declared {
		out[CloudName(p.env, name)] = name
	}
	for _, x := range p.st.Pending {
		if name, ok := strings.CutPrefix(x.Address, kind+"."); ok && name != "" && !strings.Contains(name, ".") {
			out[CloudName(p.env, name)] = name
		}
	}
	return out
}

// sortedKeys returns the keys of a map, sorted.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// deleteKeypair deletes a keypair; NotFound is done.
func (a *applier) deleteKeypair(ctx context.Context, c *Change) error {
	if err := a.cl.Compute.DeleteKeypair(ctx, c.ID); err != nil && !openstack.IsNotFound(err) {
		return err
	}
	return a.rec.finish(ctx, c.Address, nil)
}

// createKeypair adopts the keypair named acco-<env>-NAME or imports it.
func (a *applier) createKeypair(ctx context.Context, c *Change) error {
	name, key := attrString(c.After, "name"), attrString(c.After, "public_key")
	existing, err := a.cl.Compute.ListKeypairs(ctx)
	if err != nil {
		return err
	}
	for _, k := range existing {
		if k.Name != name {
			continue
		}
		if normalizeKey(k.PublicKey) == key {
			return a.rec.finish(ctx, c.Address, &state.Resource{Address: c.Address, Kind: c.Kind, ID: k.Name, Attributes: c.After})
		}
		// Same name, another key: a replacement interrupted after the
		// delete was not recorded.
		if err := a.cl.Compute.DeleteKeypair(ctx, k.Name); err != nil && !openstack.IsNotFound(err) {
			return err
		}
	}
	k, err := a.cl.Compute.CreateKeypair(ctx, name, key)
	if err != nil {
		return err
	}
	return a.rec.finish(ctx, c.Address, &state.Resource{Address: c.Address, Kind: c.Kind, ID: k.Name, Attributes: c.After})
}
