package main

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/spf13/cobra"
)

// streams are the standard streams a command reads and writes.
type streams struct {
	in  io.Reader
	out io.Writer
	err io.Writer
}

// app carries what every command needs: the streams, the process
// environment and the global flags. It replaces package-level state.
type app struct {
	streams
	lookupEnv func(string) (string, bool)

	envDir   string // --environments: where defaults.yaml and <env>.yaml live
	stateURL string // --state: overrides ACCO_STATE and the YAML state section
	json     bool   // --json: machine-readable output on stdout

	leaseTTL  time.Duration // lease of the state lock; 0 means leaseTTL (tests shorten it)
	lostMu    sync.Mutex
	leaseLost error // why the run's lease was lost, if it was
}

// run executes acco with args and returns the process exit code.
func run(ctx context.Context, args []string, s streams, lookupEnv func(string) (string, bool)) int {
	a := &app{streams: s, lookupEnv: lookupEnv}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(s.in)
	root.SetOut(s.out)
	root.SetErr(s.err)
	err := root.ExecuteContext(ctx)
	return a.finish(err)
}

// getenv returns the value of an environment variable, or "" when unset.
func (a *app) getenv(name string) string {
	v, _ := a.lookupEnv(name)
	return v
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "acco",
		Short: "Provision and configure the AccoReboot stack on OVHcloud Public Cloud",
		Long: `acco provisions and configures the AccoReboot stack (EMQX, PowerSync, a Node
backend and a managed PostgreSQL + TimescaleDB) on OVHcloud Public Cloud, one
environment at a time. The YAML under environments/ is the truth; state and
locks live as JSON objects in an S3 bucket.

Exit codes: 0 success, 1 error, 2 changes or drift present (with
--detailed-exitcode), 3 the state lock is held by someone else.`,
		Example: `  acco validate test
  acco bootstrap
  acco lock status prod --json`,
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			a.warnCredentialsFile()
			return checkDurations(cmd)
		},
	}
	dir := a.getenv("ACCO_ENVIRONMENTS")
	if dir == "" {
		dir = "environments"
	}
	root.PersistentFlags().StringVar(&a.envDir, "environments", dir, "directory holding defaults.yaml and <env>.yaml (env ACCO_ENVIRONMENTS)")
	root.PersistentFlags().StringVar(&a.stateURL, "state", "", "where state lives: s3://BUCKET?endpoint=URL&region=R[&path_style=true] or file:///DIR (env ACCO_STATE; default: the state section of the environment)")
	root.PersistentFlags().BoolVar(&a.json, "json", false, "print machine-readable JSON on stdout; human text goes to stderr")

	root.AddCommand(
		a.versionCommand(),
		a.validateCommand(),
		a.diffCommand(),
		a.initCommand(),
		a.bootstrapCommand(),
		a.stateCommand(),
		a.lockCommand(),
		a.localCommand(),
		a.planCommand(),
		a.applyCommand(),
		a.importCommand(),
		a.destroyCommand(),
		a.outputCommand(),
		a.configureCommand(),
		a.deployCommand(),
		a.deviceCommand(),
		a.verifyCommand(),
		a.secretsCommand(),
		a.dbCommand(),
		a.graphCommand(),
	)
	return root
}
