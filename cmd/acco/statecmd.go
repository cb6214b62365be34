package main

import (
	"errors"
	"fmt"
	"sort"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/accoreboot/acco/state"
)

// sensitive is what a sealed value is shown as.
const sensitive = "(sensitive)"

func (a *app) stateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "state",
		Short: "Read the recorded state of an environment",
		Long: `State commands read <env>/state.json from the state bucket: the resources
acco manages, their IDs and attributes. Secrets are sealed in state and shown
as "(sensitive)".`,
	}
	cmd.AddCommand(a.stateListCommand(), a.stateShowCommand(), a.statePullCommand())
	return cmd
}

// readState reads the state of an environment; no state yet is an error
// that says how state comes to exist.
func (a *app) readState(cmd *cobra.Command, name string) (*state.State, error) {
	ctx := cmd.Context()
	_, blob, err := a.envAndState(ctx, name)
	if err != nil {
		return nil, err
	}
	st, _, err := state.NewStore(blob).Read(ctx, name)
	if errors.Is(err, state.ErrNotFound) {
		return nil, noStateYet(name)
	}
	if err != nil {
		return nil, fmt.Errorf("read state of %s: %w", name, err)
	}
	return st, nil
}

// noStateYet is the error of reading the state of an environment that has
// none: it says how state comes to exist.
func noStateYet(env string) error {
	return withHint(fmt.Errorf("no state for %s yet", env), "state is written by the first apply of %s; check --state / ACCO_STATE if you expected one", env)
}

// stateListEntry is one resource in `acco state list --json`.
type stateListEntry struct {
	Address string `json:"address"`
	Kind    string `json:"kind"`
	ID      string `json:"id"`
	Status  string `json:"status,omitempty"`
}

func (a *app) stateListCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "list ENV",
		Short:   "List the resources recorded in the state of an environment",
		Example: "  acco state list test\n  acco state list prod --json | jq -r '.resources[].address'",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.readState(cmd, args[0])
			if err != nil {
				return err
			}
			entries := make([]stateListEntry, 0, len(st.Resources))
			for _, r := range st.Resources {
				entries = append(entries, stateListEntry{Address: r.Address, Kind: r.Kind, ID: r.ID, Status: r.Status})
			}
			if a.json {
				return a.printJSON(map[string]any{"env": st.Env, "lineage": st.Lineage, "serial": st.Serial, "resources": entries})
			}
			tw := tabwriter.NewWriter(a.out, 0, 0, 2, ' ', 0)
			for _, e := range entries {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", e.Address, e.ID, e.Status)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(entries) == 0 {
				fmt.Fprintf(a.err, "%s: state (serial %d) holds no resources\n", args[0], st.Serial)
			}
			return nil
		},
	}
}

// shownResource is a resource as `acco state show` prints it: secrets masked.
type shownResource struct {
	Address    string            `json:"address"`
	Kind       string            `json:"kind"`
	ID         string            `json:"id"`
	Status     string            `json:"status,omitempty"`
	Attributes map[string]any    `json:"attributes,omitempty"`
	Secrets    map[string]string `json:"secrets,omitempty"`
	DependsOn  []string          `json:"depends_on,omitempty"`
}

func (a *app) stateShowCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "show ENV ADDR",
		Short:   "Show one resource recorded in state (secrets masked)",
		Example: "  acco state show test instance.app\n  acco state show prod database.main --json",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.readState(cmd, args[0])
			if err != nil {
				return err
			}
			r, ok := st.Resource(args[1])
			if !ok {
				return withHint(fmt.Errorf("no resource %s in the state of %s", args[1], args[0]), "acco state list %s shows the addresses it holds", args[0])
			}
			shown := shownResource{Address: r.Address, Kind: r.Kind, ID: r.ID, Status: r.Status, Attributes: r.Attributes, DependsOn: r.DependsOn}
			if len(r.Secrets) > 0 {
				shown.Secrets = make(map[string]string, len(r.Secrets))
				for k := range r.Secrets {
					shown.Secrets[k] = sensitive
				}
			}
			if a.json {
				return a.printJSON(shown)
			}
			tw := tabwriter.NewWriter(a.out, 0, 0, 2, ' ', 0)
			fmt.Fprintf(tw, "address\t%s\nkind\t%s\nid\t%s\n", shown.Address, shown.Kind, shown.ID)
			if shown.Status != "" {
				fmt.Fprintf(tw, "status\t%s\n", shown.Status)
			}
			for _, k := range sortedKeys(shown.Attributes) {
				fmt.Fprintf(tw, "%s\t%v\n", k, shown.Attributes[k])
			}
			for _, k := range sortedKeys(shown.Secrets) {
				fmt.Fprintf(tw, "%s\t%s\n", k, sensitive)
			}
			if len(shown.DependsOn) > 0 {
				fmt.Fprintf(tw, "depends_on\t%v\n", shown.DependsOn)
			}
			return tw.Flush()
		},
	}
}

func (a *app) statePullCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "pull ENV",
		Short: "Print the raw state JSON of an environment on stdout",
		Long: `Pull prints <env>/state.json exactly as stored. Secrets in it are sealed with
ACCO_STATE_KEY, never in clear text.`,
		Example: "  acco state pull test > test-state.json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			_, blob, err := a.envAndState(ctx, args[0])
			if err != nil {
				return err
			}
			raw, err := state.NewStore(blob).Raw(ctx, args[0])
			if errors.Is(err, state.ErrNotFound) {
				return noStateYet(args[0])
			}
			if err != nil {
				return fmt.Errorf("read state of %s: %w", args[0], err)
			}
			_, err = a.out.Write(raw)
			return err
		},
	}
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
