// Command slipagent keeps local copies of NATS JetStream KV buckets in sync
// and hands their changes to sandboxed WebAssembly plugins. Run
// `slipagent help` for the commands.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/slipstreamkv/slipstream/agent"
)

func main() {
	os.Exit(runWithSignals(os.Args[1:], os.Stdout, os.Stderr))
}

// runWithSignals runs slipagent with args under the signals' rules: the
// first SIGINT or SIGTERM cancels the root context (graceful shutdown), the
// second kills the hooks and checks still running, which would otherwise
// outlive the agent, and exits at once.
func runWithSignals(args []string, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go cancelOnSignal(sigs, cancel, stderr, func(code int) {
		agent.KillCommands()
		os.Exit(code)
	})
	return run(ctx, args, stdout, stderr)
}

// cancelOnSignal cancels the root context on the first signal (graceful
// shutdown) and exits at once on the second.
func cancelOnSignal(sigs <-chan os.Signal, cancel context.CancelFunc, stderr io.Writer, exit func(int)) {
	<-sigs
	cancel()
	s := <-sigs
	fmt.Fprintf(stderr, "slipagent: second %v, exiting now\n", s)
	exit(exitInterrupted)
}
