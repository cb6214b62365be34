package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"
	"github.com/spf13/cobra"

	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/state"
)

// check is one line of the `acco init` checklist.
type check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

func (a *app) initCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "init ENV",
		Short: "Check that an environment is ready: valid YAML, credentials present, state reachable",
		Long: `Init validates ENV, checks that the OpenStack, OVH API, S3 and state-key
credentials it needs are present (it never prints them), reads the state and
the lock from the state bucket, and checks that the bucket honours the
conditional writes locks rely on (If-None-Match and If-Match): it writes a
probe object under .acco-probe/ and removes it. It changes nothing else.`,
		Example: "  acco init test\n  source credentials.sh && acco init prod --json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			checks := a.preflight(ctx, args[0])
			failed := 0
			for _, c := range checks {
				if !c.OK {
					failed++
				}
			}
			if a.json {
				if err := a.printJSON(map[string]any{"env": args[0], "ok": failed == 0, "checks": checks}); err != nil {
					return err
				}
			}
			h := a.human()
			for _, c := range checks {
				mark := "ok  "
				if !c.OK {
					mark = "FAIL"
				}
				h.printf("%s %-22s %s\n", mark, c.Name, c.Detail)
			}
			if failed > 0 {
				return &codedError{code: exitError, err: fmt.Errorf("%d check(s) failed for %s", failed, args[0])}
			}
			return nil
		},
	}
}

// preflight runs every readiness check of an environment.
func (a *app) preflight(ctx context.Context, name string) []check {
	env, err := a.loadEnv(name)
	if err != nil {
		return []check{{Name: "environment", Detail: err.Error()}}
	}
	checks := []check{{Name: "environment", OK: true, Detail: fmt.Sprintf("%s valid", filepath.Join(a.envDir, name+".yaml"))}}
	checks = append(checks, a.checkOpenStack(env), a.checkOVH(), a.checkStateKey())
	loc, source, err := a.stateLocation(env)
	if err != nil {
		return append(checks, check{Name: "state", Detail: err.Error()})
	}
	if strings.HasPrefix(loc, "s3://") {
		checks = append(checks, a.checkS3Credentials())
	}
	c, blob := a.checkState(ctx, name, loc, source)
	checks = append(checks, c)
	if checker, ok := blob.(state.ConditionalChecker); ok && c.OK {
		checks = append(checks, checkConditionalWrites(ctx, checker, loc))
	}
	return checks
}

// checkConditionalWrites probes the store's conditional writes, on which
// locks and state writes rely.
func checkConditionalWrites(ctx context.Context, checker state.ConditionalChecker, loc string) check {
	c := check{Name: "conditional writes"}
	if err := checker.CheckConditionalWrites(ctx); err != nil {
		err = conditionalWritesError(loc, err)
		c.Detail = err.Error()
		var h interface{ Hint() string }
		if errors.As(err, &h) {
			c.Detail += "; " + h.Hint()
		}
		return c
	}
	c.OK, c.Detail = true, "If-None-Match and If-Match honoured (probe object written and removed)"
	return c
}

func (a *app) checkOpenStack(env *spec.Environment) check {
	c := check{Name: "openstack credentials"}
	if env.Cloud != "" {
		var opts []clouds.ParseOption
		opts = append(opts, clouds.WithCloudName(env.Cloud))
		if f := a.getenv("OS_CLIENT_CONFIG_FILE"); f != "" {
			opts = append(opts, clouds.WithLocations(f))
		}
		auth, _, _, err := clouds.Parse(opts...)
		if err == nil {
			c.OK = true
			c.Detail = fmt.Sprintf("clouds.yaml entry %q (user %s)", env.Cloud, auth.Username)
			if auth.TenantID != "" && env.Project != "" && auth.TenantID != env.Project {
				c.OK = false
				c.Detail = fmt.Sprintf("clouds.yaml entry %q is for project %s, but %s.yaml names project %s", env.Cloud, auth.TenantID, env.Name, env.Project)
			}
			return c
		}
		c.Detail = fmt.Sprintf("clouds.yaml entry %q: %v; ", env.Cloud, err)
	}
	missing := a.missingVars("OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_ID", "OS_REGION_NAME")
	if len(missing) == 0 {
		c.OK = true
		c.Detail = "OS_* variables set"
		if p := a.getenv("OS_PROJECT_ID"); env.Project != "" && p != env.Project {
			c.OK = false
			c.Detail = fmt.Sprintf("OS_PROJECT_ID is %s, but %s.yaml names project %s", p, env.Name, env.Project)
		}
		return c
	}
	c.Detail += "unset: " + strings.Join(missing, " ") + " (source credentials.sh, or add the cloud to clouds.yaml)"
	return c
}

