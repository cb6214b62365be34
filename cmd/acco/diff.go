package main

import (
	"errors"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/accoreboot/acco/internal/envdiff"
	"github.com/accoreboot/acco/internal/spec"
)

func (a *app) diffCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "diff ENV1 ENV2",
		Short: "Show how two environments differ, key by key; touches nothing remote",
		Long: `Diff loads both environments as every command does (defaults.yaml merged
with ENV.yaml, ${VAR} expanded, defaults filled, validated) and lists every
key whose resolved value differs, grouped by resource (instances.app,
databases.main, security_groups.app, services.emqx, ...; name, project,
cloud, region and state under "environment"). A key one environment does not
have shows as (absent). Files (certificates, keys, artifacts) are compared by
their paths; none is read. Values of services.backend.env taken from the
operator's environment variables show as (hidden). It makes no network call.

Exit codes: 0 the environments are the same, 1 error, 2 they differ.`,
		Example: "  acco diff test prod\n  acco diff preprod prod --json | jq '.groups[].resource'",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			seen := &lookedUp{lookup: a.lookupEnv}
			var envs [2]*spec.Environment
			for i, name := range args {
				env, err := spec.Load(a.envDir, name, seen.get)
				if err != nil {
					return err
				}
				envs[i] = env
			}
			res := envdiff.Compare(envs[0], envs[1], envdiff.Options{Hide: seen.hide})
			if a.json {
				if err := a.printJSON(res); err != nil {
					return err
				}
			} else if err := res.Render(a.out); err != nil {
				return err
			}
			if !res.Equal {
				return &codedError{code: exitChanges, err: errors.New("the environments differ"), reported: true}
			}
			return nil
		},
	}
}

// lookedUp remembers the values the environments took from the operator's
// variables, so that the backend's environment values that hold one (they
// may be secrets) are not printed.
type lookedUp struct {
	lookup func(string) (string, bool)
	mu     sync.Mutex
	values []string
}

func (l *lookedUp) get(name string) (string, bool) {
	v, ok := l.lookup(name)
	if ok && v != "" {
		l.mu.Lock()
		l.values = append(l.values, v)
		l.mu.Unlock()
	}
	return v, ok
}

func (l *lookedUp) hide(key, value string) bool {
	if !strings.HasPrefix(key, "services.backend.env.") {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, v := range l.values {
		if strings.Contains(value, v) {
			return true
		}
	}
	return false
}
