// Package flows holds the runs of acco that need both halves: what
// provisioning recorded in state (the host's address, the clusters, the
// sealed passwords) and the SSH configuration of the host. acco configure,
// acco device and acco verify are flows; cmd/acco only parses flags, takes
// the lock, builds the clients and renders what a flow returns.
package flows
