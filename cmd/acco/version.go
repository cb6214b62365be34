package main

import (
	"runtime"

	"github.com/spf13/cobra"
)

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version of acco",
		Example: "  acco version\n  acco version --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			version, commit := buildVersion()
			if a.json {
				return a.printJSON(map[string]string{
					"version":  version,
					"commit":   commit,
					"go":       runtime.Version(),
					"platform": runtime.GOOS + "/" + runtime.GOARCH,
				})
			}
			line := "acco " + version
			if commit != "" {
				line += " (" + commit + ")"
			}
			a.human().printf("%s %s %s/%s\n", line, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}