func (a *app) checkOVH() check {
	c := check{Name: "ovh api credentials"}
	missing := a.missingVars("OVH_ENDPOINT", "OVH_APPLICATION_KEY", "OVH_APPLICATION_SECRET", "OVH_CONSUMER_KEY")
	if len(missing) == 0 {
		c.OK, c.Detail = true, "OVH_* variables set"
		return c
	}
	home, _ := os.UserHomeDir()
	for _, p := range []string{"ovh.conf", filepath.Join(home, ".ovh.conf"), "/etc/ovh.conf"} {
		if _, err := os.Stat(p); err == nil {
			c.OK, c.Detail = true, "go-ovh configuration file "+p
			return c
		}
	}
	c.Detail = "unset: " + strings.Join(missing, " ") + " and no ovh.conf (see credentials.sh.example)"
	return c
}

func (a *app) checkStateKey() check {
	c := check{Name: "state key"}
	key := a.getenv("ACCO_STATE_KEY")
	if key == "" {
		c.Detail = "ACCO_STATE_KEY is unset: it seals secrets in state (generate one with: openssl rand -base64 32, and keep it in your password manager)"
		return c
	}
	if _, err := state.NewSealer(key); err != nil {
		c.Detail = err.Error()
		return c
	}
	c.OK, c.Detail = true, "ACCO_STATE_KEY set"
	return c
}

func (a *app) checkS3Credentials() check {
	c := check{Name: "s3 credentials"}
	missing := a.missingVars("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
	if len(missing) == 0 || a.getenv("AWS_PROFILE") != "" {
		c.OK, c.Detail = true, "AWS_* variables set"
		return c
	}
	c.Detail = "unset: " + strings.Join(missing, " ") + " (S3 credentials of the OVH project that holds the state bucket)"
	return c
}

// checkState reads the state and the lock of name; it returns the store
// when it could be opened.
func (a *app) checkState(ctx context.Context, name, loc, source string) (check, state.Blob) {
	c := check{Name: "state"}
	blob, err := state.OpenBlob(ctx, loc)
	if err != nil {
		c.Detail = fmt.Sprintf("%s (from %s): %v", redactURL(loc), source, err)
		return c, nil
	}
	st, _, err := state.NewStore(blob).Read(ctx, name)
	switch {
	case errors.Is(err, state.ErrNotFound):
		c.Detail = fmt.Sprintf("%s reachable, no state for %s yet", describeLocation(loc), name)
	case err != nil:
		c.Detail = fmt.Sprintf("%s: %v (is the bucket bootstrapped? run acco bootstrap)", redactURL(loc), err)
		return c, blob
	default:
		c.Detail = fmt.Sprintf("%s reachable, serial %d, %d resources", describeLocation(loc), st.Serial, len(st.Resources))
	}
	info, err := state.NewLocker(blob).Status(ctx, name)
	if err != nil {
		c.Detail += fmt.Sprintf("; lock unreadable: %v", err)
		return c, blob
	}
	if info != nil {
		c.Detail += fmt.Sprintf("; locked by %s (%s)", info.Who, info.Operation)
	}
	c.OK = true
	return c, blob
}

// missingVars lists the variables among names that are unset or empty.
func (a *app) missingVars(names ...string) []string {
	var missing []string
	for _, n := range names {
		if a.getenv(n) == "" {
			missing = append(missing, n)
		}
	}
	return missing
}
