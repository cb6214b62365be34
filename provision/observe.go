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
// parallel, and the users, databases and CA certificates of the clusters
// named acco-<env>-* (see observeClusters). OVH lists only IDs, so each
// OVH list is one call for the IDs and then reads in parallel: a plan costs
// about four round trips whatever the number of resources.
func Observe(ctx context.Context, cl Clients, env string) (*Observed, error) {
	return ObserveWith(ctx, cl, env, nil)
}

// DBObservation is a read of the project's database offers and clusters
// under way, started by StartObserveDB before the OpenStack clients are
// connected, for ObserveWith.
type DBObservation struct {
	done chan struct{}
	o    *Observed // Offers, Clusters, Users, Databases and CACerts
	err  error
}

// StartObserveDB starts reading the database part of what Observe reads:
// the offers, the clusters, and the users, databases and CA certificates
// of acco's clusters. It needs no OpenStack connection: a run can start it
// as soon as it holds the lock, while it connects to OpenStack.
func StartObserveDB(ctx context.Context, db ovhdb.API, env string) *DBObservation {
	d := &DBObservation{done: make(chan struct{}), o: newObserved()}
	go func() {
		defer close(d.done)
		d.err = parallel(ctx, 0,
			func(ctx context.Context) (err error) { d.o.Offers, err = db.Availability(ctx); return },
			func(ctx context.Context) error { return observeClusters(ctx, db, env, d.o) },
		)
	}()
	return d
}

func newObserved() *Observed {
	return &Observed{Users: map[string][]ovhdb.User{}, Databases: map[string][]ovhdb.Database{}, CACerts: map[string]string{}}
}

// ObserveWith is Observe with its database part read by db (started with
// StartObserveDB); nil starts it now.
func ObserveWith(ctx context.Context, cl Clients, env string, db *DBObservation) (*Observed, error) {
	if db == nil {
		db = StartObserveDB(ctx, cl.DB, env)
	}
	o := newObserved()
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
	)
	select {
	case <-db.done:
	case <-ctx.Done():
		return nil, errors.Join(err, ctx.Err())
	}
	if err := errors.Join(err, db.err); err != nil {
		return nil, err
	}
	o.Offers, o.Clusters = db.o.Offers, db.o.Clusters
	o.Users, o.Databases, o.CACerts = db.o.Users, db.o.Databases, db.o.CACerts
	return o, nil
}

// speculateClusters is the most clusters a project may have for Observe to
// read every cluster's users, databases and CA at the same time as the
// cluster itself.
const speculateClusters = 4

// clusterReads is what Observe read of one cluster.
type clusterReads struct {
	cluster          ovhdb.Cluster
	found            bool
	read             bool // users, databases and CA were read
	users            []ovhdb.User
	dbs              []ovhdb.Database
	ca               string
	usersErr, dbsErr error
	caErr            error
}

// observeClusters reads the project's clusters into o, and the users,
// databases and CA certificate (of a READY one) of acco's clusters: those
// named acco-<env>-* and not being deleted. When the project has at most
// speculateClusters clusters, the reads of their users, databases and CA
// start with the read of the cluster, before its name says whether it is
// acco's: a plan costs one round trip less, and what is not acco's is
// dropped unseen. With more clusters, they follow the cluster reads.
func observeClusters(ctx context.Context, db ovhdb.API, env string, o *Observed) error {
	ids, err := db.ClusterIDs(ctx)
	if err != nil {
		return err
	}
	reads := make([]clusterReads, len(ids))
	speculate := len(ids) <= speculateClusters
	var fns []func(context.Context) error
	for i, id := range ids {
		r := &reads[i]
		fns = append(fns, func(ctx context.Context) error {
			c, err := db.GetCluster(ctx, id)
			switch {
			case errors.Is(err, ovhdb.ErrNotFound): // deleted since the list
				return nil
			case err != nil:
				return err
			}
			r.cluster, r.found = c, true
			return nil
		})
		if speculate {
			fns = append(fns, r.children(db, id)...)
		}
	}
	if err := parallel(ctx, 0, fns...); err != nil {
		return err
	}
	own := func(c ovhdb.Cluster) bool {
		return strings.HasPrefix(c.Description, CloudName(env, "")) && c.Status != ovhdb.StatusDeleting
	}
	fns = nil
	for i, id := range ids {
		if r := &reads[i]; r.found && own(r.cluster) && !r.read {
			fns = append(fns, r.children(db, id)...)
		}
	}
	if err := parallel(ctx, 0, fns...); err != nil {
		return err
	}
	for _, r := range reads {
		if !r.found {
			continue
		}
		o.Clusters = append(o.Clusters, r.cluster)
		if !own(r.cluster) {
			continue
		}
		if err := r.record(o); err != nil {
			return err
		}
	}
	return nil
}

// children returns the calls that read the users, databases and CA of
// cluster id into r.
func (r *clusterReads) children(db ovhdb.API, id string) []func(context.Context) error {
	r.read = true
	return []func(context.Context) error{
		func(ctx context.Context) error { r.users, r.usersErr = db.ListUsers(ctx, id); return nil },
		func(ctx context.Context) error { r.dbs, r.dbsErr = db.ListDatabases(ctx, id); return nil },
		func(ctx context.Context) error { r.ca, r.caErr = db.CACertificate(ctx, id); return nil },
	}
}

// record puts what children read of r's cluster into o: its users and
// databases, and its CA certificate when the cluster is READY (a CA read of
// a cluster not READY says nothing; none offered records none).
func (r *clusterReads) record(o *Observed) error {
	id := r.cluster.ID
	if err := errors.Join(r.usersErr, r.dbsErr); err != nil {
		return err
	}
	o.Users[id], o.Databases[id] = r.users, r.dbs
	if r.cluster.Status != ovhdb.StatusReady {
		return nil
	}
	switch {
	case r.caErr == nil:
		o.CACerts[id] = r.ca
	case !errors.Is(r.caErr, ovhdb.ErrNotFound):
		return r.caErr
	}
	return nil
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
	var reads []*clusterReads
	var fns []func(context.Context) error
	for _, c := range o.Clusters {
		if !slices.Contains(ids, c.ID) || c.Status == ovhdb.StatusDeleting {
			continue
		}
		if _, done := o.Users[c.ID]; done {
			continue
		}
		r := &clusterReads{cluster: c, found: true}
		reads = append(reads, r)
		fns = append(fns, r.children(cl.DB, c.ID)...)
	}
	if err := parallel(ctx, 0, fns...); err != nil {
		return err
	}
	for _, r := range reads {
		if err := r.record(o); err != nil {
			return err
		}
	}
	return nil
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
