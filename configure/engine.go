package configure

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/accoreboot/acco/internal/spec"
)

// Target is a host and what it should have.
type Target struct {
	Host    Host
	Desired Desired
	// Database, when set, runs over the host's connection after files and
	// artifacts are in place and before any unit is restarted or started
	// (PowerSync refuses to start without its publication); in check mode
	// it runs with check true and must change nothing. BootstrapStep
	// adapts BootstrapDatabases.
	Database func(ctx context.Context, dial DialFunc, check bool) ([]DBStep, error)
	// Prepare, when set, makes Desired once connected, from what it reads
	// through the host (the device table, for Mosquitto's password file);
	// the database steps it took are reported with the bootstrap's. In
	// check mode it must change nothing.
	Prepare func(ctx context.Context, dial DialFunc, check bool) (Desired, []DBStep, error)
}

// BootstrapStep returns a Target.Database that runs BootstrapDatabases.
func BootstrapStep(env *spec.Environment, admins map[string]DBAdmin, mqttUsers map[string]string) func(ctx context.Context, dial DialFunc, check bool) ([]DBStep, error) {
	return func(ctx context.Context, dial DialFunc, check bool) ([]DBStep, error) {
		return BootstrapDatabases(ctx, dial, env, admins, mqttUsers, check)
	}
}

// Options control a run.
type Options struct {
	// Check plans without changing anything (acco configure --check).
	Check bool
	// Diff adds unified diffs of changed files to the plan, secrets masked.
	Diff bool
	// Parallel bounds how many hosts are configured at once (4 when 0).
	Parallel int
	// Journal keeps owed restarts; required unless Check.
	Journal Journal
	// Secrets are masked in diffs, events and errors.
	Secrets []string
	// HealthTimeout bounds each health gate (2m when 0; a unit's own
	// Health.Timeout wins).
	HealthTimeout time.Duration
	// HealthInterval is the pause between health probes (1s when 0).
	HealthInterval time.Duration
	// Events receives progress (may be nil); called from several
	// goroutines, one host at a time each.
	Events func(Event)
}

// Event is a progress report, shaped for acco's --json stream.
type Event struct {
	Type    string `json:"type"` // apply_start, apply_progress, apply_complete, apply_errored, diagnostic
	Host    string `json:"host"`
	Address string `json:"address,omitempty"`
	Action  string `json:"action,omitempty"`
	Message string `json:"message,omitempty"`
}

// Result is what happened on one host.
type Result struct {
	Host string    `json:"host"`
	Plan *HostPlan `json:"plan,omitempty"`
	// Restarted are the units restarted and found healthy.
	Restarted []string `json:"restarted,omitempty"`
	// Started are units that were not running and were started.
	Started []string `json:"started,omitempty"`
	// Database are the database bootstrap's steps.
	Database []DBStep `json:"database,omitempty"`
	// Commands counts the commands run on the host after connecting, each
	// one SSH round trip (a no-op run makes one: the facts probe).
	Commands int   `json:"commands"`
	Err      error `json:"-"`
}

// Run configures the targets, Options.Parallel at a time, and returns one
// Result per target (in the targets' order) and the errors of every failed
// host joined, each prefixed with its host.
func Run(ctx context.Context, conn Connector, targets []Target, opts Options) ([]*Result, error) {
	if !opts.Check && opts.Journal == nil {
		return nil, errors.New("configure: a Journal is needed to apply (owed restarts must be persisted)")
	}
	results := make([]*Result, len(targets))
	err := ForEach(ctx, len(targets), opts.Parallel, func(ctx context.Context, i int) error {
		t := targets[i]
		res := &Result{Host: t.Host.Name}
		results[i] = res
		res.Err = runHost(ctx, conn, t, opts, res)
		if res.Err != nil {
			return fmt.Errorf("%s: %w", t.Host.Name, res.Err)
		}
		return nil
	})
	return results, err
}

