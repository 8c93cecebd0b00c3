package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// settle is how long a renderer is left alone before its RSS at rest is read.
const settle = 2 * time.Second

// run measures every workload with both renderers, the bare one first each
// time, and returns the table so far even when a step fails.
func run(ctx context.Context, cfg config) (res *results, err error) {
	res = &results{cfg: cfg, loadStart: loadavg()}
	defer func() { res.loadEnd = loadavg() }()

	work := cfg.Work
	if work == "" {
		if work, err = os.MkdirTemp("", "e2ebench-"); err != nil {
			return res, err
		}
	}
	if cfg.Keep {
		slog.Info("run directory kept", "dir", work)
	} else {
		defer os.RemoveAll(work)
	}
	for _, p := range []*string{&cfg.SlipAgent, &cfg.Plugin, &cfg.NATSServer} {
		if *p, err = filepath.Abs(*p); err != nil {
			return res, err
		}
	}
	for _, p := range []string{cfg.SlipAgent, cfg.Plugin} {
		if _, err := os.Stat(p); err != nil {
			return res, fmt.Errorf("%w (build it with make build plugins-go, or set its flag)", err)
		}
	}
	url := cfg.NATSURL
	if url == "" {
		var srv *proc
		if srv, url, err = startNATS(ctx, cfg.NATSServer, work); err != nil {
			return res, err
		}
		defer srv.stop()
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
	b := &bench{cfg: cfg, c: c, out: out, watch: w}
	bare := &bareRenderer{exe: exe, url: url, out: out, work: work}
	agent := &agentRenderer{bin: cfg.SlipAgent, plugin: cfg.Plugin, url: url, out: out, work: work,
		cache: filepath.Join(work, "cache")}

	slog.Info("warming the compile cache and the page cache")
	for _, r := range []renderer{bare, agent} {
		p, err := b.startEmpty(ctx, r)
		if err != nil {
			return res, err
		}
		p.stop()
	}

	slog.Info("latency", "puts", cfg.LatN, "interval", cfg.LatInterval)
	var p50, p99 [2]time.Duration
	for i, r := range []renderer{bare, agent} {
		if p50[i], p99[i], err = b.latency(ctx, r); err != nil {
			return res, err
		}
	}
	res.add("put → file visible, p50", dur(p50[0]), dur(p50[1]), "≤ 1.5×")
	res.add("put → file visible, p99", dur(p99[0]), dur(p99[1]), "≤ 2×")

	for _, async := range []bool{false, true} {
		slog.Info("burst", "keys", cfg.BurstN, "async", async)
		var d [2]time.Duration
		for i, r := range []renderer{bare, agent} {
			if d[i], err = b.burst(ctx, r, async); err != nil {
				return res, err
			}
		}
		if async {
			res.add(size(cfg.BurstN)+"-key burst, async publish → file complete", dur(d[0]), dur(d[1]), "≤ 2×")
		} else {
			res.add(fmt.Sprintf("%s-key burst, %d sync writers → file complete", size(cfg.BurstN), cfg.BurstConc), dur(d[0]), dur(d[1]), "≤ 1.3×")
		}
	}

	slog.Info("cold start", "keys", cfg.BurstN)
	if err := b.fill(ctx, cfg.BurstN, 0); err != nil {
		return res, err
	}
	var cold [2]time.Duration
	for i, r := range []renderer{bare, agent} {
		var p *proc
		if p, cold[i], err = b.coldStart(ctx, r, cfg.BurstN); err != nil {
			return res, err
		}
		p.stop()
	}
	res.add(fmt.Sprintf("cold start, %s keys → complete file", size(cfg.BurstN)), dur(cold[0]), dur(cold[1]), "≤ 2.5×")

	if err := b.bigRows(ctx, res, bare, agent, cfg.BigN, true); err != nil {
		return res, err
	}
	if cfg.HugeN > 0 {
		if err := b.bigRows(ctx, res, bare, agent, cfg.HugeN, false); err != nil {
			return res, err
		}
	}
	return res, nil
}

// bigRows measures a full render of n keys (start → complete file, peak
// RSS, the agent's plugin time) and, with restart, the agent's restart over
// its up-to-date fold (READY time, re-applied batches) and both renderers'
// RSS at rest.
func (b *bench) bigRows(ctx context.Context, res *results, bare *bareRenderer, agent *agentRenderer, n int, restart bool) error {
	slog.Info("full render", "keys", n, "value_size", b.cfg.ValueSize)
	if err := b.fill(ctx, n, b.cfg.ValueSize); err != nil {
		return err
	}
	var full [2]time.Duration
	var hwm, rest [2]int64
	var plugin time.Duration
	for i, r := range []renderer{bare, agent} {
		p, d, err := b.coldStart(ctx, r, n)
		if err != nil {
			return err
		}
		full[i] = d
		hwm[i], err = p.memKB("VmHWM")
		if err == nil && r == agent {
			var s float64
			s, err = agent.pluginSeconds()
			plugin = time.Duration(s * float64(time.Second))
		}
		if err == nil && r == bare && restart {
			time.Sleep(settle)
			rest[i], err = p.memKB("VmRSS")
		}
		p.stop()
		if err != nil {
			return err
		}
	}
	k := size(n)
	res.add(fmt.Sprintf("full render, %s keys: start → complete file", k), dur(full[0]), dur(full[1]), "")
	res.add(fmt.Sprintf("full render, %s keys: agent time in plugin calls", k), figure{}, dur(plugin), "≤ 300 ms (100k)")
	res.add(fmt.Sprintf("full render, %s keys: peak RSS", k), mem(hwm[0]), mem(hwm[1]), "≤ 200 MB (100k)")
	if !restart {
		return nil
	}

	slog.Info("restart over an up-to-date fold", "keys", n)
	p, err := agent.start(false)
	if err != nil {
		return err
	}
	defer p.stop()
	at, err := agent.ready(ctx, p)
	if err != nil {
		return err
	}
	time.Sleep(settle)
	batches, err := agent.batches()
	if err != nil {
		return err
	}
	if rest[1], err = p.memKB("VmRSS"); err != nil {
		return err
	}
	res.add(fmt.Sprintf("restart, up-to-date %s-key fold → READY", k), figure{}, dur(at.Sub(p.start)), "≤ 150 ms")
	res.add("  batches re-applied by that restart", figure{}, count(batches), "0")
	res.add(fmt.Sprintf("RSS at rest, %s keys", k), mem(rest[0]), mem(rest[1]), "")
	return nil
}
