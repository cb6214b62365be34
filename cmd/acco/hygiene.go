package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/state"
)

// maxOperatorText bounds a free-text value an operator gives (a lock
// reason): it is stored and shown to every other operator.
const maxOperatorText = 200

// checkOperatorText refuses a free-text value that could not be shown
// safely on one line of someone else's terminal: control characters
// (escape sequences included), invisible formatting characters (bidi
// overrides), invalid UTF-8, or more than maxOperatorText bytes.
func checkOperatorText(flag, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not valid UTF-8: give plain text", flag)
	}
	if len(s) > maxOperatorText {
		return fmt.Errorf("%s is %d bytes long: keep it under %d", flag, len(s), maxOperatorText)
	}
	for i, r := range s {
		if unsafeRune(r) {
			return fmt.Errorf("%s holds the control character %U at byte %d: give one line of plain text, with no escape sequences or tabs", flag, r, i)
		}
	}
	return nil
}

// unsafeRune reports whether r changes a terminal's display rather than
// showing as itself: a control character or an invisible format character.
func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError
}

// printable returns s with every character that unsafeRune refuses, and
// every byte that is not UTF-8, written as a Go escape (\x1b, \u202e), so
// that text stored by someone else prints as what it is. Newlines are
// escaped too: the result is one line.
func printable(s string) string {
	if !strings.ContainsFunc(s, unsafeRune) && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unsafeRune(r):
			q := strings.Trim(fmt.Sprintf("%+q", string(r)), `"`)
			b.WriteString(q)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// printableLines is printable for a multi-line message: its newlines (and
// tabs) are kept, every other unsafe character is escaped.
func printableLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		parts := strings.Split(l, "\t")
		for j, p := range parts {
			parts[j] = printable(p)
		}
		lines[i] = strings.Join(parts, "\t")
	}
	return strings.Join(lines, "\n")
}

// tookOverMessage says which lock a run took over: of whom, doing what,
// and why it could. The previous holder's ID, who, operation, reason and
// process come from the lock object, which anyone who may write the bucket
// wrote: they are shown escaped.
func tookOverMessage(prev *state.LockInfo, holderGone bool) string {
	what := printable(prev.Operation)
	if prev.Reason != "" {
		what += ", reason: " + printable(prev.Reason)
	}
	if holderGone && prev.Process != nil {
		return fmt.Sprintf("Took over the lock %s of %s (%s): its holder, %s, is gone.", printable(prev.ID), printable(prev.Who), what, printable(prev.Process.String()))
	}
	return fmt.Sprintf("Took over the expired lock %s of %s (%s).", printable(prev.ID), printable(prev.Who), what)
}

// checkDurations refuses a negative value in any duration flag of cmd:
// none of acco's durations (timeouts, TTLs, waits) has a meaning below 0.
func checkDurations(cmd *cobra.Command) error {
	var errs []error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Value.Type() != "duration" || !f.Changed {
			return
		}
		if strings.HasPrefix(strings.TrimSpace(f.Value.String()), "-") {
			errs = append(errs, fmt.Errorf("--%s %s is negative: give a duration of 0 or more, such as 30s, 10m or 2h", f.Name, f.Value))
		}
	})
	return errors.Join(errs...)
}

// addressKinds are the resource kinds a --target or --replace address
// may name.
var addressKinds = []string{spec.KindKeypair, spec.KindSecurityGroup, spec.KindInstance, spec.KindDatabase, spec.KindDatabaseUser, spec.KindDatabaseDB}

// checkAddresses checks the --target and --replace addresses of a plan
// before any lock is taken or cloud reached: each must be KIND.NAME of a
// known kind and name a resource of the environment's YAML or of its
// state (read without the lock: a read changes nothing).
func checkAddresses(ctx context.Context, env *spec.Environment, blob state.Blob, flagAddrs map[string][]string) error {
	known := env.Addresses()
	var unknown []string
	var errs []error
	for _, flag := range []string{"--target", "--replace"} {
		for _, addr := range flagAddrs[flag] {
			kind, name, ok := strings.Cut(addr, ".")
			switch {
			case !ok || name == "" || !slices.Contains(addressKinds, kind):
				errs = append(errs, fmt.Errorf("%s %q is not a resource address: want KIND.NAME with KIND one of %s (for example instance.app)", flag, printable(addr), strings.Join(addressKinds, ", ")))
			case strings.ContainsFunc(addr, unsafeRune):
				errs = append(errs, fmt.Errorf("%s %q holds a control character: give the address as acco plan %s shows it", flag, printable(addr), env.Name))
			case !slices.Contains(known, addr):
				unknown = append(unknown, flag+" "+addr)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if len(unknown) == 0 {
		return nil
	}
	st, _, err := state.NewStore(blob).Read(ctx, env.Name)
	if err != nil && !errors.Is(err, state.ErrNotFound) {
		return fmt.Errorf("reading the state of %s to check %s: %w", env.Name, strings.Join(unknown, ", "), err)
	}
	for _, u := range unknown {
		flag, addr, _ := strings.Cut(u, " ")
		if st != nil {
			if _, ok := st.Resource(addr); ok {
				continue
			}
		}
		errs = append(errs, fmt.Errorf("%s %s is neither in the environment %s nor in its state: the addresses are %s", flag, addr, env.Name, strings.Join(known, ", ")))
	}
	return errors.Join(errs...)
}
