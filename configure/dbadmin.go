package configure

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ConnectAdmin logs in to database db of a cluster as its admin, verifying
// the server's certificate against the cluster's CA, over dial (nil: a
// direct connection).
func ConnectAdmin(ctx context.Context, dial DialFunc, a DBAdmin, db string) (*pgx.Conn, error) {
	return connectDB(ctx, dial, a, db)
}

// UserTables counts the tables, views and sequences of a database outside
// the system schemas and those of extensions (TimescaleDB's internals).
func UserTables(ctx context.Context, conn *pgx.Conn) (int, error) {
	var n int
	err := conn.QueryRow(ctx, `
SELECT count(*) FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass AND d.objid = n.oid AND d.deptype = 'e')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("counting tables: %w", err)
	}
	return n, nil
}

// DropEmptySchemas drops the schemas of a database that hold nothing,
// other than public and those of the system and of extensions: what an
// interrupted restore leaves when it made the schemas first. DROP SCHEMA
// without CASCADE refuses a schema that holds anything.
func DropEmptySchemas(ctx context.Context, conn *pgx.Conn) ([]string, error) {
	rows, err := conn.Query(ctx, `
SELECT n.nspname FROM pg_namespace n
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'public')
  AND n.nspname NOT LIKE 'pg\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass AND d.objid = n.oid AND d.deptype = 'e')
ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("listing schemas: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("listing schemas: %w", err)
	}
	for _, n := range names {
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+qi(n)); err != nil {
			return nil, fmt.Errorf("dropping schema %s left by an interrupted restore: %w", n, err)
		}
	}
	return names, nil
}
