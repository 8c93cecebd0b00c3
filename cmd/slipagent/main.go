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
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go cancelOnSignal(sigs, cancel, os.Stderr, os.Exit)
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
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
