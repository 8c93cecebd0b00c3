package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/slipstreamkv/slipstream/internal/benchproc"
)

// settle is how long a renderer is left alone before its RSS at rest is read.
const settle = 2 * time.Second

// contender is one of the two renderers compared, in table order.
type contender struct {
	name string
	r    renderer
}

// run measures every workload with both renderers, the bare one first each
// time. A workload that fails for one renderer is noted in the results and
// the run goes on; the error returned is one that stopped the run. The
// results are returned even then.
func run(ctx context.Context, cfg config) (res *results, err error) {
	res = &results{cfg: cfg, loadStart: benchproc.Loadavg()}
	defer func() { res.loadEnd = benchproc.Loadavg() }()

	work, cleanup, err := benchproc.Workdir(cfg.Work, "e2ebench", cfg.Keep)
	if err != nil {
		return res, err
	}
	defer cleanup()
	if err := benchproc.Inputs(&cfg.SlipAgent, &cfg.Plugin); err != nil {
		return res, err
	}
	if cfg.NATSServer, err = filepath.Abs(cfg.NATSServer); err != nil {
		return res, err
	}
	url := cfg.NATSURL
	if url == "" {
		var srv *benchproc.Proc
		if srv, url, err = benchproc.StartNATS(ctx, cfg.NATSServer, work); err != nil {
			return res, err
		}
		defer srv.Stop()
	}
	c, err := dial(url)
	if err != nil {
		return res, err
	}
	defer c.nc.Close()
	exe, err := os.Executable()
	if err != nil {
		return res, err
	}
	outDir := filepath.Join(work, "out")
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return res, err
	}
	out := filepath.Join(outDir, "rendered")
	w, err := watchFile(out)
	if err != nil {
		return res, err
	}
	defer w.Close()
	b := &bench{cfg: cfg, c: c, out: out, watch: w, res: res}
	bare := &bareRenderer{exe: exe, url: url, out: out, work: work}
	agent := &agentRenderer{bin: cfg.SlipAgent, plugin: cfg.Plugin, memory: cfg.PluginMemory, timeout: cfg.PluginTimeout,
		url: url, out: out, work: work, cache: filepath.Join(work, "cache")}
	both := []contender{{"bare", bare}, {"slipagent", agent}}

	slog.Info("warming the compile cache and the page cache")
	for _, x := range both {
		p, err := b.startEmpty(ctx, x.r)
		if err != nil {
			return res, err
		}
		p.Stop()
	}

	if cfg.runs("latency") {
		b.latencyRows(ctx, both)
	}
	if cfg.runs("burst") {
		b.burstRows(ctx, both)
	}
	if cfg.runs("cold") {
		if err := b.coldRow(ctx, both); err != nil {
			return res, err
		}
	}
	if !cfg.runs("big") {
		return res, nil
	}
	if err := b.bigRows(ctx, both, agent, cfg.BigN, true); err != nil {
		return res, err
	}
	if cfg.HugeN > 0 {
		if err := b.bigRows(ctx, both, agent, cfg.HugeN, false); err != nil {
			return res, err
		}
	}
	return res, nil
}

// latencyRows measures put → file visible with both renderers.
func (b *bench) latencyRows(ctx context.Context, both []contender) {
	cfg, res := b.cfg, b.res
	slog.Info("latency", "puts", cfg.LatN, "interval", cfg.LatInterval)
	var p50, p99 [2]figure
	b.each(both, "latency", func(i int, r renderer) error {
		d50, d99, err := b.latency(ctx, r)
		p50[i], p99[i] = dur(d50), dur(d99)
		return err
	})
	res.add("put → file visible, p50", p50, "≤ 1.5×")
	res.add("put → file visible, p99", p99, "≤ 2×")
}

// burstRows measures both bursts with both renderers.
func (b *bench) burstRows(ctx context.Context, both []contender) {
	cfg, res := b.cfg, b.res
	for _, async := range []bool{false, true} {
		slog.Info("burst", "keys", cfg.BurstN, "async", async)
		what := fmt.Sprintf("%s-key burst, %d sync writers → file complete", size(cfg.BurstN), cfg.BurstConc)
		goal := "≤ 1.3×"
		if async {
			what, goal = size(cfg.BurstN)+"-key burst, async publish → file complete", "≤ 2×"
		}
		var d [2]figure
		var spent figure
		b.each(both, what, func(i int, r renderer) error {
			t, s, err := b.burst(ctx, r, async)
			d[i] = dur(t)
			if s.set {
				spent = s
			}
			return err
		})
		res.add(what, d, goal)
		res.add("  what the agent did for it", [2]figure{{}, spent}, "")
	}
}

