package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/accoreboot/acco/provision"
	"github.com/accoreboot/acco/state"
)

// applyFlags are the flags of acco apply and acco destroy.
type applyFlags struct {
	autoApprove bool
	parallelism int
	lockTimeout time.Duration
	rollback    rollbackFlags
	// deleteDumps is acco destroy's --delete-dumps.
	deleteDumps bool
}

func (f *applyFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.BoolVar(&f.autoApprove, "auto-approve", false, "do not ask for confirmation (required when stdin is not a terminal)")
	fl.IntVar(&f.parallelism, "parallelism", 10, "send at most this many cloud API requests at once (operations waiting for the cloud hold none)")
	fl.DurationVar(&f.lockTimeout, "lock-timeout", 0, "wait this long for the state lock (default: fail at once)")
	f.rollback.register(cmd)
}

func (a *app) applyCommand() *cobra.Command {
	var f applyFlags
	cmd := &cobra.Command{
		Use:   "apply ENV [PLANFILE]",
		Short: "Make the cloud match the environment's YAML",
		Long: `Apply takes the environment's lock, plans (or reads the plan saved by acco plan
--out, refused if the state moved since), shows the plan and asks for
confirmation unless --auto-approve, then applies it: every operation starts
as soon as what it depends on is done (what depends on a resource is deleted
before it; a new database cluster is ordered while its instances boot, and
gets their addresses once they have them), with at most --parallelism cloud
requests in flight; waits for servers share one listing per poll. State is
written before and after every resource operation (the writes of operations
that end together are grouped into one), so a run that is killed is followed
by one that adopts what it created. The first Ctrl-C
stops starting new operations and saves state; the second exits at once.

With --json, stdout carries one JSON object per line (apply_start,
apply_progress, apply_complete, apply_errored, diagnostic, summary) and the
human text goes to stderr.`,
		Example: `  acco apply test
  acco apply prod --auto-approve --parallelism 4
  acco plan test --out test.plan && acco apply test test.plan`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := ""
			if len(args) == 2 {
				file = args[1]
			}
			return a.runApply(cmd.Context(), args[0], file, false, f)
		},
	}
	f.register(cmd)
	return cmd
}

func (a *app) destroyCommand() *cobra.Command {
	var f applyFlags
	cmd := &cobra.Command{
		Use:   "destroy ENV",
		Short: "Delete every cloud resource of the environment",
		Long: `Destroy deletes what the environment has in the cloud, in reverse dependency
order: database users and databases, clusters, instances, security groups,
keypairs. A database with protect: true refuses: lift the protection in the
YAML and apply first.

An on-demand database stopped by acco db stop has no cluster to delete; its
dumps stay in the state bucket, and its record in state (so that acco db
status still lists them and acco db start can restore them after a new
apply), unless --delete-dumps: then, once everything else is destroyed, the
dumps and the record are deleted too.`,
		Example: `  acco destroy test
  acco destroy test --auto-approve
  acco destroy preprod --delete-dumps`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runApply(cmd.Context(), args[0], "", true, f)
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&f.deleteDumps, "delete-dumps", false, "also delete the dumps that acco db stop kept in the state bucket for stopped databases")
	return cmd
}

