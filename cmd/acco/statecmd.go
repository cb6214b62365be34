package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/accoreboot/acco/state"
)

// sensitive is what a sealed value is shown as.
const sensitive = "(sensitive)"

func (a *app) stateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "state",
		Short: "Read the recorded state of an environment, or forget a resource",
		Long: `State commands read <env>/state.json from the state bucket: the resources
acco manages, their IDs and attributes. Secrets are sealed in state and shown
as "(sensitive)".`,
	}
	cmd.AddCommand(a.stateListCommand(), a.stateShowCommand(), a.statePullCommand(), a.stateRmCommand())
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

type stateRmFlags struct {
	autoApprove bool
	lockTimeout time.Duration
}

// stateRmResult is `acco state rm --json`.
type stateRmResult struct {
	Env     string `json:"env"`
	Address string `json:"address"`
	ID      string `json:"id"`
	Serial  uint64 `json:"serial"`
	// Pending are the intents of the resource that were dropped with it.
	Pending int `json:"pending_dropped"`
}

func (a *app) stateRmCommand() *cobra.Command {
	var f stateRmFlags
	cmd := &cobra.Command{
		Use:   "rm ENV ADDR",
		Short: "Forget a resource: remove it from state without deleting it",
		Long: `Rm takes the environment's lock and removes the resource at ADDR from the
state of ENV, with its pending intents. Nothing is asked of the cloud: the
resource lives on, unmanaged. If the YAML still declares it, the next plan
adopts it again by its name where it can (or creates a new one); remove it
from the YAML first to let it go for good.

It asks you to type the address unless --auto-approve (required when stdin
is not a terminal).`,
		Example: "  acco state rm test security_group.old\n  acco state rm prod database_user.main.legacy --auto-approve",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runStateRm(cmd.Context(), args[0], args[1], f)
		},
	}
	cmd.Flags().BoolVar(&f.autoApprove, "auto-approve", false, "do not ask for confirmation (required when stdin is not a terminal)")
	cmd.Flags().DurationVar(&f.lockTimeout, "lock-timeout", 0, "wait this long for the state lock (default: fail at once)")
	return cmd
}

func (a *app) runStateRm(ctx context.Context, name, addr string, f stateRmFlags) error {
	if !f.autoApprove && !isTerminal(a.in) {
		return withHint(errors.New("refusing to ask for confirmation: stdin is not a terminal"), "pass --auto-approve to remove %s from the state of %s without asking", addr, name)
	}
	_, blob, err := a.envAndState(ctx, name)
	if err != nil {
		return err
	}
	lctx, release, err := a.lockEnv(ctx, blob, name, "state rm "+addr, f.lockTimeout)
	if err != nil {
		return err
	}
	defer release()
	store := state.NewStore(blob)
	st, etag, err := store.Read(lctx, name)
	if errors.Is(err, state.ErrNotFound) {
		return noStateYet(name)
	}
	if err != nil {
		return fmt.Errorf("read state of %s: %w", name, err)
	}
	r, ok := st.Resource(addr)
	if !ok {
		return unknownAddress(st, name, addr)
	}
	id := r.ID
	var dependents []string
	for _, o := range st.Resources {
		if slices.Contains(o.DependsOn, addr) {
			dependents = append(dependents, o.Address)
		}
	}
	h := a.human()
	h.printf("%s (id %s) will be removed from the state of %s. The cloud resource is not deleted: acco stops managing it.\n", addr, id, name)
	if len(dependents) > 0 {
		h.printf("Recorded as depending on it: %s.\n", strings.Join(dependents, ", "))
	}
	if len(r.Secrets) > 0 {
		h.printf("The secrets sealed in it (%s) are lost with it: acco apply or configure makes new ones.\n", strings.Join(sortedKeys(r.Secrets), ", "))
	}
	if !f.autoApprove {
		answer, err := a.answer(h.w, "Type the address to confirm: ")
		if err != nil {
			return err
		}
		if answer != addr {
			return &codedError{code: exitError, err: errors.New("state rm cancelled: the answer was not the address")}
		}
	}
	st.RemoveResource(addr)
	dropped := 0
	st.Pending = slices.DeleteFunc(st.Pending, func(p state.Pending) bool {
		if p.Address == addr {
			dropped++
			return true
		}
		return false
	})
	if _, err := store.Write(context.WithoutCancel(lctx), name, st, etag); err != nil {
		return fmt.Errorf("writing the state of %s: %w", name, err)
	}
	if a.json {
		return a.printJSON(stateRmResult{Env: name, Address: addr, ID: id, Serial: st.Serial, Pending: dropped})
	}
	h.printf("Removed %s from the state of %s (serial %d).\n", addr, name, st.Serial)
	return nil
}

// answer reads one line from the terminal after asking question.
func (a *app) answer(w io.Writer, question string) (string, error) {
	fmt.Fprint(w, question)
	line, err := bufio.NewReader(a.in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the answer: %w", err)
	}
	return strings.TrimSpace(line), nil
}

// unknownAddress is the error for an address state does not hold: it names
// the nearest ones.
func unknownAddress(st *state.State, env, addr string) error {
	var near []string
	kind, _, _ := strings.Cut(addr, ".")
	for _, r := range st.Resources {
		if strings.Contains(r.Address, addr) || strings.Contains(addr, r.Address) || r.Kind == kind {
			near = append(near, r.Address)
		}
	}
	if len(near) > 0 {
		return withHint(fmt.Errorf("no resource %s in the state of %s", addr, env), "did you mean %s? acco state list %s shows every address", strings.Join(near, " or "), env)
	}
	return withHint(fmt.Errorf("no resource %s in the state of %s", addr, env), "acco state list %s shows the addresses it holds", env)
}
