// Package openstack is the OpenStack half of the local cloud: an in-process
// double of OVHcloud Public Cloud's Keystone v3, Nova v2.1, Neutron v2.0 and
// Glance v2 that the real clients (gophercloud v2 and python-openstackclient)
// cannot tell apart from OVH for the calls acco makes.
//
// One [Cloud] holds every resource in memory behind one lock. [Cloud.Handler]
// serves all services under one base URL:
//
//	{base}/identity/v3                   Keystone (auth URL)
//	{base}/compute/{region}/v2.1/{project} Nova
//	{base}/network/{region}/             Neutron (clients append v2.0)
//	{base}/image/{region}/               Glance (clients append v2)
//
// As on OVH, the identity service is global, the other services are regional,
// every project sees the shared Ext-Net network of each region, each project
// gets in each region a "default" security group that allows everything in
// and out (created on first use), and the Ext-Net address of a server shows
// some time after the server turned ACTIVE.
//
// Transitions (BUILD -> ACTIVE, REBOOT -> ACTIVE, the address appearing) are
// computed from timestamps when a resource is read, so the cloud runs no
// goroutines. [Cloud.Snapshot] and [Restore] persist every resource (tokens
// excepted: clients re-authenticate) as JSON; [Config.OnChange] tells the
// owner when to save.
//
// Each server gets an SSH host key, printed by its console log the way
// cloud-init prints it, and kept in the snapshot so that a later VM can serve
// it ([Cloud.ServerHostKey]).
//
// With [Config.Machines] set, a real machine stands behind every server
// instead: the server's status follows its machine (BUILD until the machine
// answers SSH, ERROR with the machine's fault when it fails), its console
// output is the machine's, reboot, stop, start and delete act on it, and
// Ext-Net hands out loopback addresses ([MachineNet]) that the machine's
// forwarded ports listen on. A server whose machine is gone (the local cloud
// was restarted) shows SHUTOFF; os-start or a hard reboot boots it again.
package openstack
