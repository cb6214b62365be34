package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/provision"
	"github.com/accoreboot/acco/state"
)

// importView is the JSON document of acco import.
type importView struct {
	Env     string `json:"env"`
	Address string `json:"address"`
	ID      string `json:"id"`
	// What is the cloud's word and name for it ("server ui-app").
	What string `json:"what"`
	// Recorded are the addresses written to state.
	Recorded []string `json:"recorded"`
	// UnknownUsers are the cluster's users the YAML declares, not
	// recorded: their passwords are unknown (apply --reset-unknown-users).
	UnknownUsers []string `json:"unknown_users"`
	Serial       uint64   `json:"serial"`
}

func (a *app) importCommand() *cobra.Command {
	var lockTimeout time.Duration
	var rollback rollbackFlags
	cmd := &cobra.Command{
		Use:   "import ENV ADDR ID",
		Short: "Bring a resource made outside acco (the OVH control panel) under management",
		Long: `Import records in the environment's state that the existing resource ID is
the YAML's resource ADDR: a server (instance.NAME), a security group
(security_group.NAME), a keypair (keypair.NAME, whose ID is its name) or a
managed PostgreSQL cluster (database.NAME). acco plan ENV lists the
resources of the project that could be adopted so, with the command to run;
nothing is adopted without it.

Import takes the environment's lock like apply, checks that ADDR is declared
and not yet in state, that ID exists in the project, is of ADDR's kind, is
not managed at another address and carries no other environment's marks,
then records it as observed. It changes nothing in the cloud: the next plan
shows how it differs from the YAML as ordinary changes (a rule to add, a
server, group or cluster renamed to acco-ENV-NAME) for apply to make. A
keypair keeps its name: Nova cannot rename one.

A cluster comes with the logical databases it already has. The database
users it already has are not recorded: OVH never shows a password again, so
plan reports them and apply resets their passwords only when run with
--reset-unknown-users (the services using them need acco configure then).

Exit codes: 0 imported, 1 error (nothing recorded), 3 the lock is held.`,
		Example: `  acco plan test            # lists the adoptable resources and their IDs
  acco import test instance.app 6f1c2a9e-0d44-4f1b-9a52-3c1b7d2e8f10
  acco import test database.main 0f6b1c3e-5d2a-4e8f-9b7c-1a2d3e4f5a6b --json`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runImport(cmd.Context(), args[0], args[1], args[2], lockTimeout, rollback)
		},
	}
	cmd.Flags().DurationVar(&lockTimeout, "lock-timeout", 0, "wait this long for the state lock (default: fail at once)")
	cmd.Flags().BoolVar(&rollback.allowRollback, "allow-rollback", false, "accept a state older than the environment's history (a deliberate rollback); it is written at a serial above the newest")
	return cmd
}

func (a *app) runImport(ctx context.Context, envName, addr, id string, lockTimeout time.Duration, rollback rollbackFlags) error {
	checkAddr := func(_ context.Context, env *spec.Environment, _ state.Blob) error {
		if !slices.Contains(env.Addresses(), addr) {
			return fmt.Errorf("%s is not a resource of environment %s (addresses look like instance.app, database.main); acco plan %s lists the adoptable resources with the command to import each", addr, envName, envName)
		}
		return nil
	}
	r, err := a.startRun(ctx, envName, "import", lockTimeout, rollback.storeOptions(), checkAddr)
	if err != nil {
		return err
	}
	defer r.release()
	obs, err := provision.Observe(r.ctx, r.clients, r.env.Name)
	if err != nil {
		return fmt.Errorf("reading what is live in %s: %w", r.env.Name, err)
	}
	st, etag, err := r.store.Read(r.ctx, r.env.Name)
	switch {
	case errors.Is(err, state.ErrNotFound):
		version, _ := buildVersion()
		st, etag = state.New(r.env.Name, version), ""
	case err != nil:
		return rollbackHint(fmt.Errorf("reading the state of %s: %w", r.env.Name, err))
	}
	// The cluster's users and databases, and those of the clusters already
	// imported, which the plan made for the import needs.
	if err := provision.ObserveClusters(r.ctx, r.clients, obs, append(stateIDs(st, spec.KindDatabase), id)...); err != nil {
		return fmt.Errorf("reading what is live in %s: %w", r.env.Name, err)
	}
	keys, err := provision.PublicKeys(r.env)
	if err != nil {
		return err
	}
	imp, err := provision.ImportResource(provision.Inputs{Env: r.env, PublicKeys: keys, State: st, Observed: obs}, addr, id)
	if err != nil {
		return err
	}
	view := importView{Env: r.env.Name, Address: addr, ID: id, What: imp.What, Recorded: []string{}, UnknownUsers: imp.UnknownUsers}
	if view.UnknownUsers == nil {
		view.UnknownUsers = []string{}
	}
	for _, res := range imp.Resources {
		st.SetResource(res)
		view.Recorded = append(view.Recorded, res.Address)
	}
	st.Outputs = provision.Outputs(st)
	if _, err := r.store.Write(r.ctx, r.env.Name, st, etag); err != nil {
		return fmt.Errorf("writing the state of %s: %w", r.env.Name, err)
	}
	view.Serial = st.Serial
	if a.json {
		return a.printJSON(view)
	}
	fmt.Fprintf(a.out, "Imported %s (id %s) as %s: recorded in the state of %s (%s). Nothing changed in the cloud.\n",
		imp.What, id, addr, r.env.Name, strings.Join(view.Recorded, ", "))
	if len(imp.UnknownUsers) > 0 {
		fmt.Fprintf(a.out, "The cluster already has the user(s) %s: acco does not know their passwords and did not record them. acco apply %s --reset-unknown-users resets and adopts them (the services using them break until acco configure %s).\n",
			strings.Join(imp.UnknownUsers, ", "), r.env.Name, r.env.Name)
	}
	fmt.Fprintf(a.out, "Run acco plan %s to see how it differs from the YAML; acco apply %s makes the changes.\n", r.env.Name, r.env.Name)
	return nil
}
