package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/accoreboot/acco/internal/localcloud"
	"github.com/accoreboot/acco/internal/localcloud/knobs"
	"github.com/accoreboot/acco/internal/localcloud/vm"
	"github.com/accoreboot/acco/internal/spec"
)

// defaultLocalDir is where the local cloud keeps everything by default.
const defaultLocalDir = ".acco/local"

func (a *app) localCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "local",
		Short: "Run an offline OVH Public Cloud on this machine (OpenStack, OVH API, PostgreSQL, S3)",
		Long: `The local cloud is an offline double of OVHcloud Public Cloud on loopback:
Keystone, Nova, Neutron and Glance; the OVH API with managed PostgreSQL
clusters backed by real PostgreSQL servers when PostgreSQL is installed; and
S3 for the state bucket. acco, gophercloud, go-ovh, the OpenStack CLI and the
AWS CLI all run against it unchanged. It can be made slow and flaky on purpose.
With --vms, every server is a real QEMU VM (the image of make vm-image) that
answers SSH at its IPv4 address, 127.0.0.N, on port 22.`,
		Example: `  acco local up
  eval "$(acco local env)"
  acco bootstrap && acco lock status test
  acco local status --json
  acco local down`,
	}
	cmd.AddCommand(a.localUpCommand(), a.localServeCommand(), a.localDownCommand(), a.localStatusCommand(), a.localEnvCommand())
	return cmd
}

// localFlags are the options of `acco local up` and `acco local serve`.
type localFlags struct {
	dir        string
	latency    time.Duration
	jitter     time.Duration
	faults     float64
	faultKinds string
	seed       uint64
	postgres   string
	tokenTTL   time.Duration
	build      time.Duration
	address    time.Duration
	dbCreate   time.Duration
	dbDelete   time.Duration
	vms        bool
	vmImage    string
}

func (f *localFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.dir, "dir", defaultLocalDir, "directory that holds everything the local cloud keeps")
	fl.DurationVar(&f.latency, "latency", 0, "latency added to every request, e.g. 50ms")
	fl.DurationVar(&f.jitter, "jitter", 0, "up to this much more latency, at random")
	fl.Float64Var(&f.faults, "faults", 0, "share of requests that fail on purpose, between 0 and 1 (e.g. 0.1)")
	fl.StringVar(&f.faultKinds, "fault-kinds", "all", "which faults to inject: all, or some of 500,503,429,drop,lost-response,slow")
	fl.Uint64Var(&f.seed, "seed", 1, "seed of the latency jitter and of the faults, for repeatable runs")
	fl.StringVar(&f.postgres, "postgres", localcloud.PostgresAuto, "managed databases on real PostgreSQL: auto (one server per cluster when PostgreSQL is installed), on, off, or the connection string of an existing server all clusters share (password in PGPASSWORD)")
	fl.DurationVar(&f.tokenTTL, "token-ttl", time.Hour, "lifetime of Keystone tokens")
	fl.DurationVar(&f.build, "build-delay", 2*time.Second, "how long a new server stays in BUILD")
	fl.DurationVar(&f.address, "address-delay", time.Second, "how long after ACTIVE a server's Ext-Net address shows")
	fl.DurationVar(&f.dbCreate, "db-create-delay", 5*time.Second, "how long a new database stays CREATING")
	fl.DurationVar(&f.dbDelete, "db-delete-delay", 2*time.Second, "how long a deleted database stays DELETING")
	fl.BoolVar(&f.vms, "vms", false, "run every server as a QEMU VM reachable over SSH at its IPv4 address (127.0.0.N) on port 22; needs the image of make vm-image")
	fl.StringVar(&f.vmImage, "vm-image", "", "directory of the VM image, with --vms (default $ACCO_VM_IMAGE, else .acco/vm-image in the module root)")
}

