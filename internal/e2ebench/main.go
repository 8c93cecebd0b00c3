// Command e2ebench measures slipagent end to end against a real nats-server,
// side by side with a bare nats.go renderer in the same run, and prints a
// table of both with their ratio and the goal of issue 8.
//
// Both renderers watch every key of bucket "app" and render it as sorted
// "key=value" lines into one file, durably (temporary file, fsync, rename,
// fsync of the directory). slipagent runs as `slipagent run` with the
// template example plugin, default settings, a fresh data_dir per start and a
// compile cache shared across starts (warmed before the first measurement).
//
// Workloads: put → file visible latency (sequential puts to one key, open
// loop), a burst of distinct keys with synchronous writers and with one
// asynchronous publisher, a cold start over a filled bucket, a full render of
// a large bucket (time, peak RSS), a restart of the agent over its
// up-to-date fold (READY time, re-applied batches) and the RSS at rest.
//
// Run it with `make bench-e2e`; E2E_QUICK=1 shrinks every size for a smoke
// run, E2E_BIG=1 adds a full render of 1M keys. Every flag (see -h) has an
// E2E_* variable for its default: E2E_LAT_N, E2E_BURST_N, E2E_BURST_CONC,
// E2E_BIG_N, E2E_HUGE_N, E2E_VALUE_SIZE for sizes; E2E_PLUGIN_MEMORY and
// E2E_PLUGIN_TIMEOUT to leave the agent's defaults (the table says so);
// E2E_KEEP=1 to keep the run directory with the logs; E2E_NATS_URL to use a
// running JetStream server. A measurement that fails (the renderer exits or
// its watch reports a failure) shows FAILED with the reason under the table,
// the run goes on, and the exit status is 1.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if os.Getenv(roleEnv) == roleBare {
		if err := runBareFromEnv(); err != nil {
			fmt.Fprintln(os.Stderr, "e2ebench bare renderer:", err)
			os.Exit(1)
		}
		return
	}
	cfg := defaultConfig(os.Getenv("E2E_QUICK") == "1", os.Getenv("E2E_BIG") == "1")
	cfg.register(flag.CommandLine)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	res, err := run(ctx, cfg)
	if res != nil {
		res.print(os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2ebench:", err)
		os.Exit(1)
	}
	if len(res.failures) > 0 {
		fmt.Fprintf(os.Stderr, "e2ebench: %d measurements failed (FAILED above)\n", len(res.failures))
		os.Exit(1)
	}
}
