package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/accoreboot/acco/configure"
	"github.com/accoreboot/acco/flows"
	"github.com/accoreboot/acco/provision"
	"github.com/accoreboot/acco/state"
)

// planConnectWait bounds how long deploy's plan waits for the SSH of a
// host that exists: it is not booting, and the plan should not hang on
// a host the cloud changes may be about to repair.
const planConnectWait = 30 * time.Second

type deployFlags struct {
	applyFlags
	identity      string
	artifact      string
	connectWait   time.Duration
	diff          bool
	noVerify      bool
	verifyTimeout time.Duration
}

func (a *app) deployCommand() *cobra.Command {
	var f deployFlags
	cmd := &cobra.Command{
		Use:   "deploy ENV",
		Short: "Apply the cloud changes, configure the host and verify the data flow, under one lock",
		Long: `Deploy is apply, configure and verify in one run, under one lock of the
environment's state. It plans first, both halves together: the cloud changes
(as acco plan shows them) and the host changes (files, packages, units,
restarts and database steps, as acco configure --check shows them). A host
that does not exist yet, or that the plan replaces, is "configured from
nothing after create". Then it asks once (--auto-approve for scripts),
applies the cloud changes, configures the host and runs the checks of acco
verify (unless --no-verify).

When neither the cloud nor the host has anything to change, deploy says so
and exits 0 without asking. Without a terminal to ask on and without
--auto-approve, it shows the plan and stops there, changing nothing.

With --json, stdout carries one JSON object per line: first the plan
(type "plan": the plan document of acco plan --json with a "hosts" list),
then the events of apply and configure (apply_start, apply_progress,
apply_complete, apply_errored, diagnostic), the verify steps (verify_step),
a summary object per phase and a last summary of operation "deploy".

Exit codes: 0 success (or nothing to do), 1 error, 3 the lock is held.`,
		Example: `  acco deploy test
  acco deploy prod --diff
  acco deploy local --auto-approve --json | jq -c 'select(.type=="summary")'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runDeploy(cmd.Context(), args[0], f)
		},
	}
	f.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.identity, "identity", "", "the deploy keypair's private key `FILE` (env ACCO_SSH_KEY)")
	fl.StringVar(&f.artifact, "artifact", "", "the backend archive `FILE` (default: services.backend.artifact)")
	fl.DurationVar(&f.connectWait, "connect-timeout", 5*time.Minute, "keep retrying SSH this long after apply (a new instance is still booting); the plan waits at most 30s")
	fl.BoolVar(&f.diff, "diff", false, "show the unified diff of every file the host plan changes (secrets masked)")
	fl.BoolVar(&f.noVerify, "no-verify", false, "do not run the checks of acco verify at the end")
	fl.DurationVar(&f.verifyTimeout, "verify-timeout", 2*time.Minute, "how long each waiting step of the verification may take")
	return cmd
}

// deployHostPlan is one host in deploy's plan object.
type deployHostPlan struct {
	Host    string `json:"host"`
	Address string `json:"address"`
	// FromNothing is set for a host that does not exist yet (or is
	// replaced): its changes are known once it is there.
	FromNothing bool                `json:"from_nothing"`
	Reason      string              `json:"reason,omitempty"`
	Plan        *configure.HostPlan `json:"plan,omitempty"`
	Database    []configure.DBStep  `json:"database,omitempty"`
	Changes     int                 `json:"changes"`
	Restarts    int                 `json:"restarts"`
}

// deployPlanLine is the first object of deploy's JSON stream: the cloud
// plan (the document of acco plan --json) and the host plans.
type deployPlanLine struct {
	Type      string `json:"type"`
	Operation string `json:"operation"`
	provision.JSONPlan
	Hosts []deployHostPlan `json:"hosts"`
}

// deploySummaryLine is the last object of deploy's JSON stream.
type deploySummaryLine struct {
	Type        string            `json:"type"`
	Operation   string            `json:"operation"`
	NothingToDo bool              `json:"nothing_to_do"`
	Cloud       provision.Summary `json:"cloud"`
	HostChanges int               `json:"host_changes"`
	Restarts    int               `json:"restarts"`
	Verified    bool              `json:"verified"`
}

func (a *app) runDeploy(ctx context.Context, name string, f deployFlags) error {
	if f.parallelism < 1 {
		return fmt.Errorf("--parallelism %d: give at least 1", f.parallelism)
	}
	if f.verifyTimeout <= 0 {
		return errors.New("--verify-timeout must be positive")
	}
	sealer, err := a.sealer()
	if err != nil {
		return err
	}
	if sealer == nil {
		return withHint(errors.New("ACCO_STATE_KEY is not set: deploy seals and reads the environment's secrets in state"),
			"export ACCO_STATE_KEY (the same key every operator of %s uses)", name)
	}
	r, err := a.startRun(ctx, name, "deploy", f.lockTimeout, f.rollback.storeOptions())
	if err != nil {
		return err
	}
	defer r.release()
	env := r.env
	a.printWarnings(env)
	if a.json {
		for _, w := range env.Warnings() {
			a.jsonLine(diagnosticLine{Type: "diagnostic", Severity: "warning", Summary: w.Error()})
		}
	}
	signer, err := a.deploySigner(env, f.identity)
	if err != nil {
		return err
	}
	services := configure.ServicesOptions{Artifact: f.artifact, Offline: env.Services.Offline}

	// One plan: the cloud, then the host as it will be after the cloud
	// changes.
	p, err := r.makePlan(provision.PlanOptions{ResetUnknownUsers: f.rollback.resetUnknownUsers})
	if err != nil {
		return err
	}
	st, _, err := r.store.Read(r.ctx, name)
	if errors.Is(err, state.ErrNotFound) {
		st, err = nil, nil
	}
	if err != nil {
		return fmt.Errorf("reading the state of %s: %w", name, err)
	}
	h := a.human()
	host := deployHostPlan{Host: env.Services.Host, Address: "host." + env.Services.Host}
	host.FromNothing, host.Reason = flows.HostFromNothing(env, st, p)
	h.printf("Cloud:\n")
	if err := p.Render(h.w); err != nil {
		return err
	}
	h.printf("\nHost %s:\n", host.Address)
	if host.FromNothing {
		h.printf("  + %s  %s\n", host.Address, host.Reason)
	} else {
		s, err := flows.Open(r.ctx, env, r.store, sealer, r.clients, true)
		if err != nil {
			return err
		}
		view := &configureView{a: a, plan: true}
		results, checkErr := s.Configure(r.ctx, signer, flows.ConfigureOptions{
			Check: true, Diff: f.diff, Services: services, ConnectWait: min(f.connectWait, planConnectWait),
			Notes:  func(n string) { h.printf("%s\n", n) },
			Events: view.event,
		})
		sum := view.report(results, checkErr, true)
		switch {
		case checkErr == nil:
			res := results[0]
			host.Plan, host.Database = res.Plan, res.Database
			host.Changes, host.Restarts = sum.Changes, sum.Restarts
		case errors.Is(checkErr, configure.ErrHostKeyMismatch):
			return a.configureError(env, checkErr, nil)
		case results != nil && results[0] != nil && results[0].Plan == nil && p.HasChanges():
			// Unreachable now; the cloud changes may be what it needs.
			host.Reason = fmt.Sprintf("not reachable now (%v): configured after the cloud changes", checkErr)
			h.printf("  ? %s  %s\n", host.Address, host.Reason)
		default:
			return withHint(checkErr, "deploy plans the host before changing anything, and nothing was changed; acco configure %s --check shows the same", name)
		}
	}
	if a.json {
		a.jsonLine(deployPlanLine{Type: "plan", Operation: "deploy", JSONPlan: p.JSON(), Hosts: []deployHostPlan{host}})
	}
	hostChanges := host.FromNothing || host.Reason != "" || host.Changes > 0 || host.Restarts > 0
	if !p.HasChanges() && !hostChanges {
		h.printf("\nNothing to do: %s matches its YAML, in the cloud and on the host.\n", name)
		if a.json {
			a.jsonLine(deploySummaryLine{Type: "summary", Operation: "deploy", NothingToDo: true})
		}
		return nil
	}
	if !f.autoApprove {
		if !isTerminal(a.in) {
			return withHint(errors.New("refusing to ask for confirmation: stdin is not a terminal; nothing was changed"), "pass --auto-approve to deploy without asking")
		}
		ok, err := a.confirm(h.w, fmt.Sprintf("\nDo you want to deploy these changes to %s? Only 'yes' is accepted: ", name))
		if err != nil {
			return err
		}
		if !ok {
			return &codedError{code: exitError, err: errors.New("deploy cancelled")}
		}
	}

	out := deploySummaryLine{Type: "summary", Operation: "deploy", Cloud: p.Summary()}
	if p.HasChanges() {
		h.printf("\n")
		if err := a.applyPlan(r, p, "apply", f.parallelism); err != nil {
			return err
		}
	}

	h.printf("\nConfiguring %s:\n", host.Address)
	s, err := flows.Open(r.ctx, env, r.store, sealer, r.clients, false)
	if err != nil {
		return err
	}
	view := &configureView{a: a}
	results, runErr := s.Configure(r.ctx, signer, flows.ConfigureOptions{
		Services: services, ConnectWait: f.connectWait,
		Notes:  func(n string) { h.printf("%s\n", n) },
		Events: view.event,
	})
	sum := view.report(results, runErr, false)
	if runErr != nil {
		return a.configureError(env, runErr, results)
	}
	out.HostChanges, out.Restarts = sum.Changes, sum.Restarts

	if !f.noVerify {
		h.printf("\nVerifying %s: the flow from a tracker to the database, the backend and PowerSync.\n", name)
		vs, err := flows.Open(r.ctx, env, r.store, sealer, r.clients, true)
		if err != nil {
			return err
		}
		if err := a.verifyFlow(r.ctx, vs, signer, flows.VerifyOptions{Timeout: f.verifyTimeout, ConnectWait: f.connectWait}); err != nil {
			return err
		}
		out.Verified = true
	}
	h.printf("\nDeploy complete: %s.\n", deployDone(out))
	if a.json {
		a.jsonLine(out)
	}
	return nil
}

// deployDone says what a deploy did, in a few words.
func deployDone(s deploySummaryLine) string {
	c := s.Cloud
	msg := fmt.Sprintf("cloud %d created, %d updated, %d replaced, %d deleted; host %d changes, %d restarts",
		c.Create, c.Update, c.Replace, c.Delete, s.HostChanges, s.Restarts)
	if s.Verified {
		msg += "; verified"
	}
	return msg
}