// args renders the flags back into a command line for `acco local serve`.
func (f *localFlags) args() []string {
	return []string{
		"--dir", f.dir,
		"--latency", f.latency.String(),
		"--jitter", f.jitter.String(),
		"--faults", strconv.FormatFloat(f.faults, 'g', -1, 64),
		"--fault-kinds", f.faultKinds,
		"--seed", strconv.FormatUint(f.seed, 10),
		"--postgres", f.postgres,
		"--token-ttl", f.tokenTTL.String(),
		"--build-delay", f.build.String(),
		"--address-delay", f.address.String(),
		"--db-create-delay", f.dbCreate.String(),
		"--db-delete-delay", f.dbDelete.String(),
		"--vms=" + strconv.FormatBool(f.vms),
		"--vm-image", f.vmImage,
	}
}

// options turns the flags into local cloud options; the projects come from
// the environments, so `acco plan test` finds the project test.yaml names.
func (a *app) localOptions(f *localFlags) (localcloud.Options, error) {
	kinds, err := knobs.ParseFaults(f.faultKinds)
	if err != nil {
		return localcloud.Options{}, fmt.Errorf("--fault-kinds: %w", err)
	}
	if f.faults < 0 || f.faults > 1 {
		return localcloud.Options{}, fmt.Errorf("--faults %v: give a share between 0 and 1, e.g. 0.1", f.faults)
	}
	imageDir := f.vmImage
	if f.vms {
		if imageDir == "" {
			imageDir = vm.DefaultImageDir()
		}
		abs, err := filepath.Abs(imageDir)
		if err != nil {
			return localcloud.Options{}, fmt.Errorf("--vm-image %s: %w", imageDir, err)
		}
		imageDir = abs
		if err := vm.ImageAvailable(imageDir); err != nil {
			return localcloud.Options{}, fmt.Errorf("--vms: %w", err)
		}
	}
	return localcloud.Options{
		Dir:           f.dir,
		Latency:       f.latency,
		Jitter:        f.jitter,
		FaultRate:     f.faults,
		Faults:        kinds,
		Seed:          f.seed,
		Postgres:      f.postgres,
		TokenTTL:      f.tokenTTL,
		BuildDelay:    f.build,
		AddressDelay:  f.address,
		DBCreateDelay: f.dbCreate,
		DBDeleteDelay: f.dbDelete,
		Projects:      a.environmentProjects(),
		VMs:           f.vms,
		VMImageDir:    imageDir,
	}, nil
}

// environmentProjects lists the project of each environment that loads.
func (a *app) environmentProjects() []localcloud.Project {
	names, err := spec.Names(a.envDir)
	if err != nil {
		return nil
	}
	var out []localcloud.Project
	for _, name := range names {
		env, err := a.loadEnv(name)
		if err != nil || env.Project == "" {
			fmt.Fprintf(a.err, "Warning: local cloud: no project for environment %s: %v\n", name, err)
			continue
		}
		out = append(out, localcloud.Project{Env: name, ID: env.Project})
	}
	return out
}

func (a *app) localUpCommand() *cobra.Command {
	var f localFlags
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start the local cloud in the background (a second up reports the running one)",
		Example: `  acco local up
  acco local up --latency 50ms --jitter 10ms --faults 0.1 --seed 7
  acco local up --postgres off --dir /tmp/cloud
  acco local up --vms`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := a.localOptions(&f)
			if err != nil {
				return err
			}
			// The background server gets the resolved image directory, so
			// it does not depend on its working directory.
			f.vmImage = opts.VMImageDir
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find the acco binary: %w", err)
			}
			args := append([]string{"--environments", a.envDir, "local", "serve"}, f.args()...)
			info, started, err := localcloud.Up(cmd.Context(), f.dir, exe, args)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(map[string]any{"started": started, "local": info})
			}
			h := a.human()
			if started {
				h.printf("local cloud started (pid %d) in %s\n", info.PID, info.Dir)
			} else {
				h.printf("local cloud already running (pid %d) in %s; acco local down stops it\n", info.PID, info.Dir)
			}
			h.printf("  OpenStack identity  %s\n  OVH API             %s\n  S3                  %s\n", info.Endpoints.Identity, info.Endpoints.OVH, info.Endpoints.S3)
			h.printf("  PostgreSQL          %s\n", postgresSummary(info))
			for _, p := range info.PostgresProblems {
				h.printf("  Warning: %s\n", p)
			}
			if info.VMs {
				h.printf("  VMs                 on: servers are QEMU VMs, SSH at their IPv4 address (127.0.0.N) port 22\n")
			}
			h.printf("Point your shell at it with: eval \"$(acco local env)\"\n")
			return nil
		},
	}
	f.register(cmd)
	return cmd
}

