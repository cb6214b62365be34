package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/accoreboot/acco/internal/envgraph"
	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/provision"
)

// graphSVGTimeout bounds Graphviz's rendering of one graph.
const graphSVGTimeout = 30 * time.Second

func (a *app) graphCommand() *cobra.Command {
	var format, output string
	var withPlan bool
	cmd := &cobra.Command{
		Use:   "graph ENV",
		Short: "Draw the environment's resources and services with their dependencies",
		Long: `Graph draws, from the environment's YAML (no network call without --plan), its
resources (keypairs, security groups, instances, database clusters with
their logical databases and users) and the services of its services host
(the broker, PowerSync, the backend, nginx in front of PowerSync when it has
TLS). An arrow goes from what is needed to what needs it: keypair and
security group to the instance, the instance to the database whose
allow-list admits it, a cluster to its databases and users, a database user
to the services that log in as it.

Formats: dot (Graphviz), mermaid (a flowchart, which GitHub renders in
markdown) and svg (Graphviz's dot program must be installed: Debian package
graphviz). With --json stdout holds the graph's nodes and edges instead.

With --plan it reads the state and what is live in the cloud, as acco plan
does (under the state lock), and colours each resource by what apply would
do to it: green create, yellow update, orange replace, red delete (a
resource the YAML no longer declares appears on its own).`,
		Example: "  acco graph test\n  acco graph prod --format mermaid\n  acco graph test --plan --format svg --output plan.svg\n  acco graph test --format svg --output test.svg",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "dot" && format != "mermaid" && format != "svg" {
				return fmt.Errorf("--format %q: use dot, mermaid or svg", format)
			}
			var env *spec.Environment
			var actions map[string]string
			if withPlan {
				r, err := a.startRun(cmd.Context(), args[0], "plan", 0, nil)
				if err != nil {
					return err
				}
				defer r.release()
				p, err := r.makePlan(provision.PlanOptions{})
				if err != nil {
					return err
				}
				env, actions = r.env, map[string]string{}
				for _, c := range p.Changes {
					actions[c.Address] = string(c.Action)
				}
			} else {
				var err error
				if env, err = a.loadEnv(args[0]); err != nil {
					return err
				}
			}
			g := envgraph.Build(env)
			g.Mark(actions)
			var err error
			var text []byte
			switch format {
			case "dot":
				text = envgraph.Dot(g)
			case "mermaid":
				text = envgraph.Mermaid(g)
			case "svg":
				ctx, cancel := context.WithTimeout(cmd.Context(), graphSVGTimeout)
				defer cancel()
				if text, err = envgraph.SVG(ctx, envgraph.Dot(g)); err != nil {
					if errors.Is(err, envgraph.ErrNoGraphviz) {
						return err
					}
					return fmt.Errorf("graph of %s: %w", env.Name, err)
				}
			}
			if output != "" {
				if err := writeFileAtomic(output, text); err != nil {
					return err
				}
				a.human().printf("Wrote the %s graph of %s to %s (%d nodes, %d edges).\n", format, env.Name, output, len(g.Nodes), len(g.Edges))
			}
			if a.json {
				return a.printJSON(struct {
					envgraph.Graph
					Format string `json:"format"`
					Output string `json:"output,omitempty"`
				}{g, format, output})
			}
			if output == "" {
				if _, err := a.out.Write(text); err != nil {
					return fmt.Errorf("write the graph: %w", err)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "dot", "dot, mermaid or svg (svg runs Graphviz's dot)")
	cmd.Flags().BoolVar(&withPlan, "plan", false, "colour the resources by what acco plan would do to them (reads the state and the cloud, under the lock)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write the graph to FILE (atomically) instead of stdout")
	return cmd
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory renamed over it, so that path never holds a partial graph.
func writeFileAtomic(path string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