// runApply is apply and destroy.
func (a *app) runApply(ctx context.Context, envName, planFile string, destroy bool, f applyFlags) error {
	op := "apply"
	if destroy {
		op = "destroy"
	}
	if f.parallelism < 1 {
		return fmt.Errorf("--parallelism %d: give at least 1", f.parallelism)
	}
	if !f.autoApprove && !isTerminal(a.in) {
		return withHint(errors.New("refusing to ask for confirmation: stdin is not a terminal"), "pass --auto-approve to %s without asking", op)
	}
	r, err := a.startRun(ctx, envName, op, f.lockTimeout, f.rollback.storeOptions())
	if err != nil {
		return err
	}
	defer r.release()
	var p *provision.Plan
	if planFile != "" {
		if p, err = readPlanFile(planFile, envName); err != nil {
			return err
		}
	} else if p, err = r.makePlan(provision.PlanOptions{Destroy: destroy, DeleteDumps: f.deleteDumps, ResetUnknownUsers: f.rollback.resetUnknownUsers}); err != nil {
		return err
	}
	h := a.human()
	if err := p.Render(h.w); err != nil {
		return err
	}
	if !p.HasChanges() {
		return nil
	}
	if !f.autoApprove {
		ok, err := a.confirm(h.w, fmt.Sprintf("\nDo you want to %s these changes to %s? Only 'yes' is accepted: ", op, envName))
		if err != nil {
			return err
		}
		if !ok {
			return &codedError{code: exitError, err: fmt.Errorf("%s cancelled", op)}
		}
	}
	return a.applyPlan(r, p, op, f.parallelism)
}

// applyPlan applies p under the lock r holds, showing its progress, and
// reports what was done. It is apply, destroy and the cloud phase of
// deploy.
func (a *app) applyPlan(r *planRun, p *provision.Plan, op string, parallelism int) error {
	envName := r.env.Name
	sealer, err := a.sealer()
	if err != nil {
		return err
	}
	version, _ := buildVersion()
	view := newApplyView(a, op)
	// The first interrupt cancels r.ctx: stop starting operations but let
	// the ones in flight finish and record (the second interrupt exits).
	// The state the plan was made from is reused when this run has not
	// written it since (the lock is held throughout).
	var from *provision.ReadState
	if rd := r.read; rd != nil && (rd.State == nil && r.store.LastETag(envName) == "" || rd.State != nil && rd.ETag != "" && r.store.LastETag(envName) == strings.Trim(rd.ETag, `"`)) {
		from = rd
	}
	r.read = nil
	rep, applyErr := provision.Apply(context.WithoutCancel(r.ctx), r.clients, r.store, p, provision.ApplyOptions{
		Parallelism: parallelism, Sealer: sealer, OnEvent: view.event, Stop: r.ctx.Done(), AccoVersion: version, Dumps: r.blob, From: from,
	})
	if rep == nil {
		if errors.Is(applyErr, provision.ErrStalePlan) {
			return withHint(applyErr, "make a new plan: acco plan %s --out FILE", envName)
		}
		if errors.Is(applyErr, provision.ErrNoSealer) {
			return withHint(applyErr, "export ACCO_STATE_KEY (the same key every operator of %s uses)", envName)
		}
		return applyErr
	}
	if cause := context.Cause(r.ctx); applyErr != nil && errors.Is(cause, state.ErrLockLost) {
		// Stopped by the lost lease, not by the operator.
		applyErr = fmt.Errorf("%w; %s stopped starting cloud operations: what finished is saved in state", cause, op)
	}
	view.report(rep, applyErr)
	if applyErr != nil {
		return &codedError{code: exitError, err: applyErr, reported: a.json}
	}
	return nil
}

// confirm asks a yes/no question on the terminal.
func (a *app) confirm(w io.Writer, question string) (bool, error) {
	fmt.Fprint(w, question)
	line, err := bufio.NewReader(a.in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("reading the answer: %w", err)
	}
	return strings.TrimSpace(line) == "yes", nil
}

// isTerminal reports whether r is a terminal (not a pipe, a file or
// /dev/null).
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// applyView shows an apply: progress lines on the terminal (stderr under
// --json) and, with --json, one JSON object per line on stdout.
type applyView struct {
	a  *app
	op string
	mu sync.Mutex
}

func newApplyView(a *app, op string) *applyView { return &applyView{a: a, op: op} }

// verbs are the words of the progress lines, per action.
var verbs = map[provision.Action][2]string{
	provision.Create:  {"Creating", "Creation"},
	provision.Update:  {"Modifying", "Modifications"},
	provision.Replace: {"Replacing", "Replacement"},
	provision.Delete:  {"Destroying", "Destruction"},
	provision.Read:    {"Recording", "Recording"},
}

