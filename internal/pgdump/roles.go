package pgdump

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// BorrowRoles makes tg.User (avnadmin) able to act as the users it
// administers, which dumping their tables and restoring them with their
// owners needs, and returns those users and a func that gives the rights
// back. On a managed PostgreSQL 16 or later, the admin role holds ADMIN
// OPTION on the users made through the API but, by default, neither their
// privileges (INHERIT) nor SET ROLE to them: pg_dump then cannot read a
// table a user's migrations created, nor pg_restore give it back to that
// user. BorrowRoles grants tg.User each such role WITH INHERIT TRUE, SET
// TRUE; giveBack revokes what it granted (call it also when the dump or
// restore fails). Roles tg.User already acts as are left alone. On
// PostgreSQL 15 and older it does nothing (membership is then granted as a
// whole, and not taken here).
func BorrowRoles(ctx context.Context, tg Target) (roles []string, giveBack func(context.Context) error, err error) {
	nothing := func(context.Context) error { return nil }
	c, err := connect(ctx, tg, tg.Database)
	if err != nil {
		return nil, nothing, err
	}
	defer c.Close(context.WithoutCancel(ctx))
	var num int
	if err := c.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&num); err != nil {
		return nil, nothing, fmt.Errorf("pgdump: server version of %s: %w", tg.Host, err)
	}
	if num < 160000 {
		return nil, nothing, nil
	}
	rows, err := c.Query(ctx, `SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid
		WHERE m.member = (SELECT oid FROM pg_roles WHERE rolname = current_user) AND m.admin_option
		AND NOT (pg_has_role(current_user, r.oid, 'USAGE') AND pg_has_role(current_user, r.oid, 'SET')) AND NOT r.rolsuper
		GROUP BY r.rolname ORDER BY r.rolname`)
	if err != nil {
		return nil, nothing, fmt.Errorf("pgdump: roles %s administers on %s: %w", tg.User, tg.Host, err)
	}
	candidates, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, nothing, fmt.Errorf("pgdump: roles %s administers on %s: %w", tg.User, tg.Host, err)
	}
	giveBack = func(ctx context.Context) error {
		if len(roles) == 0 {
			return nil
		}
		c, err := connect(ctx, tg, tg.Database)
		if err != nil {
			return fmt.Errorf("pgdump: give back roles %v: %w", roles, err)
		}
		defer c.Close(context.WithoutCancel(ctx))
		var errs []error
		for _, r := range roles {
			if _, err := c.Exec(ctx, "REVOKE "+quoteIdent(r)+" FROM CURRENT_USER"); err != nil {
				errs = append(errs, fmt.Errorf("pgdump: revoke %s from %s: %w", r, tg.User, err))
			}
		}
		return errors.Join(errs...)
	}
	for _, r := range candidates {
		if _, err := c.Exec(ctx, "GRANT "+quoteIdent(r)+" TO CURRENT_USER WITH INHERIT TRUE, SET TRUE"); err != nil {
			err = fmt.Errorf("pgdump: grant %s to %s: %w", r, tg.User, err)
			return nil, nothing, errors.Join(err, giveBack(context.WithoutCancel(ctx)))
		}
		roles = append(roles, r)
	}
	return roles, giveBack, nil
}

// quoteIdent quotes an SQL identifier.
func quoteIdent(s string) string {
	return pgx.Identifier{s}.Sanitize()
}
