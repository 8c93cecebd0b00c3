package main

import (
	"flag"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/slipstreamkv/slipstream/internal/benchproc"
)

// config holds the sizes of the workloads and where the programs are.
type config struct {
	SlipAgent  string // the slipagent binary
	Plugin     string // the template example plugin module
	NATSServer string // the nats-server binary, started for the run
	NATSURL    string // an already running JetStream server instead of NATSServer
	Work       string // run directory; empty: a temporary one, removed unless Keep
	Keep       bool

	// PluginMemory and PluginTimeout are the template plugin's memory and
	// timeout settings; empty: the agent's defaults.
	PluginMemory, PluginTimeout string

	LatN        int           // sequential puts of the latency workload
	LatInterval time.Duration // between two of those puts
	BurstN      int           // distinct keys of a burst and of the cold start
	BurstConc   int           // synchronous writers of the sync burst
	BigN        int           // keys of the full render, restart and rest rows
	HugeN       int           // keys of the extra full render row; 0: none
	ValueSize   int           // bytes per value in the full render rows

	// Only names the workloads to run (latency, burst, cold, big), comma
	// separated; empty: every one.
	Only string
}

// runs reports whether workload w is to be run.
func (c *config) runs(w string) bool {
	return c.Only == "" || slices.Contains(strings.Split(c.Only, ","), w)
}

func defaultConfig(quick, big bool) config {
	c := config{
		LatN: 200, LatInterval: 10 * time.Millisecond,
		BurstN: 10_000, BurstConc: 16,
		BigN: 100_000, ValueSize: 100,
	}
	if quick {
		c.LatN, c.BurstN, c.BigN = 50, 1_000, 10_000
	}
	if big {
		c.HugeN = 1_000_000
	}
	return c
}

// register adds a flag per setting; E2E_* environment variables set their
// defaults, so make passes them through.
func (c *config) register(fs *flag.FlagSet) {
	fs.StringVar(&c.SlipAgent, "slipagent", benchproc.EnvOr("E2E_SLIPAGENT", "bin/slipagent"), "slipagent binary")
	fs.StringVar(&c.Plugin, "plugin", benchproc.EnvOr("E2E_PLUGIN", "bin/plugins/template.wasm"), "template example plugin module")
	fs.StringVar(&c.NATSServer, "nats-server", benchproc.EnvOr("E2E_NATS_SERVER", "bin/nats-server"), "nats-server binary started for the run")
	fs.StringVar(&c.NATSURL, "nats-url", os.Getenv("E2E_NATS_URL"), "use this running JetStream server instead of starting one")
	fs.StringVar(&c.Work, "work", os.Getenv("E2E_WORK"), "run directory (default: a temporary one)")
	fs.BoolVar(&c.Keep, "keep", os.Getenv("E2E_KEEP") == "1", "keep the run directory (logs, data dirs)")
	fs.StringVar(&c.PluginMemory, "plugin-memory", os.Getenv("E2E_PLUGIN_MEMORY"), `the plugin's memory setting, e.g. "512MiB" (default: the agent's)`)
	fs.StringVar(&c.PluginTimeout, "plugin-timeout", os.Getenv("E2E_PLUGIN_TIMEOUT"), `the plugin's timeout setting, e.g. "60s" (default: the agent's)`)
	fs.IntVar(&c.LatN, "lat-n", benchproc.EnvInt("E2E_LAT_N", c.LatN), "puts of the latency workload")
	fs.DurationVar(&c.LatInterval, "lat-interval", c.LatInterval, "interval between the latency workload's puts")
	fs.IntVar(&c.BurstN, "burst-n", benchproc.EnvInt("E2E_BURST_N", c.BurstN), "keys of the bursts and the cold start")
	fs.IntVar(&c.BurstConc, "burst-conc", benchproc.EnvInt("E2E_BURST_CONC", c.BurstConc), "writers of the sync burst")
	fs.IntVar(&c.BigN, "big-n", benchproc.EnvInt("E2E_BIG_N", c.BigN), "keys of the full render, restart and at-rest rows")
	fs.IntVar(&c.HugeN, "huge-n", benchproc.EnvInt("E2E_HUGE_N", c.HugeN), "keys of an extra full render row (0: none; E2E_BIG=1: 1M)")
	fs.IntVar(&c.ValueSize, "value-size", benchproc.EnvInt("E2E_VALUE_SIZE", c.ValueSize), "bytes per value in the full render rows")
	fs.StringVar(&c.Only, "only", os.Getenv("E2E_ONLY"), "run only these workloads, comma separated: latency, burst, cold, big (full render, restart, at rest)")
}
