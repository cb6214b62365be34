package provision

import (
	"context"

	"github.com/accoreboot/acco/provision/openstack"
	"github.com/accoreboot/acco/provision/ovhdb"
)

// limiter bounds the cloud requests in flight at once. An apply's
// operations all run as soon as what they need is done; what
// --parallelism bounds is the calls they make, not their waits, so 50
// servers being built hold no slot while they are polled.
type limiter chan struct{}

// call runs fn holding one slot, or returns ctx's error while waiting for
// one.
func call[T any](ctx context.Context, l limiter, fn func() (T, error)) (T, error) {
	select {
	case l <- struct{}{}:
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
	defer func() { <-l }()
	return fn()
}

// call0 is call for functions that return only an error.
func call0(ctx context.Context, l limiter, fn func() error) error {
	_, err := call(ctx, l, func() (struct{}, error) { return struct{}{}, fn() })
	return err
}

// limitClients returns cl with every call bounded by a limiter of n slots
// shared by the three services.
func limitClients(cl Clients, n int) Clients {
	l := make(limiter, max(n, 1))
	out := cl
	if cl.Compute != nil {
		out.Compute = limitedCompute{cl.Compute, l}
	}
	if cl.Network != nil {
		out.Network = limitedNetwork{cl.Network, l}
	}
	if cl.Image != nil {
		out.Image = limitedImages{cl.Image, l}
	}
	if cl.DB != nil {
		out.DB = limitedDB{cl.DB, l}
	}
	return out
}

type limitedCompute struct {
	c openstack.Compute
	l limiter
}

func (x limitedCompute) ListFlavors(ctx context.Context) ([]openstack.Flavor, error) {
	return call(ctx, x.l, func() ([]openstack.Flavor, error) { return x.c.ListFlavors(ctx) })
}

func (x limitedCompute) ListKeypairs(ctx context.Context) ([]openstack.Keypair, error) {
	return call(ctx, x.l, func() ([]openstack.Keypair, error) { return x.c.ListKeypairs(ctx) })
}

func (x limitedCompute) CreateKeypair(ctx context.Context, name, publicKey string) (openstack.Keypair, error) {
	return call(ctx, x.l, func() (openstack.Keypair, error) { return x.c.CreateKeypair(ctx, name, publicKey) })
}

func (x limitedCompute) DeleteKeypair(ctx context.Context, name string) error {
	return call0(ctx, x.l, func() error { return x.c.DeleteKeypair(ctx, name) })
}

func (x limitedCompute) ListServers(ctx context.Context) ([]openstack.Server, error) {
	return call(ctx, x.l, func() ([]openstack.Server, error) { return x.c.ListServers(ctx) })
}

func (x limitedCompute) GetServer(ctx context.Context, id string) (openstack.Server, error) {
	return call(ctx, x.l, func() (openstack.Server, error) { return x.c.GetServer(ctx, id) })
}

func (x limitedCompute) CreateServer(ctx context.Context, s openstack.ServerSpec) (openstack.Server, error) {
	return call(ctx, x.l, func() (openstack.Server, error) { return x.c.CreateServer(ctx, s) })
}

func (x limitedCompute) DeleteServer(ctx context.Context, id string) error {
	return call0(ctx, x.l, func() error { return x.c.DeleteServer(ctx, id) })
}

func (x limitedCompute) AddSecurityGroup(ctx context.Context, serverID, group string) error {
	return call0(ctx, x.l, func() error { return x.c.AddSecurityGroup(ctx, serverID, group) })
}

func (x limitedCompute) RemoveSecurityGroup(ctx context.Context, serverID, group string) error {
	return call0(ctx, x.l, func() error { return x.c.RemoveSecurityGroup(ctx, serverID, group) })
}

func (x limitedCompute) ConsoleOutput(ctx context.Context, id string, lines int) (string, error) {
	return call(ctx, x.l, func() (string, error) { return x.c.ConsoleOutput(ctx, id, lines) })
}

func (x limitedCompute) RebootServer(ctx context.Context, id string, hard bool) error {
	return call0(ctx, x.l, func() error { return x.c.RebootServer(ctx, id, hard) })
}

func (x limitedCompute) UpdateServer(ctx context.Context, id, name string, metadata map[string]string) error {
	return call0(ctx, x.l, func() error { return x.c.UpdateServer(ctx, id, name, metadata) })
}

type limitedNetwork struct {
	n openstack.Network
	l limiter
}

func (x limitedNetwork) ListNetworks(ctx context.Context) ([]openstack.NetworkInfo, error) {
	return call(ctx, x.l, func() ([]openstack.NetworkInfo, error) { return x.n.ListNetworks(ctx) })
}

func (x limitedNetwork) ListSecurityGroups(ctx context.Context) ([]openstack.SecurityGroup, error) {
	return call(ctx, x.l, func() ([]openstack.SecurityGroup, error) { return x.n.ListSecurityGroups(ctx) })
}

func (x limitedNetwork) GetSecurityGroup(ctx context.Context, id string) (openstack.SecurityGroup, error) {
	return call(ctx, x.l, func() (openstack.SecurityGroup, error) { return x.n.GetSecurityGroup(ctx, id) })
}

func (x limitedNetwork) CreateSecurityGroup(ctx context.Context, name, description string, tags []string) (openstack.SecurityGroup, error) {
	return call(ctx, x.l, func() (openstack.SecurityGroup, error) {
		return x.n.CreateSecurityGroup(ctx, name, description, tags)
	})
}

func (x limitedNetwork) UpdateSecurityGroup(ctx context.Context, id, description string) error {
	return call0(ctx, x.l, func() error { return x.n.UpdateSecurityGroup(ctx, id, description) })
}

func (x limitedNetwork) SetSecurityGroupTags(ctx context.Context, id string, tags []string) error {
	return call0(ctx, x.l, func() error { return x.n.SetSecurityGroupTags(ctx, id, tags) })
}

func (x limitedNetwork) DeleteSecurityGroup(ctx context.Context, id string) error {
	return call0(ctx, x.l, func() error { return x.n.DeleteSecurityGroup(ctx, id) })
}

func (x limitedNetwork) CreateRule(ctx context.Context, r openstack.Rule) (openstack.Rule, error) {
	return call(ctx, x.l, func() (openstack.Rule, error) { return x.n.CreateRule(ctx, r) })
}

func (x limitedNetwork) DeleteRule(ctx context.Context, id string) error {
	return call0(ctx, x.l, func() error { return x.n.DeleteRule(ctx, id) })
}

func (x limitedNetwork) RenameSecurityGroup(ctx context.Context, id, name string) error {
	return call0(ctx, x.l, func() error { return x.n.RenameSecurityGroup(ctx, id, name) })
}

type limitedImages struct {
	i openstack.ImageService
	l limiter
}

func (x limitedImages) ListImages(ctx context.Context) ([]openstack.Image, error) {
	return call(ctx, x.l, func() ([]openstack.Image, error) { return x.i.ListImages(ctx) })
}

type limitedDB struct {
	d ovhdb.API
	l limiter
}

func (x limitedDB) Availability(ctx context.Context) ([]ovhdb.Availability, error) {
	return call(ctx, x.l, func() ([]ovhdb.Availability, error) { return x.d.Availability(ctx) })
}

func (x limitedDB) ListClusters(ctx context.Context) ([]ovhdb.Cluster, error) {
	return call(ctx, x.l, func() ([]ovhdb.Cluster, error) { return x.d.ListClusters(ctx) })
}

func (x limitedDB) ClusterIDs(ctx context.Context) ([]string, error) {
	return call(ctx, x.l, func() ([]string, error) { return x.d.ClusterIDs(ctx) })
}

func (x limitedDB) GetCluster(ctx context.Context, id string) (ovhdb.Cluster, error) {
	return call(ctx, x.l, func() (ovhdb.Cluster, error) { return x.d.GetCluster(ctx, id) })
}

func (x limitedDB) CACertificate(ctx context.Context, clusterID string) (string, error) {
	return call(ctx, x.l, func() (string, error) { return x.d.CACertificate(ctx, clusterID) })
}

func (x limitedDB) CreateCluster(ctx context.Context, c ovhdb.ClusterCreate) (ovhdb.Cluster, error) {
	return call(ctx, x.l, func() (ovhdb.Cluster, error) { return x.d.CreateCluster(ctx, c) })
}

func (x limitedDB) UpdateCluster(ctx context.Context, id string, u ovhdb.ClusterUpdate) error {
	return call0(ctx, x.l, func() error { return x.d.UpdateCluster(ctx, id, u) })
}

func (x limitedDB) DeleteCluster(ctx context.Context, id string) error {
	return call0(ctx, x.l, func() error { return x.d.DeleteCluster(ctx, id) })
}

func (x limitedDB) ListUsers(ctx context.Context, clusterID string) ([]ovhdb.User, error) {
	return call(ctx, x.l, func() ([]ovhdb.User, error) { return x.d.ListUsers(ctx, clusterID) })
}

func (x limitedDB) GetUser(ctx context.Context, clusterID, id string) (ovhdb.User, error) {
	return call(ctx, x.l, func() (ovhdb.User, error) { return x.d.GetUser(ctx, clusterID, id) })
}

func (x limitedDB) CreateUser(ctx context.Context, clusterID, name string, roles []string) (ovhdb.User, error) {
	return call(ctx, x.l, func() (ovhdb.User, error) { return x.d.CreateUser(ctx, clusterID, name, roles) })
}

func (x limitedDB) UpdateUserRoles(ctx context.Context, clusterID, userID string, roles []string) error {
	return call0(ctx, x.l, func() error { return x.d.UpdateUserRoles(ctx, clusterID, userID, roles) })
}

func (x limitedDB) ResetPassword(ctx context.Context, clusterID, userID string) (ovhdb.User, error) {
	return call(ctx, x.l, func() (ovhdb.User, error) { return x.d.ResetPassword(ctx, clusterID, userID) })
}

func (x limitedDB) DeleteUser(ctx context.Context, clusterID, userID string) error {
	return call0(ctx, x.l, func() error { return x.d.DeleteUser(ctx, clusterID, userID) })
}

func (x limitedDB) ListDatabases(ctx context.Context, clusterID string) ([]ovhdb.Database, error) {
	return call(ctx, x.l, func() ([]ovhdb.Database, error) { return x.d.ListDatabases(ctx, clusterID) })
}

func (x limitedDB) CreateDatabase(ctx context.Context, clusterID, name string) (ovhdb.Database, error) {
	return call(ctx, x.l, func() (ovhdb.Database, error) { return x.d.CreateDatabase(ctx, clusterID, name) })
}

func (x limitedDB) DeleteDatabase(ctx context.Context, clusterID, id string) error {
	return call0(ctx, x.l, func() error { return x.d.DeleteDatabase(ctx, clusterID, id) })
}
