// Command acco provisions and configures the AccoReboot stack on OVHcloud
// Public Cloud: plan and apply cloud resources, keep state and locks in S3,
// and configure hosts over SSH.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(runMain())
}

// runMain wires the process environment into run.
func runMain() int {
	return runWithSignals(os.Args[1:], streams{in: os.Stdin, out: os.Stdout, err: os.Stderr})
}

// runWithSignals runs acco with args and traps signals: the first
// interrupt or SIGTERM cancels the context so commands can stop cleanly
// and release their locks; a second one exits at once.
func runWithSignals(args []string, s streams) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		select {
		case <-sigs:
		case <-ctx.Done():
			return
		}
		os.Stderr.WriteString("\nInterrupt received: stopping after the operations in flight. Press Ctrl-C again to exit now.\n")
		cancel()
		<-sigs
		os.Stderr.WriteString("Second interrupt: exiting now.\n")
		os.Exit(130)
	}()
	return run(ctx, args, s, os.LookupEnv)
}
