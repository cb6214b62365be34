package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/accoreboot/acco/state"
)

func (a *app) outputCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "output ENV [NAME]",
		Short: "Print the outputs of the last apply: addresses, database host, port and URI",
		Long: `Output prints the values apply computed: each instance's addresses
(instance.NAME.ipv4, instance.NAME.ipv6) and each database's host, port and
URI (database.NAME.host, .port, .uri), never a password. With NAME it prints
that value alone (a bare string, for scripts).`,
		Example: `  acco output test
  acco output test instance.app.ipv4
  acco output prod --json`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			_, blob, err := a.envAndState(ctx, args[0])
			if err != nil {
				return err
			}
			st, _, err := state.NewStore(blob).Read(ctx, args[0])
			if errors.Is(err, state.ErrNotFound) {
				return withHint(fmt.Errorf("environment %s has no state yet", args[0]), "run acco apply %s first", args[0])
			}
			if err != nil {
				return fmt.Errorf("reading the state of %s: %w", args[0], err)
			}
			outs := map[string]any{}
			for k, o := range st.Outputs {
				if o.Sensitive {
					outs[k] = "(sensitive)"
				} else {
					outs[k] = o.Value
				}
			}
			if len(args) == 2 {
				v, ok := outs[args[1]]
				if !ok {
					names := make([]string, 0, len(outs))
					for k := range outs {
						names = append(names, k)
					}
					slices.Sort(names)
					return fmt.Errorf("environment %s has no output %s (it has: %s)", args[0], args[1], strings.Join(names, ", "))
				}
				if a.json {
					return a.printJSON(v)
				}
				fmt.Fprintln(a.out, v)
				return nil
			}
			if a.json {
				return a.printJSON(outs)
			}
			names := make([]string, 0, len(outs))
			width := 0
			for k := range outs {
				names = append(names, k)
				width = max(width, len(k))
			}
			slices.Sort(names)
			for _, k := range names {
				fmt.Fprintf(a.out, "%-*s = %v\n", width, k, outs[k])
			}
			return nil
		},
	}
}
