package pgserver

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
)

// Shared runs every cluster of the local cloud on one existing PostgreSQL
// server, given by a connection string whose role may create roles and
// databases (a superuser, or CREATEROLE CREATEDB). It is the local cloud's
// `--postgres DSN` mode, for machines where PostgreSQL runs already (a CI
// service, a container) and initdb is not wanted.
//
// A server has one set of roles, so clusters share them: a user created in
// two clusters is one role, whose password is the last one handed out.
// Deleting a cluster leaves its roles and databases on the server. Shared
// implements the Backend interface of the ovhapi package.
type Shared struct {
	cfg    *pgx.ConnConfig
	server ServerInfo
	mu     sync.Mutex // one administration at a time
}

// OpenShared checks that the server of dsn answers and returns a backend
// over it.
func OpenShared(ctx context.Context, dsn string) (*Shared, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgserver: postgres connection string: %w", err)
	}
	s := &Shared{cfg: cfg}
	err = s.admin(ctx, "", func(c *pgx.Conn) error {
		var v string
		if err := c.QueryRow(ctx, "SHOW server_version").Scan(&v); err != nil {
			return fmt.Errorf("server_version: %w", err)
		}
		version, err := parseVersion(v)
		if err != nil {
			return fmt.Errorf("server_version: %w", err)
		}
		s.server = ServerInfo{Version: version, Source: fmt.Sprintf("shared server %s:%d", cfg.Host, cfg.Port)}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Server says which PostgreSQL runs the clusters.
func (s *Shared) Server() ServerInfo { return s.server }

// isSuperuser reports whether the session's role is a superuser.
func isSuperuser(ctx context.Context, c *pgx.Conn) (bool, error) {
	var super bool
	err := c.QueryRow(ctx, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super)
	return super, err
}

// admin runs f on a connection to database ("" for the DSN's own).
func (s *Shared) admin(ctx context.Context, database string, f func(*pgx.Conn) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg := s.cfg.Copy()
	if database != "" {
		cfg.Database = database
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("pgserver: connect to %s:%d: %w", cfg.Host, cfg.Port, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := f(conn); err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	return nil
}

// roleExists reports whether a role exists.
func roleExists(ctx context.Context, c *pgx.Conn, name string) (bool, error) {
	var exists bool
	err := c.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", name).Scan(&exists)
	return exists, err
}

// databaseExists reports whether a database exists.
func databaseExists(ctx context.Context, c *pgx.Conn, name string) (bool, error) {
	var exists bool
	err := c.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists)
	return exists, err
}

// CreateCluster makes sure avnadmin and defaultdb exist and returns the
// server's address.
func (s *Shared) CreateCluster(ctx context.Context, clusterID string) (string, int, error) {
	err := s.admin(ctx, "", func(c *pgx.Conn) error {
		ok, err := roleExists(ctx, c, adminRole)
		if err != nil {
			return err
		}
		if !ok {
			// OVH's privileges (as Manager's bootstrap) when the DSN's role
			// may give them; REPLICATION and the pg_* roles need a superuser.
			super, err := isSuperuser(ctx, c)
			if err != nil {
				return err
			}
			qs := []string{"CREATE ROLE " + ident(adminRole) + " LOGIN CREATEDB CREATEROLE"}
			if super {
				qs = []string{
					"CREATE ROLE " + ident(adminRole) + " LOGIN CREATEDB CREATEROLE REPLICATION",
					"GRANT pg_read_all_stats, pg_signal_backend, pg_monitor TO " + ident(adminRole),
				}
			}
			for _, q := range qs {
				if _, err := c.Exec(ctx, q); err != nil {
					return fmt.Errorf("%s: %w", q, err)
				}
			}
		}
		ok, err = databaseExists(ctx, c, defaultDB)
		if err != nil {
			return err
		}
		if !ok {
			if _, err := c.Exec(ctx, "CREATE DATABASE "+ident(defaultDB)+" OWNER "+ident(adminRole)); err != nil {
				return fmt.Errorf("create database %s: %w", defaultDB, err)
			}
		}
		return nil
	})
	if err != nil {
		return "", 0, fmt.Errorf("create cluster %s: %w", clusterID, err)
	}
	return s.cfg.Host, int(s.cfg.Port), nil
}

// DeleteCluster leaves the shared server as it is: its roles and databases
// may serve other clusters.
func (s *Shared) DeleteCluster(context.Context, string) error { return nil }

// CreateUser creates a login role that avnadmin administers, or sets the
// password of the one that exists (clusters share roles). As a superuser,
// the role is created as avnadmin, as Manager does (see
// createUserAsAdmin); otherwise the DSN's role creates it and, on
// PostgreSQL 16 and later, grants avnadmin the same ADMIN OPTION (without
// INHERIT or SET) that creating it would have given.
func (s *Shared) CreateUser(ctx context.Context, clusterID, name, password string) error {
	pw, err := passwordClause(password)
	if err != nil {
		return err
	}
	return s.admin(ctx, "", func(c *pgx.Conn) error {
		ok, err := roleExists(ctx, c, name)
		if err != nil {
			return err
		}
		if ok {
			if _, err := c.Exec(ctx, "ALTER ROLE "+ident(name)+" WITH LOGIN PASSWORD "+pw); err != nil {
				return fmt.Errorf("cluster %s: set the password of %s: %w", clusterID, name, err)
			}
			return nil
		}
		asAdmin, err := s.canCreateAsAdmin(ctx, c)
		if err != nil {
			return fmt.Errorf("cluster %s: %w", clusterID, err)
		}
		if asAdmin {
			if err := createUserAsAdmin(ctx, c, name, pw); err != nil {
				return fmt.Errorf("cluster %s: %w", clusterID, err)
			}
			return nil
		}
		if _, err := c.Exec(ctx, "CREATE ROLE "+ident(name)+" LOGIN PASSWORD "+pw); err != nil {
			return fmt.Errorf("cluster %s: create role %s: %w", clusterID, name, err)
		}
		var me string
		if err := c.QueryRow(ctx, "SELECT current_user").Scan(&me); err != nil {
			return err
		}
		if compareVersions(s.server.Major(), "16") < 0 || me == adminRole {
			return nil // CREATEROLE administers it; or avnadmin made it
		}
		q := "GRANT " + ident(name) + " TO " + ident(adminRole) + " WITH ADMIN OPTION, INHERIT FALSE, SET FALSE"
		if _, err := c.Exec(ctx, q); err != nil {
			return fmt.Errorf("cluster %s: %s: %w", clusterID, q, err)
		}
		return nil
	})
}

// canCreateAsAdmin reports whether the session may create roles as
// avnadmin: it is a superuser and avnadmin has CREATEROLE.
func (s *Shared) canCreateAsAdmin(ctx context.Context, c *pgx.Conn) (bool, error) {
	super, err := isSuperuser(ctx, c)
	if err != nil || !super {
		return false, err
	}
	var createrole bool
	err = c.QueryRow(ctx, "SELECT rolcreaterole FROM pg_roles WHERE rolname = $1", adminRole).Scan(&createrole)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return createrole, err
}

// SetPassword sets the password of a role.
func (s *Shared) SetPassword(ctx context.Context, clusterID, name, password string) error {
	pw, err := passwordClause(password)
	if err != nil {
		return err
	}
	return s.admin(ctx, "", func(c *pgx.Conn) error {
		if _, err := c.Exec(ctx, "ALTER ROLE "+ident(name)+" WITH LOGIN PASSWORD "+pw); err != nil {
			return fmt.Errorf("cluster %s: set the password of %s: %w", clusterID, name, err)
		}
		return nil
	})
}

// DropUser drops a role that owns nothing; a role that owns objects is
// kept (another cluster may use it) and reported.
func (s *Shared) DropUser(ctx context.Context, clusterID, name string) error {
	return s.admin(ctx, "", func(c *pgx.Conn) error {
		if _, err := c.Exec(ctx, "DROP ROLE IF EXISTS "+ident(name)); err != nil {
			return fmt.Errorf("cluster %s: drop role %s: %w", clusterID, name, err)
		}
		return nil
	})
}

// CreateDatabase creates a database owned by avnadmin, unless it exists.
func (s *Shared) CreateDatabase(ctx context.Context, clusterID, name string) error {
	return s.admin(ctx, "", func(c *pgx.Conn) error {
		ok, err := databaseExists(ctx, c, name)
		if err != nil || ok {
			return err
		}
		if _, err := c.Exec(ctx, "CREATE DATABASE "+ident(name)+" OWNER "+ident(adminRole)); err != nil {
			return fmt.Errorf("cluster %s: create database %s: %w", clusterID, name, err)
		}
		return nil
	})
}

// DropDatabase drops a database, closing its connections.
func (s *Shared) DropDatabase(ctx context.Context, clusterID, name string) error {
	return s.admin(ctx, "", func(c *pgx.Conn) error {
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(name)+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("cluster %s: drop database %s: %w", clusterID, name, err)
		}
		return nil
	})
}

// Close releases nothing: connections are opened per call.
func (s *Shared) Close(context.Context) error { return nil }
