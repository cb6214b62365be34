package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/accoreboot/acco/configure"
	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/provision"
	"github.com/accoreboot/acco/state"
	"github.com/accoreboot/acco/templates"
)

// adminUser is the admin login of OVH's managed PostgreSQL.
const adminUser = "avnadmin"

type configureFlags struct {
	check        bool
	diff         bool
	detailedExit bool
	identity     string
	artifact     string
	lockTimeout  time.Duration
	connectWait  time.Duration
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
	fl.BoolVar(&f.diff, "diff", false, "show the unified diff of every changed file (secrets masked)")
	fl.BoolVar(&f.detailedExit, "detailed-exitcode", false, "with --check: exit 2 when something would change, 0 when nothing would")
	fl.StringVar(&f.identity, "identity", "", "the deploy keypair's private key `FILE` (env ACCO_SSH_KEY)")
	fl.StringVar(&f.artifact, "artifact", "", "the backend archive `FILE` (default: services.backend.artifact)")
	fl.DurationVar(&f.lockTimeout, "lock-timeout", 0, "wait this long for the state lock (default: fail at once)")
	fl.DurationVar(&f.connectWait, "connect-timeout", 5*time.Minute, "keep retrying SSH this long (a new instance is still booting)")
	return cmd
}

// configureRun is one run of acco configure: the environment, its state and
// the way state is written back.
type configureRun struct {
	a     *app
	env   *spec.Environment
	store *state.Store
	st    *state.State
	check bool

	mu   sync.Mutex
	etag string
}

// save writes the state (serialised: pins, secrets and owed restarts may be
// recorded from several goroutines).
func (r *configureRun) save(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	etag, err := r.store.Write(context.WithoutCancel(ctx), r.env.Name, r.st, r.etag)
	if err != nil {
		return fmt.Errorf("writing the state of %s: %w", r.env.Name, err)
	}
	r.etag = etag
	return nil
}

