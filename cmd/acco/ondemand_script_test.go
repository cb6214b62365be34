package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/provision"
	"github.com/accoreboot/acco/provision/ovhdb"
	"github.com/accoreboot/acco/state"
)

// ondemand is a test program standing in for acco db stop until the
// scripts can run it:
//
//	ondemand stop ENV CLUSTER STATUS   put two dump objects in the bucket, delete the
//	                                   cluster through the OVH API (unless STATUS is
//	                                   stopping) and forget it in state, and record
//	                                   the database with STATUS
//	ondemand list PREFIX               print the bucket's keys under PREFIX
//
// It reads the local cloud's variables ($ACCO_STATE, OVH_*) and the
// environments in ./environments.
func ondemand() int {
	ctx := context.Background()
	if err := runOndemand(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "ondemand:", err)
		return 1
	}
	return 0
}

func runOndemand(ctx context.Context, args []string) error {
	blob, err := state.OpenBlob(ctx, os.Getenv("ACCO_STATE"))
	if err != nil {
		return err
	}
	switch {
	case len(args) == 2 && args[0] == "list":
		keys, err := blob.List(ctx, args[1])
		if err != nil {
			return err
		}
		for _, k := range keys {
			fmt.Println(k)
		}
		return nil
	case len(args) == 4 && args[0] == "stop":
	default:
		return errors.New("usage: ondemand stop ENV CLUSTER STATUS | ondemand list PREFIX")
	}
	envName, cluster, status := args[1], args[2], args[3]
	stamp := "20261206T041500Z"
	manifest := state.DumpPrefix(envName, cluster) + stamp + "/manifest.json.sealed"
	dump := state.DumpPrefix(envName, cluster) + stamp + "/acco.dump.sealed"
	for _, k := range []string{manifest, dump} {
		if _, err := blob.Put(ctx, k, []byte("sealed"), ""); err != nil {
			return err
		}
	}
	store := state.NewStore(blob)
	st, etag, err := store.Read(ctx, envName)
	if err != nil {
		return err
	}
	addr := spec.Address(spec.KindDatabase, cluster)
	if status != state.ArchiveStopping {
		env, err := spec.Load("environments", envName, os.LookupEnv)
		if err != nil {
			return err
		}
		db, err := ovhdb.New(ovhdb.Config{Project: env.Project, Lookup: os.LookupEnv})
		if err != nil {
			return err
		}
		r, ok := st.Resource(addr)
		if !ok {
			return fmt.Errorf("%s is not in state", addr)
		}
		if err := db.DeleteCluster(ctx, r.ID); err != nil {
			return err
		}
		for {
			if _, err := db.GetCluster(ctx, r.ID); errors.Is(err, ovhdb.ErrNotFound) {
				break
			} else if err != nil {
				return err
			}
			time.Sleep(20 * time.Millisecond)
		}
		for _, r := range slices.Clone(st.Resources) {
			if r.Address == addr || r.Address == spec.Address(spec.KindDatabaseAdmin, cluster) ||
				strings.HasPrefix(r.Address, spec.KindDatabaseUser+"."+cluster+".") || strings.HasPrefix(r.Address, spec.KindDatabaseDB+"."+cluster+".") {
				st.RemoveResource(r.Address)
			}
		}
		st.Outputs = provision.Outputs(st)
	}
	if st.OnDemand == nil {
		st.OnDemand = map[string]state.DatabaseArchive{}
	}
	st.OnDemand[cluster] = state.DatabaseArchive{Status: status, Since: time.Date(2026, 12, 6, 4, 15, 0, 0, time.UTC), Manifest: manifest,
		Dumps: []state.ArchivedDump{{Database: "acco", Key: dump, Size: 6, SHA256: strings.Repeat("0", 64)}}}
	_, err = store.Write(ctx, envName, st, etag)
	return err
}