// ForEach calls fn for 0..n-1 with at most limit calls at once (4 when 0)
// and returns every error joined.
func ForEach(ctx context.Context, n, limit int, fn func(ctx context.Context, i int) error) error {
	if limit <= 0 {
		limit = 4
	}
	sem := make(chan struct{}, limit)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = ctx.Err()
				return
			}
			defer func() { <-sem }()
			errs[i] = fn(ctx, i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

type hostRun struct {
	res    *Result
	host   Host
	r      Runner
	opts   Options
	masker *Masker
	dry    bool
	dryLog []string
}

func (h *hostRun) event(typ, addr, action, msg string) {
	if h.opts.Events != nil {
		h.opts.Events(Event{Type: typ, Host: h.host.Name, Address: addr, Action: action, Message: h.masker.Mask(msg)})
	}
}

// wet is the one choke point of every mutating remote command: in dry mode
// it only records what it would do.
func (h *hostRun) wet(ctx context.Context, addr, what, script string, stdin io.Reader) ([]byte, error) {
	if err := h.guard(what, script); err != nil {
		return nil, err
	}
	if h.dry {
		h.dryLog = append(h.dryLog, what)
		return nil, nil
	}
	h.event("apply_progress", addr, "", what)
	return h.run(ctx, what, script, stdin)
}

// guard refuses a script whose text holds a secret of the run: it would
// be on the host's command line. The error names the step, never the
// value.
func (h *hostRun) guard(what, script string) error {
	if h.masker.Contains(script) {
		return fmt.Errorf("%s: %w", what, ErrSecretOnCommandLine)
	}
	return nil
}

// run runs a command and masks the secrets in its error.
func (h *hostRun) run(ctx context.Context, what, script string, stdin io.Reader) ([]byte, error) {
	if err := h.guard(what, script); err != nil {
		return nil, err
	}
	h.res.Commands++
	out, err := h.r.Run(ctx, script, stdin)
	if err != nil {
		var ee *ExitError
		if errors.As(err, &ee) {
			return out, &ExitError{What: what, Code: ee.Code, Stderr: h.masker.Mask(ee.Stderr)}
		}
		return out, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

func runHost(ctx context.Context, conn Connector, t Target, opts Options, res *Result) error {
	h := &hostRun{res: res, host: t.Host, opts: opts, masker: NewMasker(opts.Secrets)}
	h.event("apply_start", "", "", "connecting to "+t.Host.Addr())
	r, err := conn.Connect(ctx, t.Host)
	if err != nil {
		h.event("apply_errored", "", "", err.Error())
		return err
	}
	defer r.Close()
	h.r = r
	if t.Prepare != nil {
		d, steps, err := t.Prepare(ctx, r.DialContext, opts.Check)
		res.Database = append(res.Database, steps...)
		if err != nil {
			return h.maskErr(err)
		}
		t.Desired = d
	}
	var owed []string
	if opts.Journal != nil {
		owed = opts.Journal.Owed(t.Host.Name)
	}
	out, err := h.run(ctx, "probing facts", probeScript(t.Desired), nil)
	if err != nil {
		return err
	}
	facts, err := parseFacts(out, probeList(t.Desired))
	if err != nil {
		return err
	}
	plan := PlanHost(t.Host.Name, t.Desired, facts, owed)
	res.Plan = plan
	if opts.Diff {
		if err := h.addDiffs(ctx, plan); err != nil {
			return err
		}
	}
	if opts.Check {
		if t.Database != nil {
			steps, err := t.Database(ctx, r.DialContext, true)
			res.Database = append(res.Database, steps...)
			if err != nil {
				return h.maskErr(err)
			}
		}
		h.event("apply_complete", "", "", summary(plan))
		return nil
	}
	if err := h.apply(ctx, plan, res, t.Database); err != nil {
		h.event("apply_errored", "", "", err.Error())
		return err
	}
	h.event("apply_complete", "", "", summary(plan))
	return nil
}

func summary(p *HostPlan) string {
	n := map[string]int{}
	for _, c := range p.Changes {
		n[c.Action]++
	}
	return fmt.Sprintf("%d to create, %d to update, %d unchanged; %d restarts", n[ActionCreate], n[ActionUpdate], n[ActionNoop], len(p.Restarts))
}

// addDiffs reads the current content of the changed files (one round trip,
// only when a readable file changed) and adds masked unified diffs.
func (h *hostRun) addDiffs(ctx context.Context, p *HostPlan) error {
	var read []string
	for _, f := range p.files {
		if !f.Sensitive && p.facts.Files[f.Path].Exists {
			read = append(read, f.Path)
		}
	}
	old := map[string]string{}
	if len(read) > 0 {
		var b strings.Builder
		for _, path := range read {
			fmt.Fprintf(&b, "printf '%%s\\n' \"$(wc -c < %s)\"; cat %s\n", shellQuote(path), shellQuote(path))
		}
		out, err := h.run(ctx, "reading files for the diff", b.String(), nil)
		if err != nil {
			return err
		}
		for _, path := range read {
			nl := bytes.IndexByte(out, '\n')
			if nl < 0 {
				return errors.New("reading files for the diff: short output")
			}
			n, err := strconv.Atoi(strings.TrimSpace(string(out[:nl])))
			if err != nil || nl+1+n > len(out) {
				return errors.New("reading files for the diff: bad output")
			}
			old[path] = string(out[nl+1 : nl+1+n])
			out = out[nl+1+n:]
		}
	}
	byPath := map[string]File{}
	for _, f := range p.files {
		byPath[f.Path] = f
	}
	for i := range p.Changes {
		c := &p.Changes[i]
		if c.Kind != KindFile || c.Action == ActionNoop {
			continue
		}
		f := byPath[strings.TrimPrefix(c.Address, Address(p.Host, KindFile, ""))]
		if f.Sensitive {
			c.Diff = "(sensitive content not shown)"
			continue
		}
		c.Diff = maskDiff(UnifiedDiff(f.Path, old[f.Path], string(f.Content)), h.masker)
	}
	return nil
}

func (h *hostRun) maskErr(err error) error {
	if err == nil {
		return nil
	}
	return errors.New(h.masker.Mask(err.Error()))
}

func (h *hostRun) apply(ctx context.Context, p *HostPlan, res *Result, database func(context.Context, DialFunc, bool) ([]DBStep, error)) error {
	// Owed restarts are persisted before anything on the host changes.
	if len(p.Restarts) > 0 {
		if err := h.opts.Journal.Owe(ctx, h.host.Name, p.Restarts, "acco configure"); err != nil {
			return fmt.Errorf("recording owed restarts: %w", err)
		}
	}
	var debian, repo []Package
	for _, pk := range p.packages {
		if pk.Repo {
			repo = append(repo, pk)
		} else {
			debian = append(debian, pk)
		}
	}
	if err := h.install(ctx, debian, true); err != nil {
		return err
	}
	for _, c := range p.commands {
		if _, err := h.wet(ctx, Address(h.host.Name, KindCommand, c.Name), "run "+c.Name, "set -e\n"+c.Script, nil); err != nil {
			return err
		}
	}
	for _, f := range p.files {
		if f.Early {
			if err := h.write(ctx, f); err != nil {
				return err
			}
		}
	}
	if err := h.install(ctx, repo, p.update); err != nil {
		return err
	}
	for _, f := range p.files {
		if !f.Early {
			if err := h.write(ctx, f); err != nil {
				return err
			}
		}
	}
	for _, a := range p.artifacts {
		if err := h.upload(ctx, a); err != nil {
			return err
		}
	}
	if database != nil && !h.dry {
		h.event("apply_progress", "", "", "bootstrapping the database through "+h.host.Name)
		steps, err := database(ctx, h.r.DialContext, false)
		res.Database = append(res.Database, steps...)
		if err != nil {
			return h.maskErr(err)
		}
	}
	if p.reload {
		if _, err := h.wet(ctx, "", "systemctl daemon-reload", "systemctl daemon-reload", nil); err != nil {
			return err
		}
	}
	if len(p.enable) > 0 {
		if _, err := h.wet(ctx, "", "enable "+strings.Join(p.enable, " "), "systemctl enable --quiet "+argv(p.enable...), nil); err != nil {
			return err
		}
	}
	units := map[string]Unit{}
	for _, u := range p.desired.Units {
		units[u.Name] = u
	}
	for _, u := range p.Restarts {
		addr := unitAddress(h.host.Name, u)
		if _, err := h.wet(ctx, addr, "restart "+u, argv("systemctl", "restart", u), nil); err != nil {
			return err
		}
		if err := h.gate(ctx, u, units[u].Health); err != nil {
			return err
		}
		if err := h.opts.Journal.Paid(ctx, h.host.Name, u); err != nil {
			return fmt.Errorf("recording the restart of %s: %w", u, err)
		}
		res.Restarted = append(res.Restarted, u)
	}
	for _, u := range p.start {
		if _, err := h.wet(ctx, unitAddress(h.host.Name, u), "start "+u, argv("systemctl", "start", u), nil); err != nil {
			return err
		}
		if err := h.gate(ctx, u, units[u].Health); err != nil {
			return err
		}
		res.Started = append(res.Started, u)
	}
	return nil
}

func (h *hostRun) install(ctx context.Context, pkgs []Package, update bool) error {
	if len(pkgs) == 0 {
		return nil
	}
	var names, args []string
	for _, p := range pkgs {
		names = append(names, p.Name)
		if p.Version != "" {
			args = append(args, p.Name+"="+p.Version)
		} else {
			args = append(args, p.Name)
		}
	}
	sort.Strings(args)
	script := "set -e\nexport DEBIAN_FRONTEND=noninteractive\n"
	if update {
		script += "apt-get update -q\n"
	}
	script += "apt-get install -y -q --no-install-recommends --allow-downgrades -o Dpkg::Options::=--force-confold " + argv(args...) + "\n"
	_, err := h.wet(ctx, Address(h.host.Name, KindPackage, strings.Join(names, ",")), "install "+strings.Join(names, " "), script, nil)
	return err
}

// writeScript writes stdin to a staged file next to dst (same file system),
// sets owner and mode, validates it, and renames it into place.
func writeScript(f File) string {
	var b strings.Builder
	fmt.Fprintf(&b, "set -e\ndst=%s\nd=$(dirname \"$dst\")\nmkdir -p \"$d\"\n", shellQuote(f.Path))
	b.WriteString("s=$(mktemp -d \"$d/.acco-XXXXXX\")\ntrap 'rm -rf \"$s\"' EXIT\nt=\"$s/$(basename \"$dst\")\"\ncat > \"$t\"\n")
	fmt.Fprintf(&b, "chown %s \"$t\"\nchmod %o \"$t\"\n", shellQuote(f.Owner+":"+f.Group), f.Mode)
	check := func(target string) string {
		cmd := strings.ReplaceAll(f.Validate, "{}", target)
		if f.StrictStderr {
			return "err=$( { " + cmd + " ; } 2>&1 >/dev/null ) && [ -z \"$err\" ]"
		}
		return "err=$( { " + cmd + " ; } 2>&1 )"
	}
	switch {
	case f.Validate == "":
		b.WriteString("mv -f \"$t\" \"$dst\"\n")
	case f.ValidateInPlace:
		b.WriteString("if [ -e \"$dst\" ]; then cp -p \"$dst\" \"$s/.previous\"; fi\nmv -f \"$t\" \"$dst\"\n")
		b.WriteString("if ! { " + check("\"$dst\"") + "; }; then\n  if [ -e \"$s/.previous\" ]; then mv -f \"$s/.previous\" \"$dst\"; else rm -f \"$dst\"; fi\n  printf 'validation failed, previous file kept: %s\\n' \"$err\" >&2; exit 1\nfi\n")
	default:
		b.WriteString("if ! { " + check("\"$t\"") + "; }; then printf 'validation failed: %s\\n' \"$err\" >&2; exit 1; fi\nmv -f \"$t\" \"$dst\"\n")
	}
	if f.Post != "" {
		b.WriteString(f.Post + "\n")
	}
	return b.String()
}

func (h *hostRun) write(ctx context.Context, f File) error {
	_, err := h.wet(ctx, Address(h.host.Name, KindFile, f.Path), "write "+f.Path, writeScript(f), bytes.NewReader(f.Content))
	return err
}

// artifactScript unpacks the archive on stdin into a staging directory
// next to the app's, installs its dependencies when its lock file changed
// (npm ci; else the previous node_modules moves over), and swaps it in.
// npm ci runs as root with --ignore-scripts, so no dependency's code runs;
// with InstallScripts it runs the install scripts as the service user, in
// the staging directory, which that user owns only until npm is done: then
// everything is root's again, so the service cannot change its own code.
func artifactScript(a Artifact) string {
	var b strings.Builder
	fmt.Fprintf(&b, "set -e\napp=%s\nmkdir -p \"$(dirname \"$app\")\"\nnew=$(mktemp -d \"$app.new-XXXXXX\")\nhome=\ntrap 'rm -rf \"$new\" \"$home\"' EXIT\n", shellQuote(strings.TrimRight(a.Dir, "/")))
	fmt.Fprintf(&b, "tar -xzf - -C \"$new\" --no-same-owner --strip-components=%d\n", a.Strip)
	b.WriteString("chmod -R go-w,a+rX \"$new\"\n")
	if a.LockSHA256 != "" {
		fmt.Fprintf(&b, "if [ -d \"$app/node_modules\" ] && [ \"$(head -n 1 %s 2>/dev/null)\" = %s ]; then\n  mv \"$app/node_modules\" \"$new/node_modules\"\nelse\n",
			shellQuote(a.lockMarker()), shellQuote(a.lockValue()))
		if a.scripts() {
			fmt.Fprintf(&b, "  user=%s\n  gid=$(id -g \"$user\")\n  home=$(mktemp -d)\n  chown \"$user:$gid\" \"$home\" \"$new\"\n", shellQuote(a.User))
			b.WriteString("  (cd \"$new\" && setpriv --reuid=\"$user\" --regid=\"$gid\" --init-groups env HOME=\"$home\" npm_config_cache=\"$home/.npm\" npm ci --omit=dev --no-audit --no-fund)\n")
			b.WriteString("  chown -hR root:root \"$new\"\n  rm -rf \"$home\"\n")
		} else {
			b.WriteString("  (cd \"$new\" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund)\n")
		}
		b.WriteString("fi\nchmod -R go-w,a+rX \"$new\"\n")
	}
	b.WriteString("rm -rf \"$app.old\"\nif [ -d \"$app\" ]; then mv \"$app\" \"$app.old\"; fi\nmv \"$new\" \"$app\"\nrm -rf \"$app.old\"\n")
	fmt.Fprintf(&b, "printf '%%s\\n' %s > %s\nprintf '%%s\\n' %s > %s\ntrap - EXIT\n", shellQuote(a.lockValue()), shellQuote(a.lockMarker()), shellQuote(a.markerValue()), shellQuote(a.marker()))
	return b.String()
}

func (h *hostRun) upload(ctx context.Context, a Artifact) error {
	rc, err := a.Open()
	if err != nil {
		return fmt.Errorf("opening artifact %s: %w", a.Name, err)
	}
	defer rc.Close()
	_, err = h.wet(ctx, Address(h.host.Name, KindArtifact, a.Dir), "upload "+a.Name+" to "+a.Dir, artifactScript(a), rc)
	return err
}

func healthScript(unit string, hc Health) string {
	var b strings.Builder
	fmt.Fprintf(&b, "u=%s\nst=$(systemctl is-active \"$u\" || true)\n[ \"$st\" = active ] || { echo \"$u is $st\"; exit 1; }\n", shellQuote(unit))
	if hc.Port > 0 {
		fmt.Fprintf(&b, "ss -Hltn 'sport = :%d' | grep -q . || { echo 'nothing listens on port %d'; exit 1; }\n", hc.Port, hc.Port)
	}
	if hc.HTTP != "" {
		insecure := ""
		if hc.Insecure {
			insecure = "--insecure "
		}
		fmt.Fprintf(&b, "curl -fsS -o /dev/null --max-time 5 %s%s || { echo %s; exit 1; }\n", insecure, shellQuote(hc.HTTP), shellQuote("HTTP probe "+hc.HTTP+" failed"))
	}
	return b.String()
}

// gate waits until the unit is healthy or the timeout passes; on failure
// the error carries the last probe's answer and the unit's journal tail.
func (h *hostRun) gate(ctx context.Context, unit string, hc Health) error {
	timeout := hc.Timeout
	if timeout == 0 {
		timeout = h.opts.HealthTimeout
	}
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	interval := h.opts.HealthInterval
	if interval == 0 {
		interval = time.Second
	}
	if h.dry {
		return nil
	}
	deadline := time.Now().Add(timeout)
	script := healthScript(unit, hc)
	if err := h.guard("health check of "+unit, script); err != nil {
		return err
	}
	var last string
	for {
		h.res.Commands++
		out, err := h.r.Run(ctx, script, nil)
		if err == nil {
			h.event("apply_progress", unitAddress(h.host.Name, unit), "", unit+" is healthy")
			return nil
		}
		last = strings.TrimSpace(string(out))
		if last == "" {
			last = err.Error()
		}
		if ctx.Err() != nil || time.Now().Add(interval).After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(interval):
		}
	}
	h.res.Commands++
	logs, _ := h.r.Run(ctx, argv("journalctl", "-u", unit, "-n", "20", "--no-pager", "-o", "cat"), nil)
	return fmt.Errorf("%s not healthy after %s: %s\n%s", unit, timeout, h.masker.Mask(last), h.masker.Mask(strings.TrimSpace(string(logs))))
}

// CheckHealth runs the health gate of each unit over r, in order, each
// waiting up to its own timeout (timeout when it has none), and returns the
// first failure with the last probe's answer and the unit's journal tail,
// secrets masked.
func CheckHealth(ctx context.Context, r Runner, host Host, units []Unit, timeout time.Duration, secrets []string) error {
	h := &hostRun{r: r, res: &Result{Host: host.Name}, host: host, opts: Options{HealthTimeout: timeout}, masker: NewMasker(secrets)}
	for _, u := range units {
		if err := h.gate(ctx, u.Name, u.Health); err != nil {
			return err
		}
	}
	return nil
}
