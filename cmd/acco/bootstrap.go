package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/state"
)

// bootstrapResult is one bucket in the JSON document of `acco bootstrap`.
type bootstrapResult struct {
	Location string                `json:"location"`
	Envs     []string              `json:"envs"`
	Changed  bool                  `json:"changed"`
	Report   state.BootstrapReport `json:"report"`
	// ConditionalWrites: the store was seen to honour If-None-Match and
	// If-Match (a probe object written and removed).
	ConditionalWrites bool `json:"conditional_writes"`

	source string // where Location comes from: --state, ACCO_STATE or the YAML
}

func (a *app) bootstrapCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "bootstrap [ENV...]",
		Short: "Create the state bucket with versioning on (idempotent)",
		Long: `Bootstrap creates the bucket that holds state and locks, turns versioning on
and marks the bucket as acco's. Run it once per OVH account; running it again
changes nothing and says so. A bucket of that name that exists but was not
made by acco is refused. The bucket comes from the state section of the
environments (all of them unless ENV is given), or from --state / ACCO_STATE.

Locks and state writes rely on the server honouring conditional writes
(If-None-Match: * and If-Match on PutObject): bootstrap writes a probe object
under .acco-probe/ with those conditions, removes it, and refuses a bucket or
endpoint that ignores them.`,
		Example: "  acco bootstrap\n  ACCO_STATE=file://$HOME/.acco/state acco bootstrap",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			targets, err := a.bootstrapTargets(args)
			if err != nil {
				return err
			}
			var results []bootstrapResult
			h := a.human()
			for _, t := range targets {
				blob, err := state.OpenBlob(ctx, t.Location)
				if err != nil {
					return fmt.Errorf("open state at %s (from %s): %w", redactURL(t.Location), t.source, err)
				}
				ensurer, ok := blob.(state.Bootstrapper)
				if !ok {
					return fmt.Errorf("state at %s cannot be bootstrapped by acco", redactURL(t.Location))
				}
				report, err := ensurer.EnsureBucket(ctx)
				if err != nil {
					return fmt.Errorf("bootstrap %s: %w", redactURL(t.Location), err)
				}
				if checker, ok := blob.(state.ConditionalChecker); ok {
					if err := checker.CheckConditionalWrites(ctx); err != nil {
						return conditionalWritesError(t.Location, err)
					}
					t.ConditionalWrites = true
				}
				t.Report = report
				t.Changed = report.Changed()
				results = append(results, t)
				if t.Changed {
					h.printf("%s: %s\n", describeLocation(t.Location), report)
				} else {
					h.printf("%s: nothing to do: the bucket exists, is acco's and has versioning on\n", describeLocation(t.Location))
				}
			}
			if a.json {
				return a.printJSON(map[string]any{"buckets": results})
			}
			return nil
		},
	}
}

// bootstrapTargets lists the distinct state locations to bootstrap.
func (a *app) bootstrapTargets(names []string) ([]bootstrapResult, error) {
	if a.stateURL != "" || a.getenv("ACCO_STATE") != "" {
		loc, source, err := a.stateLocation(nil)
		if err != nil {
			return nil, err
		}
		return []bootstrapResult{{Location: loc, Envs: names, source: source}}, nil
	}
	if len(names) == 0 {
		all, err := spec.Names(a.envDir)
		if err != nil {
			return nil, err
		}
		names = all
	}
	var out []bootstrapResult
	index := map[string]int{}
	for _, name := range names {
		env, err := a.loadEnv(name)
		if err != nil {
			return nil, err
		}
		loc, source, err := a.stateLocation(env)
		if err != nil {
			return nil, err
		}
		if i, ok := index[loc]; ok {
			out[i].Envs = append(out[i].Envs, name)
			continue
		}
		index[loc] = len(out)
		out = append(out, bootstrapResult{Location: loc, Envs: []string{name}, source: source})
	}
	return out, nil
}

// conditionalWritesError explains why a store whose conditional writes
// failed the probe is refused, and what to do.
func conditionalWritesError(loc string, err error) error {
	if !errors.Is(err, state.ErrNoConditionalWrites) {
		return fmt.Errorf("checking conditional writes on %s: %w", redactURL(loc), err)
	}
	return withHint(fmt.Errorf("refusing the state store %s: %w", describeLocation(loc), err),
		"keep state in an S3 service that honours If-None-Match and If-Match on PutObject: OVH Object Storage does (https://s3.REGION.io.cloud.ovh.net), as do AWS S3 and MinIO; a proxy or gateway in front of it must pass these headers on")
}
