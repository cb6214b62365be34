package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/accoreboot/acco/internal/spec"
)

// validateResult is the JSON document of `acco validate`.
type validateResult struct {
	Env      string        `json:"env"`
	Valid    bool          `json:"valid"`
	Errors   []*spec.Error `json:"errors,omitempty"`
	Warnings []*spec.Error `json:"warnings,omitempty"`
	Other    string        `json:"error,omitempty"`
}

func (a *app) validateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "validate [ENV...]",
		Short: "Load and check environments; touches nothing remote",
		Long: `Validate loads environments/defaults.yaml merged with environments/ENV.yaml,
decodes it strictly and checks every rule and cross reference. It makes no
network call. With no ENV it validates every environment in the directory.
Each problem is printed as file:line:column: key.path: message. Warnings
(what is allowed but probably not meant, such as PowerSync without the
application's sync rules) go to stderr and do not fail the validation.`,
		Example: "  acco validate test\n  acco validate            # every environment\n  acco validate prod --json",
		RunE: func(cmd *cobra.Command, args []string) error {
			names := args
			if len(names) == 0 {
				all, err := spec.Names(a.envDir)
				if err != nil {
					return err
				}
				names = all
			}
			var results []validateResult
			failed := 0
			h := a.human()
			for _, name := range names {
				env, err := a.loadEnv(name)
				res := validateResult{Env: name, Valid: err == nil}
				if err != nil {
					failed++
					var list spec.ErrorList
					if errors.As(err, &list) {
						res.Errors = list
					} else {
						res.Other = err.Error()
					}
					fmt.Fprintln(a.err, err.Error())
				} else {
					res.Warnings = env.Warnings()
					a.printWarnings(env)
					h.printf("%s: valid (%s)\n", name, describeEnv(env))
				}
				results = append(results, res)
			}
			if a.json {
				if err := a.printJSON(map[string]any{"valid": failed == 0, "environments": results}); err != nil {
					return err
				}
			}
			if failed > 0 {
				return &codedError{code: exitError, err: fmt.Errorf("%d of %d environments invalid", failed, len(names)), reported: true}
			}
			return nil
		},
	}
}

// describeEnv summarises an environment in one line.
func describeEnv(env *spec.Environment) string {
	return fmt.Sprintf("project %s, region %s, %d instance(s), %d database(s)", env.Project, env.Region, len(env.Instances), len(env.Databases))
}

// printWarnings prints the environment's warnings on stderr, one per line.
func (a *app) printWarnings(env *spec.Environment) {
	for _, w := range env.Warnings() {
		fmt.Fprintf(a.err, "Warning: %s\n", w.Error())
	}
}
