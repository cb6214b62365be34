package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/provision"
	"github.com/accoreboot/acco/state"
)

func (a *app) outputCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "output ENV [NAME]",
		Short: "Print the outputs of the last apply: addresses, database host, port and URI",
		Long: `Output prints the values apply computed: each instance's addresses
(instance.NAME.ipv4, instance.NAME.ipv6) and each database's host, port and
URI (database.NAME.host, .port, .uri), never a password. With NAME it prints
that value alone (a bare string, for scripts).

A database URI verifies the server (sslmode=verify-full) against the
cluster's CA certificate, recorded in state by apply: output saves it to
~/.acco/ENV/NAME-ca.pem (database.NAME.ca_file) and names that file with
sslrootcert, so that psql "$(acco output ENV database.NAME.uri)" works as is.`,
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
			// What apply computes today, over what an older acco wrote.
			for k, o := range mergeOutputs(st.Outputs, provision.Outputs(st)) {
				if o.Sensitive {
					outs[k] = "(sensitive)"
				} else {
					outs[k] = o.Value
				}
			}
			want := ""
			if len(args) == 2 {
				want = args[1]
			}
			if err := a.databaseCAFiles(args[0], st, outs, want); err != nil {
				return err
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
					return a.printJSON(map[string]any{"env": args[0], "name": args[1], "value": v})
				}
				fmt.Fprintln(a.out, v)
				return nil
			}
			if a.json {
				return a.printJSON(map[string]any{"env": args[0], "outputs": outs})
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

// mergeOutputs returns the outputs of old with those of cur on top.
func mergeOutputs(old, cur map[string]state.Output) map[string]state.Output {
	out := make(map[string]state.Output, len(old)+len(cur))
	for k, o := range old {
		out[k] = o
	}
	for k, o := range cur {
		out[k] = o
	}
	return out
}

// databaseCAFiles saves the CA certificate of each database of st whose
// outputs are asked for (want: one output's name, or "" for all) to the
// operator's ~/.acco/ENV/NAME-ca.pem, and adds it to the outputs: the
// file's path as database.NAME.ca_file and as the URI's sslrootcert. A
// database whose CA is not in state yet keeps a URI without sslrootcert,
// and a note says how to record it.
func (a *app) databaseCAFiles(env string, st *state.State, outs map[string]any, want string) error {
	for _, r := range st.Resources {
		if r.Kind != spec.KindDatabase {
			continue
		}
		uri, ok := outs[r.Address+".uri"].(string)
		if !ok || (want != "" && !strings.HasPrefix(want, r.Address+".")) {
			continue
		}
		ca, _ := r.Attributes["ca_certificate"].(string)
		if ca == "" {
			fmt.Fprintf(a.err, "Note: the CA certificate of %s is not in state yet (an older acco applied it): acco apply %s records it; until then its URI names no sslrootcert.\n", r.Address, env)
			continue
		}
		name := strings.TrimPrefix(r.Address, spec.KindDatabase+".")
		path, err := saveCA(env, name, ca)
		if err != nil {
			return fmt.Errorf("saving the CA certificate of %s: %w", r.Address, err)
		}
		outs[r.Address+".ca_file"] = path
		outs[r.Address+".uri"] = uri + "&sslrootcert=" + escapeURIValue(path)
	}
	return nil
}

// saveCA writes a database's CA certificate to ~/.acco/ENV/NAME-ca.pem
// (unless it holds it already) and returns the file's path. The
// certificate is public: the file is 0644, its directory 0700 like the
// rest of ~/.acco.
func saveCA(env, name, pem string) (string, error) {
	if !safeFileName(env) || !safeFileName(name) {
		return "", fmt.Errorf("%q/%q is not a file name acco writes", env, name)
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the home directory: %w", err)
	}
	dir := filepath.Join(home, ".acco", env)
	path := filepath.Join(dir, name+"-ca.pem")
	if have, err := os.ReadFile(path); err == nil && bytes.Equal(have, []byte(pem)) {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, "."+name+"-ca.pem.*")
	if err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	_, werr := f.WriteString(pem)
	cerr := f.Close()
	if err := errors.Join(werr, cerr, os.Chmod(f.Name(), 0o644)); err != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	return path, nil
}

// safeFileName reports whether s is an environment or resource name acco
// makes (lowercase letters, digits, dashes; not starting with a dot), fit
// for a file name as it is.
func safeFileName(s string) bool {
	if s == "" || s[0] == '.' || s[0] == '-' {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z') && !('0' <= c && c <= '9') && c != '-' {
			return false
		}
	}
	return true
}

// escapeURIValue percent-encodes a value for a libpq URI query: libpq
// decodes %XX only (a + stays a +), so everything but unreserved
// characters and / is encoded.
func escapeURIValue(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', strings.IndexByte("-._~/", c) >= 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