func (a *app) localServeCommand() *cobra.Command {
	var f localFlags
	cmd := &cobra.Command{
		Use:    "serve",
		Short:  "Run the local cloud in the foreground (acco local up runs this in the background)",
		Args:   cobra.NoArgs,
		Hidden: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := a.localOptions(&f)
			if err != nil {
				return err
			}
			c, err := localcloud.Start(cmd.Context(), opts)
			if err != nil {
				return err
			}
			info := c.Info()
			fmt.Fprintf(a.err, "local cloud serving %s: api %s, s3 %s\n", info.Dir, info.APIURL, info.S3URL)
			serr := c.Serve(cmd.Context())
			// Serve returns once the context is cancelled (acco local down
			// sends SIGTERM): stopping the VMs and PostgreSQL servers must
			// not inherit that cancellation, or they would be left running.
			closeCtx, cancel := context.WithTimeout(context.WithoutCancel(cmd.Context()), 2*time.Minute)
			defer cancel()
			cerr := c.Close(closeCtx)
			if serr != nil {
				return serr
			}
			return cerr
		},
	}
	f.register(cmd)
	return cmd
}

func (a *app) localDownCommand() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:     "down",
		Short:   "Stop the local cloud; what it holds stays in its directory",
		Example: "  acco local down",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			stopped, err := localcloud.Down(cmd.Context(), dir)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(map[string]any{"stopped": stopped, "dir": dir})
			}
			if stopped {
				a.human().printf("local cloud in %s stopped\n", dir)
			} else {
				a.human().printf("no local cloud was running in %s\n", dir)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", defaultLocalDir, "directory of the local cloud")
	return cmd
}

func (a *app) localStatusCommand() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:     "status",
		Short:   "Show the endpoints and resource counts of the local cloud",
		Example: "  acco local status\n  acco local status --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := localcloud.GetStatus(cmd.Context(), dir)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(st)
			}
			h := a.human()
			h.printf("local cloud running (pid %d) in %s since %s\n", st.PID, st.Dir, st.Started.Local().Format(time.RFC3339))
			h.printf("  OpenStack identity  %s\n  OVH API             %s\n  S3                  %s\n", st.Endpoints.Identity, st.Endpoints.OVH, st.Endpoints.S3)
			h.printf("  PostgreSQL          %s\n", postgresSummary(&st.Info))
			for _, p := range st.PostgresProblems {
				h.printf("  Warning: %s\n", p)
			}
			h.printf("  latency %s (+%s jitter), faults %v, vms %v\n", st.Options.Latency, st.Options.Jitter, st.Options.FaultRate, st.VMs)
			for _, k := range sortedKeys(st.Counts) {
				h.printf("  %-28s %d\n", k, st.Counts[k])
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", defaultLocalDir, "directory of the local cloud")
	return cmd
}

// postgresSummary says what runs the managed databases of a local cloud:
// the PostgreSQL version and where it comes from, or why none does.
func postgresSummary(info *localcloud.Info) string {
	if !info.Postgres {
		note := "off"
		if info.PostgresNote != "" {
			note = info.PostgresNote
		}
		return "none (" + note + "): databases get endpoints that lead nowhere"
	}
	if info.PostgresVersion == "" {
		return "on" // a cloud started by an acco that did not record the version
	}
	where := info.PostgresSource
	if info.PostgresBinDir != "" {
		where += ", " + info.PostgresBinDir
	}
	return info.PostgresVersion + " (" + where + ")"
}

