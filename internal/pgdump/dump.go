package pgdump

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// maxStderr bounds the tool output kept for an error message.
const maxStderr = 4096

// tailBuffer keeps the last maxStderr bytes written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > maxStderr {
		t.b = append(t.b[:0], t.b[len(t.b)-maxStderr:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return strings.TrimSpace(string(t.b)) }

// ErrEmptyDump is returned by List for a readable dump that holds nothing:
// the dump of a database with no object of its own.
var ErrEmptyDump = errors.New("pg_restore found no entries: the database holds nothing to dump")

// run runs a client program under ctx and returns its standard output;
// its error carries what the program said on standard error.
func run(ctx context.Context, what, path string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = toolEnv(os.Environ())
	cmd.SysProcAttr = childAttr()
	cmd.WaitDelay = 10 * time.Second
	var stdout bytes.Buffer
	var stderr tailBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err == nil {
		return stdout.Bytes(), nil
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("pgdump: %s: %w", what, context.Cause(ctx))
	}
	var lines []string
	for _, l := range strings.Split(stderr.String(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	msg := strings.Join(lines, "; ")
	if msg == "" {
		return nil, fmt.Errorf("pgdump: %s: %s: %w", what, filepath.Base(path), err)
	}
	if !strings.HasPrefix(msg, filepath.Base(path)+":") {
		msg = filepath.Base(path) + ": " + msg
	}
	hint := ""
	switch {
	case strings.Contains(msg, "certificate verify failed"):
		hint = " (the server's certificate is not signed by the cluster's CA certificate given: check the CA)"
	case strings.Contains(msg, "does not match host name") || strings.Contains(msg, "server certificate for"):
		hint = " (the server's certificate does not name the host connected to)"
	case strings.Contains(msg, "password authentication failed"):
		hint = " (check the user's password)"
	case strings.Contains(msg, "permission denied") || strings.Contains(msg, "must be able to SET ROLE"):
		hint = " (objects of other users need their roles: see BorrowRoles)"
	case strings.Contains(msg, "server version mismatch"):
		hint = "; " + InstallHint
	}
	return nil, fmt.Errorf("pgdump: %s: %s%s", what, msg, hint)
}

// runSession is run with the connection errors of the forwarder added.
func runSession(ctx context.Context, s *session, what, path string, args ...string) ([]byte, error) {
	out, err := run(ctx, what, path, args...)
	if err != nil {
		if derr := s.dialErr(); derr != nil {
			err = fmt.Errorf("%w (the tunnel could not connect: %v)", err, derr)
		}
	}
	return out, err
}

// Dump writes tg's database to the file out in pg_dump's custom format
// (compressed; what pg_restore reads). out is created or truncated, and
// removed when the dump fails.
func Dump(ctx context.Context, t Tools, tg Target, out string) (err error) {
	if t.PgDump == "" {
		return errNoTools
	}
	s, err := openSession(ctx, tg)
	if err != nil {
		return err
	}
	defer s.Close()
	defer func() {
		if err != nil {
			_ = os.Remove(out)
		}
	}()
	if out, err = filepath.Abs(out); err != nil {
		return fmt.Errorf("pgdump: dump %s: %w", tg.where(), err)
	}
	_, err = runSession(ctx, s, "dump "+tg.where(), t.PgDump,
		"--format=custom", "--no-password", "--file="+out, "--dbname="+s.conninfo())
	if err != nil {
		return err
	}
	fi, err := os.Stat(out)
	if err != nil {
		return fmt.Errorf("pgdump: dump %s: %w", tg.where(), err)
	}
	if fi.Size() == 0 {
		return fmt.Errorf("pgdump: dump %s: %s is empty", tg.where(), out)
	}
	return nil
}

// List verifies a custom-format dump and returns its table of contents,
// one entry a line as pg_restore --list prints them (without its comment
// lines), such as "215; 1259 16386 TABLE public items avnadmin". Besides
// the table of contents, pg_restore reads the whole dump (restoring it to
// nowhere) so that a truncated or corrupt file is an error, not only one
// whose table of contents is unreadable.
func List(ctx context.Context, t Tools, dump string) ([]string, error) {
	if t.PgRestore == "" {
		return nil, errNoTools
	}
	dump, err := filepath.Abs(dump) // never taken for an option
	if err != nil {
		return nil, fmt.Errorf("pgdump: list %s: %w", dump, err)
	}
	if _, err := os.Stat(dump); err != nil {
		return nil, fmt.Errorf("pgdump: list %s: %w", dump, err)
	}
	out, err := run(ctx, "list "+dump, t.PgRestore, "--list", dump)
	if err != nil {
		return nil, err
	}
	var entries []string
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimRight(line, " \r")
		if line == "" || strings.HasPrefix(line, ";") {
			continue
		}
		entries = append(entries, line)
	}
	if _, err := run(ctx, "read "+dump, t.PgRestore, "--file="+os.DevNull, dump); err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("pgdump: list %s: %w", dump, ErrEmptyDump)
	}
	return entries, nil
}

// hasExtension reports whether a table of contents (List) creates the
// extension name: an entry "<id>; <catalog> <oid> EXTENSION - <name> ...".
func hasExtension(entries []string, name string) bool {
	for _, e := range entries {
		_, rest, ok := strings.Cut(e, ";")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) >= 5 && f[2] == "EXTENSION" && f[3] == "-" && f[4] == name {
			return true
		}
	}
	return false
}

