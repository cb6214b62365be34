package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/accoreboot/acco/state"
)

func (a *app) lockCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lock",
		Short: "Inspect, hold and break the state lock of an environment",
		Long: `Every command that changes an environment takes its lock first: a lease in
the state bucket (<env>/lock.json) that the holder renews while it works and
that expires when it is not renewed.`,
	}
	cmd.AddCommand(a.lockStatusCommand(), a.lockHoldCommand(), a.lockBreakCommand())
	return cmd
}

// lockStatus is the JSON document of `acco lock status`.
type lockStatus struct {
	Env     string    `json:"env"`
	Locked  bool      `json:"locked"`
	Expired bool      `json:"expired,omitempty"`
	Holder  *lockJSON `json:"holder,omitempty"`
}

func (a *app) lockStatusCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "status ENV",
		Short:   "Show who holds the lock of an environment",
		Example: "  acco lock status test\n  acco lock status prod --json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			_, blob, err := a.envAndState(ctx, args[0])
			if err != nil {
				return err
			}
			info, err := state.NewLocker(blob).Status(ctx, args[0])
			if err != nil {
				return fmt.Errorf("read lock of %s: %w", args[0], err)
			}
			st := lockStatus{Env: args[0], Locked: info != nil, Holder: holderJSON(info)}
			if info != nil {
				st.Expired = expired(info, time.Now())
			}
			if a.json {
				return a.printJSON(st)
			}
			h := a.human()
			if info == nil {
				h.printf("%s: unlocked\n", args[0])
				return nil
			}
			h.printf("%s: locked\n%s", args[0], describeLock(info, time.Now()))
			return nil
		},
	}
}

func (a *app) lockHoldCommand() *cobra.Command {
	var reason string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "hold ENV --reason TEXT [--ttl DUR]",
		Short: "Freeze an environment: no apply can run until the lock is released",
		Long: `Hold takes the lock of ENV on behalf of an operator and keeps it after acco
exits, so that no apply, destroy or configure can run. It prints the lock ID;
release the freeze with: acco lock break ENV ID --force. With --ttl the hold
expires by itself after that long.`,
		Example: `  acco lock hold prod --reason "release freeze until Monday"
  acco lock hold test --reason "debugging the broker" --ttl 2h`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if reason == "" {
				return withHint(fmt.Errorf("lock hold needs a reason"), "say why with --reason, e.g. --reason %q", "release freeze")
			}
			if ttl < 0 {
				return fmt.Errorf("--ttl %s is negative: give a duration such as 30m or 2h", ttl)
			}
			if err := checkOperatorText("--reason", reason); err != nil {
				return err
			}
			ctx := cmd.Context()
			_, blob, err := a.envAndState(ctx, args[0])
			if err != nil {
				return err
			}
			version, _ := buildVersion()
			lease, err := state.NewLocker(blob).Lock(ctx, args[0], state.LockInfo{
				Operation: "hold",
				Version:   version,
				Reason:    reason,
			}, ttl)
			if err != nil {
				return withHint(err, "acco lock status %s shows the holder; ask them, or wait for the lease to expire", args[0])
			}
			info := lease.Info()
			if a.json {
				return a.printJSON(lockStatus{Env: args[0], Locked: true, Holder: holderJSON(&info)})
			}
			fmt.Fprintln(a.out, info.ID)
			until := "until released"
			if !info.Expires.IsZero() {
				until = "until " + info.Expires.Local().Format(time.RFC3339)
			}
			fmt.Fprintf(a.err, "%s is held by %s %s (%s).\nRelease it with: acco lock break %s %s --force\n", args[0], printable(info.Who), until, reason, args[0], info.ID)
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the environment is frozen (shown to anyone who tries to apply)")
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "let the hold expire after this long (default: never)")
	return cmd
}

func (a *app) lockBreakCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "break ENV ID",
		Short: "Break the lock of an environment (expired, or its holder gone; any with --force)",
		Long: `Break removes the lock ID of ENV. Without --force it only breaks a lock
whose lease has expired, or whose holder is a process on this machine that is
provably gone (acco apply takes such a lock over by itself). With --force it
breaks a live lock too: do that only when you are sure its holder is gone, or
to release a hold. A run whose lock was broken under it stops at its next
renewal.`,
		Example: "  acco lock break test 6f1c0c1e-2a1d-4c8e-9f57-3c2b5b8f0a11\n  acco lock break prod 6f1c0c1e-2a1d-4c8e-9f57-3c2b5b8f0a11 --force",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			_, blob, err := a.envAndState(ctx, args[0])
			if err != nil {
				return err
			}
			info, err := state.NewLocker(blob).Break(ctx, args[0], args[1], force)
			var held *state.LockError
			switch {
			case errors.As(err, &held) && held.Holder.Expires.IsZero():
				return withHint(err, "this is an operator hold: release it with: acco lock break %s %s --force", args[0], args[1])
			case errors.As(err, &held):
				return withHint(err, "the lease is live and its holder is not provably gone (it runs on another machine, or still runs): a plain acco apply waits for the lease with --lock-timeout %s; if you are sure its holder is gone: acco lock break %s %s --force",
					fmtDuration(max(time.Until(held.Holder.Expires)+30*time.Second, time.Minute).Round(time.Minute)), args[0], args[1])
			case errors.Is(err, state.ErrNotFound):
				return withHint(fmt.Errorf("%s has no lock to break", args[0]), "acco lock status %s shows the current lock", args[0])
			case err != nil:
				return err
			}
			if a.json {
				return a.printJSON(map[string]any{"env": args[0], "broken": true, "lock": holderJSON(info)})
			}
			if info == nil {
				a.human().printf("%s: lock %s was already gone\n", args[0], args[1])
				return nil
			}
			a.human().printf("%s: broke lock %s held by %s (%s)\n", args[0], printable(info.ID), printable(info.Who), printable(info.Operation))
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "break the lock even though its lease has not expired")
	return cmd
}

// expired reports whether a lock's lease has run out.
func expired(info *state.LockInfo, now time.Time) bool {
	return !info.Expires.IsZero() && now.After(info.Expires)
}

// describeLock renders a lock holder for people. Every field was written
// by another acco (or by hand in the bucket): control characters in it
// are shown escaped, never sent to the terminal.
func describeLock(info *state.LockInfo, now time.Time) string {
	s := fmt.Sprintf("  id:        %s\n  holder:    %s\n  operation: %s\n", printable(info.ID), printable(info.Who), printable(info.Operation))
	if info.Reason != "" {
		s += fmt.Sprintf("  reason:    %s\n", printable(info.Reason))
	}
	s += fmt.Sprintf("  since:     %s (%s ago)\n", info.Created.Local().Format(time.RFC3339), now.Sub(info.Created).Round(time.Second))
	switch {
	case info.Expires.IsZero():
		s += "  expires:   never (release with --force)\n"
	case expired(info, now):
		s += fmt.Sprintf("  expires:   %s (EXPIRED: acco lock break can remove it)\n", info.Expires.Local().Format(time.RFC3339))
	default:
		s += fmt.Sprintf("  expires:   %s (in %s unless renewed)\n", info.Expires.Local().Format(time.RFC3339), info.Expires.Sub(now).Round(time.Second))
	}
	if info.Process != nil {
		s += fmt.Sprintf("  process:   %s (a run on that machine takes the lock over once it is gone)\n", info.Process)
	}
	if info.Version != "" {
		s += fmt.Sprintf("  acco:      %s\n", printable(info.Version))
	}
	return s
}
