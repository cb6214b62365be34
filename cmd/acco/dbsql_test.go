package main

import (
	"context"
	"fmt"
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
	if err := runDBSQL(os.Args[1], os.Args[2], os.Args[3], os.Args[4]); err != nil {
		fmt.Fprintln(os.Stderr, "dbsql:", err)
		return 1
	}
	return 0
}

func runDBSQL(envName, cluster, db, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env, err := spec.Load("environments", envName, os.LookupEnv)
	if err != nil {
		return err
	}
	blob, err := state.OpenBlob(ctx, os.Getenv("ACCO_STATE"))
	if err != nil {
		return err
	}
	sealer, err := state.NewSealer(os.Getenv("ACCO_STATE_KEY"))
	if err != nil {
		return err
	}
	api, err := ovhdb.New(ovhdb.Config{Project: env.Project})
	if err != nil {
		return err
	}
	s, err := flows.Open(ctx, env, state.NewStore(blob), sealer, provision.Clients{DB: api}, false)
	if err != nil {
		return err
	}
	admin, err := s.AdminLogin(ctx, cluster)
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
		fmt.Println(strings.Join(cols, "|"))
	}
	return rows.Err()
}