// coldRow measures a cold start over a filled bucket with both renderers;
// only a failure to fill the bucket is returned.
func (b *bench) coldRow(ctx context.Context, both []contender) error {
	cfg, res := b.cfg, b.res
	slog.Info("cold start", "keys", cfg.BurstN)
	what := fmt.Sprintf("cold start, %s keys → complete file", size(cfg.BurstN))
	if err := b.fill(ctx, cfg.BurstN, 0); err != nil {
		return err
	}
	var cold [2]figure
	b.each(both, what, func(i int, r renderer) error {
		p, t, err := b.coldStart(ctx, r, cfg.BurstN)
		if err == nil {
			p.Stop()
			cold[i] = dur(t)
		}
		return err
	})
	res.add(what, cold, "≤ 2.5×")
	return nil
}

// each runs f for both contenders, noting a failure in the results. It
// stops early only when ctx ends.
func (b *bench) each(both []contender, what string, f func(i int, r renderer) error) {
	for i, x := range both {
		if err := f(i, x.r); err != nil {
			b.res.fail(x.name, what, err)
		}
	}
}

// bigRows measures a full render of n keys (start → complete file, peak
// RSS, the agent's time in plugin calls) and, with restart, the agent's
// restart over its up-to-date fold (READY time, re-applied batches) and both
// renderers' RSS at rest. Only a failure to fill the bucket is returned;
// the others are noted.
func (b *bench) bigRows(ctx context.Context, both []contender, agent *agentRenderer, n int, restart bool) error {
	slog.Info("full render", "keys", n, "value_size", b.cfg.ValueSize)
	if err := b.fill(ctx, n, b.cfg.ValueSize); err != nil {
		return err
	}
	k := size(n)
	what := fmt.Sprintf("full render, %s keys", k)
	var full, hwm, rest [2]figure
	var plugin figure
	b.each(both, what, func(i int, r renderer) error {
		p, d, err := b.coldStart(ctx, r, n)
		if err != nil {
			return err
		}
		defer p.Stop()
		full[i] = dur(d)
		kb, err := p.MemKB("VmHWM")
		if err != nil {
			return err
		}
		hwm[i] = mem(kb)
		if r == agent {
			s, err := agent.pluginSeconds()
			plugin = dur(time.Duration(s * float64(time.Second)))
			return err
		}
		if restart {
			time.Sleep(settle)
			kb, err := p.MemKB("VmRSS")
			rest[i] = mem(kb)
			return err
		}
		return nil
	})
	b.res.add(what+": start → complete file", full, "")
	b.res.add(what+": agent time in plugin calls", [2]figure{{}, plugin}, "≤ 300 ms (100k)")
	b.res.add(what+": peak RSS", hwm, "≤ 200 MB (100k)")
	if !restart {
		return nil
	}

	slog.Info("restart over an up-to-date fold", "keys", n)
	what = fmt.Sprintf("restart, up-to-date %s-key fold → READY", k)
	var ready, batches figure
	if !full[1].set {
		b.res.fail("slipagent", what, errors.New("skipped: its full render failed"))
	} else if err := b.restart(ctx, agent, &ready, &batches, &rest[1]); err != nil {
		b.res.fail("slipagent", what, err)
	}
	b.res.add(what, [2]figure{{}, ready}, "≤ 150 ms")
	b.res.add("  batches re-applied by that restart", [2]figure{{}, batches}, "0")
	b.res.add(fmt.Sprintf("RSS at rest, %s keys", k), rest, "")
	return nil
}

// restart starts the agent again on the data_dir of its latest start and
// measures the time to READY, the batches it applied and its RSS at rest.
func (b *bench) restart(ctx context.Context, agent *agentRenderer, ready, batches, rest *figure) error {
	p, err := agent.start(false)
	if err != nil {
		return err
	}
	defer p.Stop()
	at, err := agent.ready(ctx, p)
	if err != nil {
		return err
	}
	*ready = dur(at.Sub(p.Start))
	time.Sleep(settle)
	n, err := agent.batches()
	if err != nil {
		return err
	}
	*batches = count(n)
	kb, err := p.MemKB("VmRSS")
	*rest = mem(kb)
	return err
}