func (v *applyView) event(e provision.Event) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.a.json {
		v.a.jsonLine(e)
	}
	w := v.a.err
	verb := verbs[e.Action]
	elapsed := formatElapsed(time.Duration(e.Elapsed * float64(time.Second)))
	id := ""
	if e.ID != "" {
		id = " [id=" + e.ID + "]"
	}
	switch e.Type {
	case provision.EventStart:
		fmt.Fprintf(w, "%s: %s...%s\n", e.Address, verb[0], id)
	case provision.EventProgress:
		status := ""
		if e.Status != "" {
			status = ", " + e.Status
		}
		fmt.Fprintf(w, "%s: Still %s... [%s elapsed%s]\n", e.Address, strings.ToLower(verb[0]), elapsed, status)
	case provision.EventComplete:
		fmt.Fprintf(w, "%s: %s complete after %s%s\n", e.Address, verb[1], elapsed, id)
	case provision.EventErrored:
		fmt.Fprintf(w, "%s: %s failed after %s: %s\n", e.Address, verb[1], elapsed, e.Error)
	}
}

// jsonLine writes one JSON object on one line of stdout (the --json
// stream of long commands), format_version last.
func (a *app) jsonLine(x any) {
	data, err := json.Marshal(x)
	if err != nil {
		return
	}
	if v, err := versionedLine(data); err == nil {
		data = v
	}
	_, _ = a.out.Write(append(data, '\n'))
}

// summaryLine is the last object of the JSON stream.
type summaryLine struct {
	Type      string             `json:"type"`
	Operation string             `json:"operation"`
	Summary   provision.Summary  `json:"summary"`
	Results   []provision.Result `json:"results"`
	Error     string             `json:"error,omitempty"`
}

// diagnosticLine reports an error in the JSON stream.
type diagnosticLine struct {
	Type     string `json:"type"`
	Severity string `json:"severity"`
	Summary  string `json:"summary"`
	Address  string `json:"address,omitempty"`
}

// report prints the per-resource report, including what finished before a
// failure.
func (v *applyView) report(rep *provision.Report, applyErr error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	var done provision.Summary
	for _, r := range rep.Results {
		if r.Status != provision.ResultDone {
			continue
		}
		switch r.Action {
		case provision.Create:
			done.Create++
		case provision.Update:
			done.Update++
		case provision.Replace:
			done.Replace++
		case provision.Delete:
			done.Delete++
		case provision.NoOp, provision.Read:
		}
	}
	if v.a.json {
		for _, r := range rep.Results {
			if r.Status == provision.ResultFailed {
				v.a.jsonLine(diagnosticLine{Type: "diagnostic", Severity: "error", Summary: r.Error, Address: r.Address})
			}
		}
		s := summaryLine{Type: "summary", Operation: v.op, Summary: done, Results: rep.Results}
		if applyErr != nil {
			s.Error = applyErr.Error()
		}
		v.a.jsonLine(s)
	}
	h := v.a.human()
	title := "Apply complete"
	if v.op == "destroy" {
		title = "Destroy complete"
	}
	if applyErr != nil {
		title = strings.ToUpper(v.op[:1]) + v.op[1:] + " incomplete"
	}
	h.printf("\n%s: %d created, %d updated, %d replaced, %d deleted.\n", title, done.Create, done.Update, done.Replace, done.Delete)
	width := 0
	for _, r := range rep.Results {
		width = max(width, len(r.Address))
	}
	for _, r := range rep.Results {
		line := fmt.Sprintf("  %-*s  %-7s  %-7s  %s", width, r.Address, r.Action, r.Status, formatElapsed(time.Duration(r.Elapsed*float64(time.Second))))
		if r.Error != "" {
			line += "  " + r.Error
		}
		h.printf("%s\n", strings.TrimRight(line, " "))
	}
}

// formatElapsed writes a duration as 1m30s, 12s or 0.4s.
func formatElapsed(d time.Duration) string {
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
