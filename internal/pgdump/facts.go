package pgdump

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ServerFacts is what a cluster's server says about itself.
type ServerFacts struct {
	// Version is the server's version, such as "17.10"; Major its major
	// version (17).
	Version string
	Major   int
	// Databases are the databases one can connect to, sorted: not the
	// templates, nor the managed service's own _aiven.
	Databases []string
	// Extensions are, by database, the extensions installed and their
	// versions (plpgsql included).
	Extensions map[string]map[string]string
}

// serviceDatabase is the managed service's own database, not the user's.
const serviceDatabase = "_aiven"

// Facts reads the server's version, its databases and each one's
// extensions, connecting as tg's user to tg.Database first, then to every
// database.
func Facts(ctx context.Context, tg Target) (ServerFacts, error) {
	c, err := connect(ctx, tg, tg.Database)
	if err != nil {
		return ServerFacts{}, err
	}
	defer c.Close(context.WithoutCancel(ctx))
	var f ServerFacts
	if err := c.QueryRow(ctx, "SHOW server_version").Scan(&f.Version); err != nil {
		return ServerFacts{}, fmt.Errorf("pgdump: server version of %s: %w", tg.Host, err)
	}
	var num int
	if err := c.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&num); err != nil {
		return ServerFacts{}, fmt.Errorf("pgdump: server version of %s: %w", tg.Host, err)
	}
	f.Major = num / 10000
	if f.Major < 10 {
		return ServerFacts{}, fmt.Errorf("pgdump: %s runs PostgreSQL %s; acco needs 10 or later", tg.Host, f.Version)
	}
	rows, err := c.Query(ctx, `SELECT datname FROM pg_database
		WHERE NOT datistemplate AND datallowconn AND datname <> $1 ORDER BY datname`, serviceDatabase)
	if err != nil {
		return ServerFacts{}, fmt.Errorf("pgdump: databases of %s: %w", tg.Host, err)
	}
	f.Databases, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return ServerFacts{}, fmt.Errorf("pgdump: databases of %s: %w", tg.Host, err)
	}
	f.Extensions = make(map[string]map[string]string, len(f.Databases))
	for _, db := range f.Databases {
		exts, err := extensions(ctx, c, tg, db)
		if err != nil {
			return ServerFacts{}, err
		}
		f.Extensions[db] = exts
	}
	return f, nil
}

// extensions returns the extensions of database db and their versions,
// through c when it is connected to db.
func extensions(ctx context.Context, c *pgx.Conn, tg Target, db string) (map[string]string, error) {
	if c.Config().Database != db {
		dc, err := connect(ctx, tg, db)
		if err != nil {
			return nil, err
		}
		defer dc.Close(context.WithoutCancel(ctx))
		c = dc
	}
	rows, err := c.Query(ctx, "SELECT extname, extversion FROM pg_extension")
	if err != nil {
		return nil, fmt.Errorf("pgdump: extensions of database %s on %s: %w", db, tg.Host, err)
	}
	exts := map[string]string{}
	var name, version string
	_, err = pgx.ForEachRow(rows, []any{&name, &version}, func() error {
		exts[name] = version
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pgdump: extensions of database %s on %s: %w", db, tg.Host, err)
	}
	return exts, nil
}
