package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/provision"
	"github.com/accoreboot/acco/state"
)

// planFlags are the flags of acco plan.
type planFlags struct {
	out          string
	targets      []string
	replace      []string
	refreshOnly  bool
	detailedExit bool
	lockTimeout  time.Duration
	rollback     rollbackFlags
}

func (a *app) planCommand() *cobra.Command {
	var f planFlags
	cmd := &cobra.Command{
		Use:   "plan ENV",
		Short: "Show what apply would change in the cloud, and what changed outside acco",
		Long: `Plan reads what is live in the environment's project (one list call per
resource type), compares it with the YAML and the state, and prints the
changes apply would make, with the reason of every replacement, and the drift
(what changed outside acco). Names of flavors, images, networks and database
offers are resolved now, so a typo fails here and not halfway through apply.

With --json it prints one JSON document (format_version 1); secrets show as
"(sensitive)". With --out it saves the plan for acco apply ENV FILE, which
applies exactly that plan and refuses it if the state moved since.

An on-demand database stopped by acco db stop is neither drift nor created:
the plan says since when it is stopped and that acco db start brings it back.
One whose stop was interrupted is left alone until acco db stop runs again.

Exit codes: 0 success (with --detailed-exitcode: no changes), 1 error,
2 changes or drift present, or a database stop left unfinished (with
--detailed-exitcode), 3 the lock is held.`,
		Example: `  acco plan test
  acco plan prod --detailed-exitcode
  acco plan test --out test.plan && acco apply test test.plan
  acco plan test --target instance.app --replace instance.app
  acco plan test --json | jq '.summary'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			checkAddrs := func(ctx context.Context, env *spec.Environment, blob state.Blob) error {
				return checkAddresses(ctx, env, blob, map[string][]string{"--target": f.targets, "--replace": f.replace})
			}
			r, err := a.startRun(cmd.Context(), args[0], "plan", f.lockTimeout, f.rollback.storeOptions(), checkAddrs)
			if err != nil {
				return err
			}
			defer r.release()
			p, err := r.makePlan(provision.PlanOptions{RefreshOnly: f.refreshOnly, Targets: f.targets, Replace: f.replace, ResetUnknownUsers: f.rollback.resetUnknownUsers})
			if err != nil {
				return err
			}
			if f.out != "" {
				if err := writePlanFile(f.out, p); err != nil {
					return err
				}
			}
			if a.json {
				if err := a.printJSON(p.JSON()); err != nil {
					return err
				}
			} else if err := p.Render(a.out); err != nil {
				return err
			}
			if f.out != "" {
				fmt.Fprintf(a.err, "Saved the plan to %s. Apply exactly this plan with: acco apply %s %s\n", f.out, args[0], f.out)
			}
			if f.detailedExit && p.Unsettled() {
				return &codedError{code: exitChanges, err: fmt.Errorf("changes present"), reported: true}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.out, "out", "", "save the plan to `FILE` for acco apply ENV FILE")
	fl.StringArrayVar(&f.targets, "target", nil, "plan only this `ADDR` and what it depends on (repeatable)")
	fl.StringArrayVar(&f.replace, "replace", nil, "replace this `ADDR` even if it is up to date (repeatable)")
	fl.BoolVar(&f.refreshOnly, "refresh-only", false, "plan no cloud change: only record in state what changed outside acco")
	fl.BoolVar(&f.detailedExit, "detailed-exitcode", false, "exit 2 when there are changes or drift, 0 when there are none")
	fl.DurationVar(&f.lockTimeout, "lock-timeout", 0, "wait this long for the state lock (default: fail at once)")
	f.rollback.register(cmd)
	return cmd
}
