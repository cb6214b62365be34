// Package pgdump takes and restores logical dumps of the databases of a
// managed PostgreSQL cluster with PostgreSQL's own client tools.
//
// FindTools finds a pg_dump and pg_restore at least as new as the server
// (pg_dump refuses older servers' successors, so a PostgreSQL 17 cluster
// needs 17 or later tools); scripts/ensure-pgclient.sh installs PostgreSQL
// 17's without root into the directories DefaultDirs names. Dump writes one
// database in pg_dump's custom format, List reads a dump's table of contents
// (which verifies that the file is a complete, readable dump), Restore loads
// a dump into an existing empty database, keeping owners and grants, with
// TimescaleDB's pre/post restore calls when the dump holds that extension,
// and Facts reads the server's version, databases and extensions.
//
// Connections always verify the server certificate and its name
// (sslmode=verify-full) against the cluster's CA. The password is given to
// the tools in a passfile readable by this user only, in a private temporary
// directory removed afterwards: never on a command line or in the
// environment. When Target.Dial is set (an SSH tunnel), the tools connect to
// a local forwarder on 127.0.0.1 that opens one Dial connection per
// connection it accepts; TLS still runs end to end and verifies the cluster's
// real host name.
package pgdump
