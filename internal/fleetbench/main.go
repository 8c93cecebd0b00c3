// Command fleetbench measures a fleet of slipagent processes on real
// nats-server processes and prints a table of its phases:
//
//  1. start together: N agents (`slipagent run`, the template example
//     plugin rendering the whole bucket into one file, each with its own
//     data, cache and output directories) start at once on one server whose
//     bucket holds K keys; time until every agent's /status shows the
//     bucket's last revision applied;
//  2. server restart: that server gets SIGTERM and starts again on the same
//     store; stall from it accepting clients again until every agent applied
//     a put written after it;
//  3. leader loss: a new fleet starts on a 3-node cluster (separate
//     processes) with an R3 bucket of K keys, then the stream's leader gets
//     SIGKILL; stall from the writer's first acknowledged put after the kill
//     until every agent applied it.
//
// Each row also shows the server's VmRSS (a cluster: its largest node's) once
// the fleet has applied, and the consumers on the bucket's stream before and
// after. The agents run with their default settings: the restart's stall
// includes their reconnect_jitter (1 s). Run it with
// `make bench-fleet N=20 K=10000`; -h lists the flags, each with a FLEET_*
// variable for its default.
//
// With -bootstrap (`make bench-fleet BOOTSTRAP=1`) it measures instead how N
// new agents join a K-key bucket on one server: by a plain sync, then from
// an artifact in NATS that one seeding agent (a watch with a bootstrap
// block) exported; time until every agent applied the bucket's last
// revision, and the bytes the server sent to them (counted by a TCP proxy
// between them and the server; /connz gives the payload part).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/slipstreamkv/slipstream/internal/benchproc"
)

// config is the fleet's size and where the programs are.
type config struct {
	SlipAgent  string // the slipagent binary
	Plugin     string // the template example plugin module
	NATSServer string // the nats-server binary
	N          int    // agents
	K          int    // keys in the bucket
	Work       string // run directory; empty: a temporary one, removed unless Keep
	Keep       bool
	// Bootstrap replaces the phases with the bootstrap comparison
	// (bootstrap.go): N new agents joining by a plain sync, then from an
	// artifact.
	Bootstrap bool
}

func (c *config) register(fs *flag.FlagSet) {
	fs.StringVar(&c.SlipAgent, "slipagent", benchproc.EnvOr("FLEET_SLIPAGENT", "bin/slipagent"), "slipagent binary")
	fs.StringVar(&c.Plugin, "plugin", benchproc.EnvOr("FLEET_PLUGIN", "bin/plugins/template.wasm"), "template example plugin module")
	fs.StringVar(&c.NATSServer, "nats-server", benchproc.EnvOr("FLEET_NATS_SERVER", "bin/nats-server"), "nats-server binary")
	fs.IntVar(&c.N, "n", benchproc.EnvInt("FLEET_N", 20), "agents in the fleet")
	fs.IntVar(&c.K, "k", benchproc.EnvInt("FLEET_K", 10_000), "keys in the bucket")
	fs.StringVar(&c.Work, "work", os.Getenv("FLEET_WORK"), "run directory (default: a temporary one)")
	fs.BoolVar(&c.Keep, "keep", os.Getenv("FLEET_KEEP") == "1", "keep the run directory (logs, data dirs)")
	fs.BoolVar(&c.Bootstrap, "bootstrap", os.Getenv("FLEET_BOOTSTRAP") == "1", "instead of the phases, compare N agents joining by a plain sync and from an artifact in NATS")
}

func main() {
	var cfg config
	cfg.register(flag.CommandLine)
	flag.Parse()
	if cfg.N < 1 || cfg.K < 1 {
		fmt.Fprintln(os.Stderr, "fleetbench: -n and -k must be at least 1")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if cfg.Bootstrap {
		res, err := runBootstrap(ctx, cfg)
		res.print(os.Stdout)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fleetbench:", err)
			os.Exit(1)
		}
		if res.failed() {
			os.Exit(1)
		}
		return
	}
	res, err := run(ctx, cfg)
	res.print(os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleetbench:", err)
		os.Exit(1)
	}
	for _, p := range res.phases {
		if p.err != nil {
			os.Exit(1)
		}
	}
}
