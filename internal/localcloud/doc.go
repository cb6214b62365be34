// Package localcloud runs an offline double of OVHcloud Public Cloud on
// loopback: Keystone, Nova, Neutron and Glance (package openstack), the OVH
// API with managed PostgreSQL clusters backed by real PostgreSQL servers
// (packages ovhapi and pgserver), and S3 (gofakes3 over a persistent
// journal, package s3store), behind knobs that add latency and faults
// (package knobs).
//
// Serve runs it in the foreground; Up starts it in the background through
// `acco local serve`, Down stops it, Status reports on it and Exports prints
// the variables that point every client at it. Everything it holds lives
// under one directory, so a stopped cloud comes back as it was.
//
// With Options.VMs, every Nova server is a QEMU VM booted from the image
// `make vm-image` builds (package vm), reachable over SSH at the server's
// IPv4 address (127.0.0.N) on port 22, with DefaultVMPorts forwarded the
// same way; its work directory is <dir>/vms/<server-id>. Stopping the local
// cloud kills every VM but keeps their disks: after a restart their servers
// show SHUTOFF, and os-start (or a hard reboot) boots each again on its
// kept disk, with the same host keys.
package localcloud
