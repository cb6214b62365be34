// Package configure configures the services host over SSH, in place of the
// Ansible roles common, emqx, powersync and node.
//
// # Phases
//
// For each host, in parallel with a bound (Run, through ForEach):
//
//  1. Connect: one SSH connection per host (golang.org/x/crypto/ssh). The
//     host key must match a key pinned in state; on first contact it must
//     match a key the host printed on its console (cloud-init's
//     "BEGIN SSH HOST KEY KEYS" block, read through a ConsoleSource), and the
//     console keys are then pinned through a KeyStore. There is no insecure
//     mode.
//  2. Facts: one command, one round trip, reports the SHA-256, owner, group
//     and mode of every managed file, the state of every managed unit, the
//     installed version of every package and the markers of uploaded
//     artifacts (Probe).
//  3. Plan: a pure function of what is wanted (Desired), the facts and the
//     restarts still owed from earlier runs (PlanHost). Each change has an
//     address such as host.app:file:/etc/emqx/emqx.conf or
//     host.app:unit:emqx.service and an action (create, update, noop). With
//     Options.Diff the plan carries unified diffs, secrets masked (one more
//     round trip, only when something changed).
//  4. Apply (not in check mode): the restarts the plan makes owed are
//     recorded through the Journal before any file changes; then packages,
//     commands, files (temp file in the target directory, owner and mode,
//     optional validation, rename), artifacts, one daemon-reload when a unit
//     file changed, enables, and one restart per owed unit, each followed by
//     a health gate (unit active, port listening, HTTP probe). A restart is
//     paid (removed from the Journal) only once its health gate passes, so a
//     run that fails or is killed leaves it owed for the next run.
//
// Every mutating remote command goes through one choke point (hostRun.wet),
// which check mode never reaches.
//
// No secret is ever on a host's command line, where sudo's log and ps
// would show it: secrets travel on standard input (file contents), and
// both the engine and the SSH runner refuse a script whose text holds a
// secret they mask (ErrSecretOnCommandLine), naming the step, never the
// value. Third-party apt keys are checked against pinned fingerprints
// before apt trusts them (AptKey), database connections are verify-full
// only (ErrNoClusterCA), and npm ci runs no dependency's install script
// unless the YAML opts in, and then not as root.
//
// A no-op run makes exactly one round trip per host after connecting: the
// facts probe.
package configure