// Restore loads a custom-format dump into tg's database, which must exist
// and be empty, in one transaction that stops at the first error; in two
// when schemas have grants (the schemas and their grants first; see
// splitSchemas), so that a failure may leave the schemas: drop and re-create
// the database before restoring again. Owners and grants are restored as
// dumped, so the roles must exist, and tg.User must be able to act as them
// (BorrowRoles); database-level grants and settings are not in a dump of
// one database. It verifies the dump (List) first. When the dump
// creates the timescaledb extension, timescaledb_pre_restore() runs in the
// database before and timescaledb_post_restore() after, as TimescaleDB
// requires (after too when the restore fails).
func Restore(ctx context.Context, t Tools, tg Target, dump string) error {
	entries, err := List(ctx, t, dump)
	if err != nil {
		return err
	}
	return restore(ctx, t, tg, dump, entries, hasExtension(entries, "timescaledb"))
}

// restore is Restore once the dump's entries are listed and it is known
// whether TimescaleDB needs its calls.
func restore(ctx context.Context, t Tools, tg Target, dump string, entries []string, timescale bool) (err error) {
	if dump, err = filepath.Abs(dump); err != nil { // never taken for an option
		return fmt.Errorf("pgdump: restore %s: %w", dump, err)
	}
	s, err := openSession(ctx, tg)
	if err != nil {
		return err
	}
	defer s.Close()
	if timescale {
		if err := callOne(ctx, tg, "timescaledb_pre_restore"); err != nil {
			return err
		}
		defer func() {
			// The database setting pre_restore made must go even when the
			// restore failed: post_restore also under an ended ctx.
			if perr := callOne(context.WithoutCancel(ctx), tg, "timescaledb_post_restore"); perr != nil {
				err = errors.Join(err, perr)
			}
		}()
	}
	what := "restore " + dump + " into " + tg.where()
	args := []string{"--no-password", "--exit-on-error", "--single-transaction", "--dbname=" + s.conninfo()}
	schemas, rest := splitSchemas(entries)
	if schemas == nil {
		_, err = runSession(ctx, s, what, t.PgRestore, append(args, dump)...)
		return err
	}
	for i, part := range [][]string{schemas, rest} {
		list := filepath.Join(s.dir, fmt.Sprintf("list%d", i))
		if err := os.WriteFile(list, []byte(strings.Join(part, "\n")+"\n"), 0o600); err != nil {
			return fmt.Errorf("pgdump: %s: %w", what, err)
		}
		if _, err := runSession(ctx, s, what, t.PgRestore, append(args, "--use-list="+list, dump)...); err != nil {
			if i > 0 {
				err = fmt.Errorf("%w (the schemas and their privileges were restored first: drop and re-create the database before restoring again)", err)
			}
			return err
		}
	}
	return nil
}

// splitSchemas splits a table of contents whose schemas have privileges
// into the schemas with their privileges, and the rest; nil, entries when
// no schema has privileges. pg_restore grants every privilege last, but
// giving a role an object in a schema (ALTER ... OWNER TO) needs that
// role's CREATE privilege on the schema: so a dump of a user's tables in a
// schema (public included) where the user was granted CREATE restores only
// when the schemas and their grants are restored first.
func splitSchemas(entries []string) (schemas, rest []string) {
	grants := false
	for _, e := range entries {
		switch schemaEntry(e) {
		case "acl":
			grants = true
			schemas = append(schemas, e)
		case "schema":
			schemas = append(schemas, e)
		default:
			rest = append(rest, e)
		}
	}
	if !grants {
		return nil, entries
	}
	return schemas, rest
}

// schemaEntry tells a table of contents entry that creates a schema
// ("schema": "<id>; <catalog> <oid> SCHEMA - <name> <owner>") or grants on
// one ("acl": "<id>; 0 0 ACL - SCHEMA <name> <owner>"), or neither ("").
func schemaEntry(e string) string {
	_, rest, _ := strings.Cut(e, ";")
	f := strings.Fields(rest)
	switch {
	case len(f) >= 5 && f[2] == "SCHEMA" && f[3] == "-":
		return "schema"
	case len(f) >= 6 && f[2] == "ACL" && f[3] == "-" && f[4] == "SCHEMA":
		return "acl"
	}
	return ""
}

// callOne runs SELECT fn() in tg's database on a connection of its own.
func callOne(ctx context.Context, tg Target, fn string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	c, err := connect(ctx, tg, tg.Database)
	if err != nil {
		return err
	}
	defer c.Close(context.WithoutCancel(ctx))
	if _, err := c.Exec(ctx, "SELECT "+fn+"()"); err != nil {
		return fmt.Errorf("pgdump: %s() in %s: %w", fn, tg.where(), err)
	}
	return nil
}
