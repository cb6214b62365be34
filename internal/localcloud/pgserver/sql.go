package pgserver

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
)

// ident quotes an SQL identifier.
func ident(name string) string {
	return pgx.Identifier{name}.Sanitize()
}

// connect opens an administration connection to a database of a cluster,
// as the bootstrap superuser through the unix socket.
func (m *Manager) connect(ctx context.Context, inst *instance, database string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig("")
	if err != nil {
		return nil, err
	}
	cfg.Host = inst.sockDir
	cfg.Port = uint16(inst.meta.Port)
	cfg.User = superuser
	cfg.Database = database
	cfg.TLSConfig = nil
	cfg.Fallbacks = nil
	cfg.RuntimeParams = map[string]string{"application_name": "acco-localcloud"}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to cluster %s (socket %s, port %s): %w", inst.id, inst.sockDir, strconv.Itoa(inst.meta.Port), err)
	}
	return conn, nil
}

// admin runs f with an administration connection to a cluster's database,
// one administration at a time per cluster.
func (m *Manager) admin(ctx context.Context, clusterID, database string, f func(*pgx.Conn) error) error {
	inst, err := m.instance(clusterID)
	if err != nil {
		return err
	}
	inst.mu.Lock()
	defer inst.mu.Unlock()
	conn, err := m.connect(ctx, inst, database)
	if err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := f(conn); err != nil {
		return fmt.Errorf("pgserver: cluster %s: %w", clusterID, err)
	}
	return nil
}

// CreateUser creates a login role with a password, administered by
// avnadmin: it is created by avnadmin (createUserAsAdmin).
func (m *Manager) CreateUser(ctx context.Context, clusterID, name, password string) error {
	pw, err := passwordClause(password)
	if err != nil {
		return err
	}
	return m.admin(ctx, clusterID, "postgres", func(c *pgx.Conn) error {
		return createUserAsAdmin(ctx, c, name, pw)
	})
}

// createUserAsAdmin creates a login role as avnadmin, from a superuser's
// session (SET ROLE), with the password clause pw.
//
// Known (../shared/reference/ovh.md §2.8 and services.md §2.8): OVH's
// managed PostgreSQL is Aiven's; users are created through the API (or the
// control panel), never by the customer's SQL; avnadmin is not a superuser
// (usesuper=f, usecreatedb=t) and, as Aiven documents, manages users and
// access permissions (GRANT, REVOKE). PostgreSQL 16 and later let a
// CREATEROLE role alter, drop or grant only the roles it has ADMIN OPTION
// on.
//
// Assumed (no source says how OVH creates API users): they end up
// administered by avnadmin the way PostgreSQL 16+ arranges it when
// avnadmin itself creates a role: avnadmin gets ADMIN OPTION on it, with
// INHERIT and SET false (createrole_self_grant left empty), so it can alter,
// drop and grant the user but does not hold the user's privileges: it can
// GRANT on, and publish, the tables it owns, not the ones a user owns. On
// PostgreSQL 15 and older (Debian's fallback), avnadmin's CREATEROLE alone
// administers every non-superuser role.
func createUserAsAdmin(ctx context.Context, c *pgx.Conn, name, pw string) error {
	tx, err := c.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, "SET LOCAL ROLE "+ident(adminRole)); err != nil {
		return fmt.Errorf("become %s: %w", adminRole, err)
	}
	if _, err := tx.Exec(ctx, "CREATE ROLE "+ident(name)+" LOGIN PASSWORD "+pw); err != nil {
		return fmt.Errorf("create role %s as %s: %w", name, adminRole, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("create role %s as %s: %w", name, adminRole, err)
	}
	return nil
}

// SetPassword sets the password of a role (avnadmin included).
func (m *Manager) SetPassword(ctx context.Context, clusterID, name, password string) error {
	pw, err := passwordClause(password)
	if err != nil {
		return err
	}
	return m.admin(ctx, clusterID, "postgres", func(c *pgx.Conn) error {
		if _, err := c.Exec(ctx, "ALTER ROLE "+ident(name)+" WITH LOGIN PASSWORD "+pw); err != nil {
			return fmt.Errorf("set the password of %s: %w", name, err)
		}
		return nil
	})
}

// DropUser drops a role; what it owns in every database goes to avnadmin.
// Dropping a role that does not exist is not an error.
func (m *Manager) DropUser(ctx context.Context, clusterID, name string) error {
	var databases []string
	err := m.admin(ctx, clusterID, "postgres", func(c *pgx.Conn) error {
		var exists bool
		if err := c.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", name).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return nil
		}
		rows, err := c.Query(ctx, "SELECT datname FROM pg_database WHERE datallowconn ORDER BY datname")
		if err != nil {
			return err
		}
		databases, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil || len(databases) == 0 {
		return err
	}
	for _, db := range databases {
		err := m.admin(ctx, clusterID, db, func(c *pgx.Conn) error {
			for _, q := range []string{
				"REASSIGN OWNED BY " + ident(name) + " TO " + ident(adminRole),
				"DROP OWNED BY " + ident(name),
			} {
				if _, err := c.Exec(ctx, q); err != nil {
					return fmt.Errorf("%s in %s: %w", q, db, err)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return m.admin(ctx, clusterID, "postgres", func(c *pgx.Conn) error {
		if _, err := c.Exec(ctx, "DROP ROLE IF EXISTS "+ident(name)); err != nil {
			return fmt.Errorf("drop role %s: %w", name, err)
		}
		return nil
	})
}

// CreateDatabase creates a database owned by avnadmin.
func (m *Manager) CreateDatabase(ctx context.Context, clusterID, name string) error {
	return m.admin(ctx, clusterID, "postgres", func(c *pgx.Conn) error {
		if _, err := c.Exec(ctx, "CREATE DATABASE "+ident(name)+" OWNER "+ident(adminRole)); err != nil {
			return fmt.Errorf("create database %s: %w", name, err)
		}
		return nil
	})
}

// DropDatabase drops a database, closing its connections. Dropping a
// database that does not exist is not an error.
func (m *Manager) DropDatabase(ctx context.Context, clusterID, name string) error {
	return m.admin(ctx, clusterID, "postgres", func(c *pgx.Conn) error {
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(name)+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
		return nil
	})
}