func (a *app) localEnvCommand() *cobra.Command {
	var dir, env string
	cmd := &cobra.Command{
		Use:   "env",
		Short: "Print export lines that point OpenStack, OVH, S3 clients and acco at the local cloud",
		Long: `Env prints shell export lines (OS_*, OVH_*, AWS_*, ACCO_STATE, ACCO_STATE_KEY)
for the project of one environment, and writes clouds.yaml and secure.yaml
with one entry per project (acco-test, acco-preprod, acco-prod) into the
local cloud's directory. They hold the local cloud's generated credentials:
nothing that reaches OVH.

It also exports what the local environment needs to be deployed and
configured: the local cloud's deploy key (ACCO_DEPLOY_PUBLIC_KEY_FILE and
ACCO_SSH_KEY, an ed25519 pair made once in the cloud's directory as
deploy-key and deploy-key.pub) and the example backend that
make example-backend packs (ACCO_BACKEND_ARTIFACT, .acco/example-backend.tar.gz
in the module root). After eval, acco plan, apply, configure and verify of
the local environment need no other variable. ACCO_DEPLOY_PUBLIC_KEY_FILE
or ACCO_BACKEND_ARTIFACT already exported are yours and stay as they are.`,
		Example: "  eval \"$(acco local env)\"\n  eval \"$(acco local env --env prod)\"",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info, err := localcloud.Running(cmd.Context(), dir)
			if err != nil {
				return err
			}
			creds, err := localcloud.LoadCredentials(info.Dir)
			if err != nil {
				return err
			}
			if _, err := localcloud.WriteCloudsYAML(info, creds); err != nil {
				return err
			}
			vars, err := localcloud.Variables(info, creds, env)
			if err != nil {
				return err
			}
			more, notes, err := a.localDeployVars(info)
			if err != nil {
				return err
			}
			vars = append(vars, more...)
			if a.json {
				doc := map[string]string{}
				for _, v := range vars {
					doc[v.Name] = v.Value
				}
				return a.printJSON(map[string]any{"env": env, "dir": info.Dir, "variables": doc})
			}
			text := localcloud.ExportLines(info, env, vars)
			for _, n := range notes {
				text += "# " + n + "\n"
			}
			_, err = fmt.Fprint(a.out, text)
			return err
		},
	}
	cmd.Flags().StringVar(&dir, "dir", defaultLocalDir, "directory of the local cloud")
	cmd.Flags().StringVar(&env, "env", "test", "environment whose project the OS_* variables name")
	return cmd
}

// localDeployVars are the variables the local environment needs beyond the
// cloud: the local cloud's deploy key and the example backend. A value the
// operator already exported is theirs and is kept (not printed again); the
// private half of their own deploy key is found next to its .pub file or
// in ssh-agent. The notes say what is missing (the example backend not
// packed yet); they are printed as shell comments.
func (a *app) localDeployVars(info *localcloud.Info) (vars []localcloud.Var, notes []string, err error) {
	if a.getenv("ACCO_DEPLOY_PUBLIC_KEY_FILE") == "" {
		key, err := localcloud.EnsureDeployKey(info.Dir)
		if err != nil {
			return nil, nil, err
		}
		vars = append(vars,
			localcloud.Var{Name: "ACCO_DEPLOY_PUBLIC_KEY_FILE", Value: key.Public},
			localcloud.Var{Name: "ACCO_SSH_KEY", Value: key.Private})
	}
	if a.getenv("ACCO_BACKEND_ARTIFACT") == "" {
		artifact, err := exampleBackend()
		if err != nil {
			return nil, nil, err
		}
		if _, err := os.Stat(artifact); err != nil {
			notes = append(notes, fmt.Sprintf("the example backend %s is not there yet: make example-backend packs it (acco configure local uploads it)", artifact))
		}
		vars = append(vars, localcloud.Var{Name: "ACCO_BACKEND_ARTIFACT", Value: artifact})
	}
	return vars, notes, nil
}

// exampleBackendFile is where make example-backend packs examples/backend,
// relative to the module root.
const exampleBackendFile = ".acco/example-backend.tar.gz"

// exampleBackend returns the absolute path of the example backend: in the
// module root (the nearest directory up from here with a go.mod), else
// under the working directory.
func exampleBackend() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find the example backend: %w", err)
	}
	for d := wd; ; {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, exampleBackendFile), nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return filepath.Join(wd, exampleBackendFile), nil
		}
		d = parent
	}
}
