// Command slipagent keeps local copies of NATS JetStream KV buckets in sync
// and hands their changes to sandboxed WebAssembly plugins. Run
// `slipagent help` for the commands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	go cancelOnSignal(cancel)
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// cancelOnSignal cancels the root context on the first SIGINT or SIGTERM
// (graceful shutdown) and exits at once on the second.
func cancelOnSignal(cancel context.CancelFunc) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	s := <-sigs
	cancel()
	<-sigs
	fmt.Fprintf(os.Stderr, "slipagent: second %v, exiting now\n", s)
	os.Exit(exitInterrupted)
}
