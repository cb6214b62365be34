package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"

	"github.com/accoreboot/acco/configure"
	"github.com/accoreboot/acco/flows"
	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/provision"
	"github.com/accoreboot/acco/state"
)

type configureFlags struct {
	check        bool
	autoApprove  bool
	verbose      bool
	diff         bool
	detailedExit bool
	identity     string
	artifact     string
	lockTimeout  time.Duration
	connectWait  time.Duration
	// op and before, when set, make the run another command's (secrets
	// rotate): op names the lock's operation, and before runs under the
	// lock on the opened state, before the inputs are read.
	op     string
	before func(ctx context.Context, s *flows.Session) error
}

func (a *app) configureCommand() *cobra.Command {
	var f configureFlags
	cmd := &cobra.Command{
		Use:   "configure ENV",
		Short: "Configure the services host over SSH: packages, files, units, database",
		Long: `Configure takes the environment's lock and configures the services host (the
instance named by services.host, reached at its IPv4 address from state) over
SSH, in place of the Ansible roles common, emqx, powersync and node.

The host key must match the one pinned in state; on first contact it must
match a key the instance printed on its console (read through Nova), and it
is then pinned. One round trip learns what the host has; only what differs is
written (temp file, validation, rename); each changed service is restarted
once and must pass its health gate before the next step. A restart owed by
a run that failed or was killed is made by the next run. The database
bootstrap (extensions, positions hypertable, grants, PowerSync publication)
runs through an SSH tunnel via the host, as the cluster's admin.

Secrets come from state, sealed with ACCO_STATE_KEY: the database users'
passwords recorded by apply, and the services' own secrets (EMQX dashboard
password and cookie, PowerSync API token, MQTT password), generated on the
first run. The cluster's admin password is reset once and recorded.

--check changes nothing (on the host, in the database or in state) and shows
what a run would do; --diff adds the files' unified diffs, secrets masked.
Where a database is protected (protect: true, as prod's), configure first
shows what it would change, as --check does, and asks before changing
anything, unless --auto-approve; without a terminal to ask on it refuses
before connecting. --check never asks.

Database steps that wait for a table the backend creates, or that the
server does not offer, repeat at every run: one line counts them, and -v
lists each.

With --json, stdout carries one JSON object per line (apply_start,
apply_progress, apply_complete, apply_errored, diagnostic) and a last
summary object with every host's changes.

The login key is the private half of the instance's keypair: --identity
FILE, else ACCO_SSH_KEY, else the matching key in ssh-agent, else the file
next to keypairs.NAME.public_key_file without its .pub.

Exit codes: 0 success (with --check --detailed-exitcode: nothing to change),
1 error, 2 changes pending (with --check --detailed-exitcode), 3 the lock is
held.`,
		Example: `  acco configure test
  acco configure prod --check --diff
  acco configure prod --auto-approve
  acco configure preprod --check --json | jq '.hosts[].plan.changes'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.detailedExit && !f.check {
				return errors.New("--detailed-exitcode needs --check")
			}
			return a.runConfigure(cmd.Context(), args[0], f)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.check, "check", false, "change nothing: show what a run would change")
	fl.BoolVar(&f.autoApprove, "auto-approve", false, "do not ask for confirmation where a database is protected (prod); required there when stdin is not a terminal")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "show every database step that is not applied (by default: one line counts them)")
	fl.BoolVar(&f.diff, "diff", false, "show the unified diff of every changed file (secrets masked)")
	fl.BoolVar(&f.detailedExit, "detailed-exitcode", false, "with --check: exit 2 when something would change, 0 when nothing would")
	fl.StringVar(&f.identity, "identity", "", "the deploy keypair's private key `FILE` (env ACCO_SSH_KEY)")
	fl.StringVar(&f.artifact, "artifact", "", "the backend archive `FILE` (default: services.backend.artifact)")
	fl.DurationVar(&f.lockTimeout, "lock-timeout", 0, "wait this long for the state lock (default: fail at once)")
	fl.DurationVar(&f.connectWait, "connect-timeout", 5*time.Minute, "keep retrying SSH this long (a new instance is still booting)")
	return cmd
}

func (a *app) runConfigure(ctx context.Context, name string, f configureFlags) error {
	env, blob, err := a.envAndState(ctx, name)
	if err != nil {
		return err
	}
	// A protected database (prod's) makes configure ask, as apply does:
	// refused at once when there is no terminal to ask on.
	protected := protectedDatabases(env)
	ask := !f.check && !f.autoApprove && len(protected) > 0
	if ask && !isTerminal(a.in) {
		return withHint(fmt.Errorf("refusing to ask for confirmation: %s protects %s and stdin is not a terminal", name, strings.Join(protected, ", ")),
			"pass --auto-approve to configure %s without asking, or --check --diff to see what it would change", name)
	}
	a.printWarnings(env)
	if a.json {
		for _, w := range env.Warnings() {
			a.jsonLine(diagnosticLine{Type: "diagnostic", Severity: "warning", Summary: w.Error()})
		}
	}
	sealer, err := a.sealer()
	if err != nil {
		return err
	}
	if sealer == nil {
		return withHint(errors.New("ACCO_STATE_KEY is not set: configure reads the secrets sealed in state"),
			"export ACCO_STATE_KEY (the same key every operator of %s uses)", name)
	}
	signer, err := a.deploySigner(env, f.identity)
	if err != nil {
		return err
	}
	op := "configure"
	if f.check {
		op = "configure --check"
	}
	if f.op != "" {
		op = f.op
	}
	lctx, release, err := a.lockEnv(ctx, blob, name, op, f.lockTimeout)
	if err != nil {
		return err
	}
	defer release()
	ctx = lctx

	clients, err := a.cloudClients(ctx, env)
	if err != nil {
		return err
	}
	pass := configurePass{a: a, env: env, blob: blob, sealer: sealer, clients: clients, signer: signer, f: f}
	if ask {
		// What the run would do, computed without changing anything (on
		// the host, in the database, at OVH or in state), then the question.
		preview, err := pass.run(ctx, true, &configureView{a: a, preview: true, verbose: f.verbose})
		if err != nil {
			return err
		}
		if !preview.pending {
			return nil
		}
		ok, err := a.confirm(a.human().w, fmt.Sprintf("\n%s protects %s. Do you want to make these changes to %s? Only 'yes' is accepted: ", name, strings.Join(protected, ", "), name))
		if err != nil {
			return err
		}
		if !ok {
			return &codedError{code: exitError, err: errors.New("configure cancelled: nothing was changed")}
		}
	}
	res, err := pass.run(ctx, f.check, &configureView{a: a, verbose: f.verbose})
	if err != nil {
		return err
	}
	if f.detailedExit && res.changes {
		return &codedError{code: exitChanges, err: errors.New("changes pending"), reported: true}
	}
	return nil
}

// protectedDatabases names the databases of env with protect: true
// (database.NAME, sorted).
func protectedDatabases(env *spec.Environment) []string {
	var out []string
	for name, db := range env.Databases {
		if db != nil && db.Protect {
			out = append(out, spec.Address(spec.KindDatabase, name))
		}
	}
	slices.Sort(out)
	return out
}

// configurePass is one configure run under the lock: a session on state,
// the inputs, the target, configure.Run and its report.
type configurePass struct {
	a       *app
	env     *spec.Environment
	blob    state.Blob
	sealer  *state.Sealer
	clients provision.Clients
	signer  ssh.Signer
	f       configureFlags
}

// passResult is what a pass found.
type passResult struct {
	// changes: something changed (or, with check, would change).
	changes bool
	// pending: a run would have something to do, or check could not see
	// all of it (the database bootstrap before the first run).
	pending bool
}

func (p *configurePass) run(ctx context.Context, check bool, view *configureView) (passResult, error) {
	a, env, f := p.a, p.env, p.f
	s, err := flows.Open(ctx, env, state.NewStore(p.blob), p.sealer, p.clients, check)
	if err != nil {
		return passResult{}, err
	}
	if f.before != nil && !view.preview {
		if err := f.before(ctx, s); err != nil {
			return passResult{}, err
		}
	}
	h := a.human()
	adminsMissing := false
	results, runErr := s.Configure(ctx, p.signer, flows.ConfigureOptions{
		Check:       check,
		Diff:        f.diff,
		Services:    configure.ServicesOptions{Artifact: f.artifact, Offline: env.Services.Offline},
		ConnectWait: f.connectWait,
		Notes:       func(n string) { h.printf("%s\n", n) },
		Events:      view.event,
		Inputs:      func(in *flows.Inputs) { adminsMissing = in.Admins == nil },
	})
	sum := view.report(results, runErr, check)
	if runErr != nil {
		err := a.configureError(env, runErr, results)
		var ce *codedError
		if errors.As(err, &ce) && view.preview {
			ce.reported = false // the preview streams no JSON
		}
		return passResult{}, err
	}
	changes := sum.Changes > 0 || sum.Restarts > 0
	return passResult{changes: changes, pending: changes || adminsMissing && len(env.Databases) > 0}, nil
}

// configureError is the error of a failed configure run, with what to do
// when the host key does not match.
func (a *app) configureError(env *spec.Environment, runErr error, results []*configure.Result) error {
	if errors.Is(runErr, configure.ErrHostKeyMismatch) {
		name, instAddr := env.Name, spec.Address(spec.KindInstance, env.Services.Host)
		runErr = withHint(runErr, "acco state pull %s shows the pinned keys. If the instance was rebuilt outside acco, replace it through acco, which forgets them (acco plan %s --replace %s --out p && acco apply %s p); otherwise someone may be in the middle: do not go on", name, name, instAddr, name)
	}
	return &codedError{code: exitError, err: runErr, reported: a.json && results != nil && results[0] != nil && results[0].Plan != nil}
}

// configureView shows a configure run: progress lines on the terminal
// (stderr under --json) and, with --json, one JSON object per line.
type configureView struct {
	a *app
	// plan is deploy's plan phase: the host plan goes into deploy's plan
	// object, so no JSON is streamed, and nothing is said of --check.
	plan bool
	// preview is the pass that shows what a run would change before
	// asking: human text only, no JSON.
	preview bool
	// verbose lists every database step not applied; by default one line
	// counts them (they repeat at every run until the backend's tables exist).
	verbose bool
	mu      sync.Mutex
}

func (v *configureView) event(e configure.Event) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.a.json && !v.plan && !v.preview {
		v.a.jsonLine(e)
	}
	w := v.a.err
	switch e.Type {
	case "apply_start":
		fmt.Fprintf(w, "host.%s: %s\n", e.Host, e.Message)
	case "apply_progress":
		fmt.Fprintf(w, "host.%s: %s\n", e.Host, e.Message)
	case "apply_errored":
		fmt.Fprintf(w, "host.%s: failed: %s\n", e.Host, e.Message)
	case "apply_complete":
		fmt.Fprintf(w, "host.%s: %s\n", e.Host, e.Message)
	}
}

// hostSummary is one host in the JSON summary.
type hostSummary struct {
	*configure.Result
	Error string `json:"error,omitempty"`
}

// configureSummary is the last object of the JSON stream.
type configureSummary struct {
	Type      string        `json:"type"`
	Operation string        `json:"operation"`
	Check     bool          `json:"check"`
	Changes   int           `json:"changes"`
	Restarts  int           `json:"restarts"`
	Hosts     []hostSummary `json:"hosts"`
	Error     string        `json:"error,omitempty"`
}

// report prints what each host got (or would get) and returns the summary
// (streamed too with --json): anything changed (or would) when it counts
// changes or restarts.
func (v *configureView) report(results []*configure.Result, runErr error, check bool) configureSummary {
	v.mu.Lock()
	defer v.mu.Unlock()
	h := v.a.human()
	sum := configureSummary{Type: "summary", Operation: "configure", Check: check}
	for _, res := range results {
		if res == nil {
			continue
		}
		hs := hostSummary{Result: res}
		if res.Err != nil {
			hs.Error = res.Err.Error()
		}
		sum.Hosts = append(sum.Hosts, hs)
		if res.Plan == nil {
			continue
		}
		n := 0
		kinds := map[string]int{}
		for _, c := range res.Plan.Changes {
			if c.Action == configure.ActionNoop {
				continue
			}
			n++
			kinds[c.Kind]++
			mark := "~"
			if c.Action == configure.ActionCreate {
				mark = "+"
			}
			detail := c.Reason
			if c.Before != "" || c.After != "" {
				detail = strings.TrimSpace(fmt.Sprintf("%s (%s -> %s)", c.Reason, orDash(c.Before), orDash(c.After)))
			}
			h.printf("  %s %s  %s\n", mark, c.Address, detail)
			if c.Diff != "" {
				for _, l := range strings.Split(strings.TrimRight(c.Diff, "\n"), "\n") {
					h.printf("      %s\n", l)
				}
			}
		}
		for _, u := range res.Plan.Restarts {
			verb := "restart"
			if !check {
				verb = "restarted"
				if !slices.Contains(res.Restarted, u) {
					verb = "restart owed"
				}
			}
			h.printf("  ! %s  %s\n", configure.Address(res.Host, configure.KindUnit, u), verb)
		}
		var quiet []configure.DBStep
		for _, st := range res.Database {
			switch {
			case st.Applied:
				n++
				kinds["database"]++
				h.printf("  ~ %s  applied: %s\n", st.Address, st.SQL)
			case st.Note == "would apply":
				n++
				kinds["database"]++
				h.printf("  ~ %s  would apply: %s\n", st.Address, st.SQL)
			case st.Note != "" && st.Note != "granted" && st.Note != "up to date" && st.Note != "exists" && st.Note != "installed":
				// Something to know (skipped, waiting for a table); what
				// is already in place is not repeated at every run, and
				// these, which are, are counted unless -v.
				if v.verbose {
					h.printf("    %s  %s\n", st.Address, st.Note)
				} else {
					quiet = append(quiet, st)
				}
			}
		}
		if len(quiet) > 0 {
			h.printf("    %s\n", quietSummary(quiet))
		}
		sum.Changes += n
		sum.Restarts += len(res.Plan.Restarts)
		switch {
		case n == 0 && len(res.Plan.Restarts) == 0:
			trips := "round trips"
			if res.Commands == 1 {
				trips = "round trip"
			}
			h.printf("host.%s: up to date, nothing to change (%d SSH %s).\n", res.Host, res.Commands, trips)
		case v.preview || check && v.plan:
			h.printf("host.%s: to change: %s; %d to restart.\n", res.Host, kindCounts(kinds), len(res.Plan.Restarts))
		case check:
			h.printf("host.%s: to change: %s; %d to restart (--check: nothing was changed).\n", res.Host, kindCounts(kinds), len(res.Plan.Restarts))
		case res.Err == nil:
			h.printf("host.%s: changed: %s; %d restarted.\n", res.Host, kindCounts(kinds), len(res.Restarted))
		}
	}
	if runErr != nil {
		sum.Error = runErr.Error()
	}
	if v.a.json && !v.plan && !v.preview {
		v.a.jsonLine(sum)
	}
	return sum
}

// quietSummary counts, in one line, the database steps a run did not apply
// and that every run would repeat: grants and publications waiting for
// tables the backend creates, and what the server does not offer.
func quietSummary(steps []configure.DBStep) string {
	waiting := 0
	for _, st := range steps {
		if strings.Contains(st.Note, "does not exist yet") {
			waiting++
		}
	}
	var parts []string
	switch waiting {
	case 0:
	case 1:
		parts = append(parts, "1 waits for a table the backend creates")
	default:
		parts = append(parts, fmt.Sprintf("%d wait for tables the backend creates", waiting))
	}
	if n := len(steps) - waiting; n > 0 {
		parts = append(parts, fmt.Sprintf("%d skipped", n))
	}
	word := "steps"
	if len(steps) == 1 {
		word = "step"
	}
	return fmt.Sprintf("%d database %s not applied: %s (-v lists them)", len(steps), word, strings.Join(parts, ", "))
}

// kindCounts writes counts by kind of change: "1 file, 2 units".
func kindCounts(kinds map[string]int) string {
	var parts []string
	for _, k := range []string{configure.KindPackage, configure.KindCommand, configure.KindFile, configure.KindArtifact, configure.KindUnit, "database"} {
		n := kinds[k]
		if n == 0 {
			continue
		}
		word := k
		if k == "database" {
			word = "database step"
		}
		if n > 1 {
			word += "s"
		}
		parts = append(parts, fmt.Sprintf("%d %s", n, word))
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
