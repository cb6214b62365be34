package provision

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"

	"github.com/accoreboot/acco/provision/openstack"
	"github.com/accoreboot/acco/provision/ovhdb"
)

// Clients are the cloud APIs of one environment.
type Clients struct {
	Compute openstack.Compute
	Network openstack.Network
	Image   openstack.ImageService
	DB      ovhdb.API
}

// Observed is what is live in the environment's project: everything a plan
// compares against, read before planning so that planning does no I/O.
type Observed struct {
	Flavors        []openstack.Flavor
	Images         []openstack.Image
	Networks       []openstack.NetworkInfo
	Keypairs       []openstack.Keypair
	SecurityGroups []openstack.SecurityGroup
	Servers        []openstack.Server
	Offers         []ovhdb.Availability
	Clusters       []ovhdb.Cluster
	// Users and Databases of acco's clusters, by cluster ID.
	Users     map[string][]ovhdb.User
	Databases map[string][]ovhdb.Database
	// CACerts are the PEM CA certificates of acco's READY clusters, by
	// cluster ID (public: what clients verify the server against).
	CACerts map[string]string
}

// Observe reads the project: one list call per resource type, all in
// parallel, then the users and databases of the clusters named acco-<env>-*
// and the CA certificates of those that are READY.
// OVH lists only IDs, so each OVH list is one call for the IDs and then
// reads in parallel: a plan costs about four round trips whatever the number
// of resources.
func Observe(ctx context.Context, cl Clients, env string) (*Observed, error) {
	o := &Observed{Users: map[string][]ovhdb.User{}, Databases: map[string][]ovhdb.Database{}, CACerts: map[string]string{}}
	err := parallel(ctx, 0,
		func(ctx context.Context) (err error) { o.Flavors, err = cl.Compute.ListFlavors(ctx); return },
		func(ctx context.Context) (err error) { o.Images, err = cl.Image.ListImages(ctx); return },
		func(ctx context.Context) (err error) { o.Networks, err = cl.Network.ListNetworks(ctx); return },
		func(ctx context.Context) (err error) { o.Keypairs, err = cl.Compute.ListKeypairs(ctx); return },
		func(ctx context.Context) (err error) {
			o.SecurityGroups, err = cl.Network.ListSecurityGroups(ctx)
			return
		},
		func(ctx context.Context) (err error) { o.Servers, err = cl.Compute.ListServers(ctx); return },
		func(ctx context.Context) (err error) { o.Offers, err = cl.DB.Availability(ctx); return },
		func(ctx context.Context) (err error) { o.Clusters, err = cl.DB.ListClusters(ctx); return },
	)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, c := range o.Clusters {
		if strings.HasPrefix(c.Description, CloudName(env, "")) {
			ids = append(ids, c.ID)
		}
	}
	if err := ObserveClusters(ctx, cl, o, ids...); err != nil {
		return nil, err
	}
	return o, nil
}

// ObserveClusters reads into o the users and databases of the clusters
// with these IDs, and the CA certificates of those that are READY, unless
// o has them already. Observe reads those of the clusters named
// acco-<env>-*; a cluster imported under another name (acco import) is
// read with this, before planning. Unknown and deleting clusters are
// skipped.
func ObserveClusters(ctx context.Context, cl Clients, o *Observed, ids ...string) error {
	if o.Users == nil {
		o.Users = map[string][]ovhdb.User{}
	}
	if o.Databases == nil {
		o.Databases = map[string][]ovhdb.Database{}
	}
	if o.CACerts == nil {
		o.CACerts = map[string]string{}
	}
	var mu sync.Mutex
	var fns []func(context.Context) error
	for _, c := range o.Clusters {
		if !slices.Contains(ids, c.ID) || c.Status == ovhdb.StatusDeleting {
			continue
		}
		if _, done := o.Users[c.ID]; done {
			continue
		}
		id := c.ID
		fns = append(fns, func(ctx context.Context) error {
			users, err := cl.DB.ListUsers(ctx, id)
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			o.Users[id] = users
			return nil
		}, func(ctx context.Context) error {
			dbs, err := cl.DB.ListDatabases(ctx, id)
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			o.Databases[id] = dbs
			return nil
		})
		if c.Status == ovhdb.StatusReady {
			fns = append(fns, func(ctx context.Context) error {
				ca, err := cl.DB.CACertificate(ctx, id)
				if errors.Is(err, ovhdb.ErrNotFound) {
					return nil // none offered: the plan records none
				}
				if err != nil {
					return err
				}
				mu.Lock()
				defer mu.Unlock()
				o.CACerts[id] = ca
				return nil
			})
		}
	}
	return parallel(ctx, 4, fns...)
}

// parallel runs fns with at most limit at a time (0: all at once) and
// returns their errors joined.
func parallel(ctx context.Context, limit int, fns ...func(context.Context) error) error {
	if limit <= 0 {
		limit = len(fns)
	}
	sem := make(chan struct{}, max(limit, 1))
	var wg sync.WaitGroup
	errs := make([]error, len(fns))
	for i, fn := range fns {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = fn(ctx)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