func (a *app) runConfigure(ctx context.Context, name string, f configureFlags) error {
	env, blob, err := a.envAndState(ctx, name)
	if err != nil {
		return err
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
	lctx, release, err := a.lockEnv(ctx, blob, name, op, f.lockTimeout)
	if err != nil {
		return err
	}
	defer release()
	ctx = lctx

	r := &configureRun{a: a, env: env, store: state.NewStore(blob), check: f.check}
	r.st, r.etag, err = r.store.Read(ctx, name)
	if errors.Is(err, state.ErrNotFound) {
		return withHint(fmt.Errorf("%s has no state yet: there is no host to configure", name), "create the environment first: acco apply %s", name)
	}
	if err != nil {
		return fmt.Errorf("reading the state of %s: %w", name, err)
	}
	save := r.save
	if f.check {
		save = nil // --check records nothing
	}

	hostName := env.Services.Host
	instAddr := spec.Address(spec.KindInstance, hostName)
	// A copy: state.Resource points into the state, which changes as
	// secrets and pins are recorded.
	instRes, ok := r.st.Resource(instAddr)
	if !ok {
		return withHint(fmt.Errorf("%s is not in the state of %s", instAddr, name), "create it first: acco apply %s", name)
	}
	inst := *instRes
	ipv4, _ := inst.Attributes["ipv4"].(string)
	if inst.Status == state.StatusTainted || ipv4 == "" {
		return withHint(fmt.Errorf("%s has no address in state yet (its creation did not finish)", instAddr), "finish it first: acco apply %s", name)
	}

	clients, err := a.cloudClients(ctx, env)
	if err != nil {
		return err
	}
	secrets := &configure.StateSecrets{State: r.st, Sealer: sealer, Save: save, Check: f.check}
	in, admins, dbNote, err := r.inputs(ctx, clients, secrets)
	if err != nil {
		return err
	}
	desired, err := configure.Services(env, in, configure.ServicesOptions{Artifact: f.artifact, Offline: env.Services.Offline})
	if err != nil {
		return err
	}
	target := configure.Target{Host: configure.ServicesHost(env, ipv4), Desired: desired}
	if admins != nil {
		target.Database = configure.BootstrapStep(env, admins, nil)
	}
	masked := in.Secrets()
	for _, ad := range admins {
		masked = append(masked, ad.Password)
	}
	conn := &configure.SSHConnector{
		Signer: signer,
		Keys:   &configure.StateKeys{State: r.st, Save: save},
		Console: configure.ConsoleFunc(func(ctx context.Context, _ string) (string, error) {
			return clients.Compute.ConsoleOutput(ctx, inst.ID, 0)
		}),
		Retry:   f.connectWait,
		Secrets: masked,
	}
	view := &configureView{a: a}
	h := a.human()
	if dbNote != "" {
		h.printf("%s\n", dbNote)
	}
	results, runErr := configure.Run(ctx, conn, []configure.Target{target}, configure.Options{
		Check:         f.check,
		Diff:          f.diff,
		Journal:       &configure.StateJournal{State: r.st, Save: save},
		Secrets:       masked,
		HealthTimeout: env.Services.HealthTimeout,
		Events:        view.event,
	})
	changes := view.report(results, runErr, f.check)
	if runErr != nil {
		if errors.Is(runErr, configure.ErrHostKeyMismatch) {
			runErr = withHint(runErr, "acco state pull %s shows the pinned keys. If the instance was rebuilt outside acco, replace it through acco, which forgets them (acco plan %s --replace %s --out p && acco apply %s p); otherwise someone may be in the middle: do not go on", name, name, instAddr, name)
		}
		return &codedError{code: exitError, err: runErr, reported: a.json && results != nil && results[0] != nil && results[0].Plan != nil}
	}
	if f.detailedExit && changes {
		return &codedError{code: exitChanges, err: errors.New("changes pending"), reported: true}
	}
	return nil
}

// inputs gathers what the templates need beyond the YAML: the clusters'
// endpoints and CA, the database users' passwords, the services' secrets and
// the listeners' certificates; and the clusters' admin logins for the
// database bootstrap (nil, with a note, when --check runs before the first
// configure recorded them).
func (r *configureRun) inputs(ctx context.Context, clients provision.Clients, secrets *configure.StateSecrets) (templates.Inputs, map[string]configure.DBAdmin, string, error) {
	var in templates.Inputs
	env := r.env
	svc, err := secrets.ServiceSecrets(ctx)
	if err != nil {
		return in, nil, "", err
	}
	in.EMQXDashboardPassword = svc[configure.SecretEMQXDashboardPassword]
	in.EMQXCookie = svc[configure.SecretEMQXCookie]
	in.PowerSyncAPIToken = svc[configure.SecretPowerSyncAPIToken]
	in.MQTTBackendPassword = svc[configure.SecretMQTTBackendPassword]
	if in.Passwords, err = secrets.UserPasswords(); err != nil {
		return in, nil, "", err
	}

	in.Databases = map[string]templates.DB{}
	admins := map[string]configure.DBAdmin{}
	var notes []string
	names := make([]string, 0, len(env.Databases))
	for n := range env.Databases {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		addr := spec.Address(spec.KindDatabase, n)
		res, ok := r.st.Resource(addr)
		if !ok || res.Status == state.StatusTainted {
			return in, nil, "", withHint(fmt.Errorf("%s is not ready in the state of %s", addr, env.Name), "create it first: acco apply %s", env.Name)
		}
		host, _ := res.Attributes["host"].(string)
		port := attrInt(res.Attributes["port"])
		if host == "" || port == 0 {
			return in, nil, "", withHint(fmt.Errorf("%s has no endpoint in state yet", addr), "run acco apply %s to finish it", env.Name)
		}
		ca, err := clients.DB.CACertificate(ctx, res.ID)
		if err != nil {
			return in, nil, "", err
		}
		in.Databases[n] = templates.DB{Host: host, Port: port, CACert: ca}
		clusterID := res.ID
		pw, err := secrets.AdminPassword(ctx, n, clusterID, func(ctx context.Context) (string, string, error) {
			users, err := clients.DB.ListUsers(ctx, clusterID)
			if err != nil {
				return "", "", err
			}
			for _, u := range users {
				if u.Username == adminUser {
					u2, err := clients.DB.ResetPassword(ctx, clusterID, u.ID)
					if err != nil {
						return "", "", err
					}
					return u.ID, u2.Password, nil
				}
			}
			return "", "", fmt.Errorf("%s: cluster %s has no %s user", addr, clusterID, adminUser)
		})
		if errors.Is(err, configure.ErrNoAdminPassword) {
			notes = append(notes, fmt.Sprintf("Note: the database bootstrap of %s is not checked: its admin password is reset and recorded by the first acco configure %s.", addr, env.Name))
			admins = nil
			continue
		}
		if err != nil {
			return in, nil, "", err
		}
		if admins != nil {
			admins[n] = configure.DBAdmin{Host: host, Port: port, User: adminUser, Password: pw, CACert: ca}
		}
	}
	if in.TLS, err = listenerTLS(env); err != nil {
		return in, nil, "", err
	}
	return in, admins, strings.Join(notes, "\n"), nil
}

// listenerTLS reads the certificate files of the broker's TLS listeners.
func listenerTLS(env *spec.Environment) (map[string]templates.TLS, error) {
	var listeners map[string]*spec.Listener
	prefix := "services."
	switch s := env.Services; {
	case s.Broker == spec.BrokerEMQX && s.EMQX != nil:
		listeners, prefix = s.EMQX.Listeners, prefix+"emqx.listeners."
	case s.Broker == spec.BrokerMosquitto && s.Mosquitto != nil:
		listeners, prefix = s.Mosquitto.Listeners, prefix+"mosquitto.listeners."
	}
	out := map[string]templates.TLS{}
	for name, l := range listeners {
		if l == nil || l.TLS == nil {
			continue
		}
		read := func(key, p string) (string, error) {
			if p == "" {
				return "", nil
			}
			path, err := env.LocalPath(p)
			if err == nil {
				var b []byte
				if b, err = os.ReadFile(path); err == nil {
					return string(b), nil
				}
			}
			file, line, _ := env.Position(prefix + name + ".tls." + key)
			where := prefix + name + ".tls." + key
			if file != "" {
				where = fmt.Sprintf("%s:%d: %s", file, line, where)
			}
			return "", fmt.Errorf("%s: %w", where, err)
		}
		var t templates.TLS
		var err error
		if t.Cert, err = read("cert_file", l.TLS.CertFile); err != nil {
			return nil, err
		}
		if t.Key, err = read("key_file", l.TLS.KeyFile); err != nil {
			return nil, err
		}
		if t.CA, err = read("ca_file", l.TLS.CAFile); err != nil {
			return nil, err
		}
		out[name] = t
	}
	return out, nil
}

// attrInt reads a number attribute of state (json.Number once decoded).
func attrInt(v any) int {
	switch n := v.(type) {
	case json.Number:
		i, _ := strconv.Atoi(n.String())
		return i
	case float64:
		return int(n)
	case int:
		return n
	}
	return 0
}

// configureView shows a configure run: progress lines on the terminal
// (stderr under --json) and, with --json, one JSON object per line.
type configureView struct {
	a  *app
	mu sync.Mutex
}

func (v *configureView) event(e configure.Event) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.a.json {
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

// report prints what each host got (or would get) and reports whether
// anything changed (or would).
func (v *configureView) report(results []*configure.Result, runErr error, check bool) bool {
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
			case st.Note != "" && st.Note != "granted" && st.Note != "up to date":
				// Something to know (skipped, waiting for a table); what
				// is already in place is not repeated at every run.
				h.printf("    %s  %s\n", st.Address, st.Note)
			}
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
		case check:
			h.printf("host.%s: to change: %s; %d to restart (--check: nothing was changed).\n", res.Host, kindCounts(kinds), len(res.Plan.Restarts))
		case res.Err == nil:
			h.printf("host.%s: changed: %s; %d restarted.\n", res.Host, kindCounts(kinds), len(res.Restarted))
		}
	}
	if runErr != nil {
		sum.Error = runErr.Error()
	}
	if v.a.json {
		v.a.jsonLine(sum)
	}
	return sum.Changes > 0 || sum.Restarts > 0
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
