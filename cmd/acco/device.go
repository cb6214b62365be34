package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/accoreboot/acco/configure"
	"github.com/accoreboot/acco/flows"
)

func (a *app) deviceCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "device",
		Short: "Register, list and remove the trackers the MQTT broker admits",
		Long: `The trackers' MQTT credentials live in the device table (mqtt_users) of
the application database: the name and a PBKDF2-SHA512 hash, never the
password. EMQX's authenticator reads the table; with Mosquitto, acco writes
its password file from the same rows and tells it to re-read it. A tracker
may publish only to its own topic (trackers/NAME/position by default); the
backend subscribes to all of them.

acco reaches the table through the services host (SSH tunnel), as the
cluster's admin, like acco configure; the table exists once acco configure
ENV has run.`,
	}
	cmd.AddCommand(a.deviceAddCommand(), a.deviceListCommand(), a.deviceRemoveCommand())
	return cmd
}

// withDevices opens the device table of env through its host (under the
// lock for op, unless op is "") and calls fn with it.
func (a *app) withDevices(ctx context.Context, env, op string, f hostFlags, fn func(context.Context, *flows.Devices) error) error {
	ctx, s, signer, release, err := a.openSession(ctx, env, op, f, true)
	if err != nil {
		return err
	}
	defer release()
	d, err := s.OpenDevices(ctx, signer, f.connectWait)
	if err != nil {
		return err
	}
	defer d.Close(ctx)
	return fn(ctx, d)
}

func (a *app) deviceAddCommand() *cobra.Command {
	var f hostFlags
	cmd := &cobra.Command{
		Use:   "add ENV NAME",
		Short: "Register a tracker and print its MQTT password, once",
		Long: `Add registers the tracker NAME with a new random password and prints it
once on stdout: acco keeps only its hash, so write it into the tracker now.
NAME is 1 to 64 letters, digits, '.', '_' or '-' (it becomes a topic level).`,
		Example: `  acco device add test tracker-0042
  acco device add test tracker-0042 --json | jq -r .password`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var added *flows.AddedDevice
			err := a.withDevices(cmd.Context(), args[0], "device add", f, func(ctx context.Context, d *flows.Devices) (err error) {
				added, err = d.Add(ctx, args[1])
				return err
			})
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(added)
			}
			fmt.Fprintf(a.err, "Device %s registered: it may publish to %s", added.Name, added.Topic)
			if added.Broker != "" {
				fmt.Fprintf(a.err, " on %s", added.Broker)
			}
			fmt.Fprintf(a.err, ".\nIts MQTT user is %s; its password follows, shown this once (acco keeps only its hash):\n", added.Name)
			fmt.Fprintln(a.out, added.Password)
			return nil
		},
	}
	f.register(cmd, time.Minute)
	return cmd
}

func (a *app) deviceListCommand() *cobra.Command {
	var f hostFlags
	cmd := &cobra.Command{
		Use:   "list ENV",
		Short: "List the registered trackers (never a password or hash)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var list []configure.Device
			err := a.withDevices(cmd.Context(), args[0], "", f, func(ctx context.Context, d *flows.Devices) (err error) {
				list, err = d.List(ctx)
				return err
			})
			if err != nil {
				return err
			}
			if a.json {
				if list == nil {
					list = []configure.Device{}
				}
				return a.printJSON(map[string]any{"env": args[0], "devices": list})
			}
			if len(list) == 0 {
				fmt.Fprintf(a.err, "No device in %s: acco device add %s NAME registers one.\n", args[0], args[0])
				return nil
			}
			fmt.Fprintf(a.out, "%-24s %-8s %s\n", "NAME", "KIND", "REGISTERED")
			for _, v := range list {
				fmt.Fprintf(a.out, "%-24s %-8s %s\n", v.Name, v.Kind, v.CreatedAt.UTC().Format(time.RFC3339))
			}
			return nil
		},
	}
	f.register(cmd, time.Minute)
	return cmd
}

func (a *app) deviceRemoveCommand() *cobra.Command {
	var f hostFlags
	cmd := &cobra.Command{
		Use:   "remove ENV NAME",
		Short: "Remove a tracker's credential (its past positions stay)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			err := a.withDevices(cmd.Context(), args[0], "device remove", f, func(ctx context.Context, d *flows.Devices) error {
				return d.Remove(ctx, args[1])
			})
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(map[string]any{"env": args[0], "removed": args[1]})
			}
			fmt.Fprintf(a.err, "Device %s removed: the broker no longer admits it.\n", args[1])
			return nil
		},
	}
	f.register(cmd, time.Minute)
	return cmd
}
