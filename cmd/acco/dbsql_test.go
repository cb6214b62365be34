package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/accoreboot/acco/configure"
	"github.com/accoreboot/acco/flows"
	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/provision"
	"github.com/accoreboot/acco/provision/ovhdb"
	"github.com/accoreboot/acco/state"
)

// dbsql is the testscript command `dbsql ENV CLUSTER DB SQL`: it runs SQL
// as the cluster's admin (the login acco records in state, reset through
// the local cloud's OVH API the first time, as acco configure does) and
// prints each row's columns separated by "|". The environments are read
// from ./environments and state from ACCO_STATE.
func dbsql() int {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: dbsql ENV CLUSTER DB SQL")
		return 2
	}
	if err := runDBSQL(os.Stdout, "environments", os.Args[1], os.Args[2], os.Args[3], os.Args[4]); err != nil {
		fmt.Fprintln(os.Stderr, "dbsql:", err)
		return 1
	}
	return 0
}

// runDBSQL runs sql in database db of cluster of envName (environments
// read from envDir) as the cluster's admin and prints the rows on w.
func runDBSQL(w io.Writer, envDir, envName, cluster, db, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	admin, err := adminLogin(ctx, envDir, envName, cluster)
	if err != nil {
		return err
	}
	conn, err := configure.ConnectAdmin(ctx, nil, admin, db)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return err
		}
		cols := make([]string, len(vals))
		for i, v := range vals {
			cols[i] = fmt.Sprint(v)
		}
		fmt.Fprintln(w, strings.Join(cols, "|"))
	}
	return rows.Err()
}

// adminLogin is the admin login of a cluster, as acco records it in state
// (reset through the local cloud's OVH API the first time), with state at
// ACCO_STATE and the key in ACCO_STATE_KEY.
func adminLogin(ctx context.Context, envDir, envName, cluster string) (configure.DBAdmin, error) {
	env, err := spec.Load(envDir, envName, os.LookupEnv)
	if err != nil {
		return configure.DBAdmin{}, err
	}
	blob, err := state.OpenBlob(ctx, os.Getenv("ACCO_STATE"))
	if err != nil {
		return configure.DBAdmin{}, err
	}
	sealer, err := state.NewSealer(os.Getenv("ACCO_STATE_KEY"))
	if err != nil {
		return configure.DBAdmin{}, err
	}
	api, err := ovhdb.New(ovhdb.Config{Project: env.Project})
	if err != nil {
		return configure.DBAdmin{}, err
	}
	s, err := flows.Open(ctx, env, state.NewStore(blob), sealer, provision.Clients{DB: api}, false)
	if err != nil {
		return configure.DBAdmin{}, err
	}
	return s.AdminLogin(ctx, cluster)
}
