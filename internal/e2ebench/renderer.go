package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/slipstreamkv/slipstream/internal/benchproc"
)

// renderer starts one of the two programs compared, rendering bucket into
// out.
type renderer interface {
	// start starts the renderer; fresh gives it no local state from an
	// earlier start.
	start(fresh bool) (*benchproc.Proc, error)
	// failing returns an error if p, a process it started, exited or
	// reports failures.
	failing(p *benchproc.Proc) error
}

// bareRenderer runs [runBare] in a child process of this executable.
type bareRenderer struct {
	exe, url, out, work string
}

func (b *bareRenderer) start(bool) (*benchproc.Proc, error) {
	return benchproc.Start("bare renderer", filepath.Join(b.work, "bare.log"),
		[]string{roleEnv + "=" + roleBare, bareURLEnv + "=" + b.url, bareOutEnv + "=" + b.out}, b.exe)
}

func (b *bareRenderer) failing(p *benchproc.Proc) error { return p.Exited() }

// agentRenderer runs `slipagent run` with the template example plugin
// rendering the whole bucket into one file, default settings otherwise.
type agentRenderer struct {
	bin, plugin, url, out, work string
	memory, timeout             string // plugin settings; empty: the agent's defaults
	cache                       string // cache_dir, shared across starts
	data                        string // data_dir of the latest start
	httpAddr                    string // its /readyz, /status, /metrics
	starts                      int
}

func (a *agentRenderer) start(fresh bool) (*benchproc.Proc, error) {
	if fresh || a.data == "" {
		a.starts++
		a.data = filepath.Join(a.work, fmt.Sprintf("slipagent-data-%d", a.starts))
	}
	port, err := benchproc.FreePort()
	if err != nil {
		return nil, err
	}
	a.httpAddr = "127.0.0.1:" + strconv.Itoa(port)
	cfg := filepath.Join(a.work, "slipagent.hcl")
	if err := os.WriteFile(cfg, []byte(a.config()), 0o644); err != nil {
		return nil, err
	}
	return benchproc.Start("slipagent", filepath.Join(a.work, "slipagent.log"), nil, a.bin, "run", "-config", cfg)
}

// config is the agent's HCL: the configuration of the shared yardstick's
// bench_slipagent_agent.sh, plus cache_dir, an http listener and, when set,
// the plugin's memory and timeout.
func (a *agentRenderer) config() string {
	return benchproc.TemplateAgent{
		DataDir: a.data, CacheDir: a.cache, Servers: []string{a.url}, Plugin: a.plugin,
		Watch: "bench", Bucket: bucket, Out: a.out, HTTP: a.httpAddr, PluginSettings: a.pluginSettings(),
	}.HCL()
}

// pluginSettings are the plugin block's memory and timeout lines, for the
// settings given.
func (a *agentRenderer) pluginSettings() string {
	var b strings.Builder
	for _, s := range [][2]string{{"memory", a.memory}, {"timeout", a.timeout}} {
		if s[1] != "" {
			fmt.Fprintf(&b, "  %s = %s\n", s[0], benchproc.HCLString(s[1]))
		}
	}
	return b.String()
}

// ready polls /readyz until it answers 200 and returns when it did.
func (a *agentRenderer) ready(ctx context.Context, p *benchproc.Proc) (time.Time, error) {
	var at time.Time
	url := "http://" + a.httpAddr + "/readyz"
	err := benchproc.Poll(ctx, "slipagent "+url, 120*time.Second, 2*time.Millisecond, func() (bool, error) {
		if err := p.Exited(); err != nil {
			return false, err
		}
		resp, err := http.Get(url)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		at = time.Now()
		return resp.StatusCode == http.StatusOK, nil
	})
	return at, err
}

// watchStatus is what the benchmark reads of a watch in /status.
type watchStatus struct {
	Name      string `json:"name"`
	Batches   uint64 `json:"batches"`
	Failures  int    `json:"consecutive_failures"`
	LastError string `json:"last_error"`
}

func (a *agentRenderer) status() ([]watchStatus, error) {
	resp, err := http.Get("http://" + a.httpAddr + "/status")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st struct {
		Watches []watchStatus `json:"watches"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("slipagent /status: %w", err)
	}
	return st.Watches, nil
}

// failing reports the agent's exit or a watch's failure from /status; an
// agent not listening yet is not failing.
func (a *agentRenderer) failing(p *benchproc.Proc) error {
	if err := p.Exited(); err != nil {
		return err
	}
	ws, err := a.status()
	if err != nil {
		return nil
	}
	for _, w := range ws {
		if w.Failures > 0 {
			return fmt.Errorf("watch %s failing (%d in a row): %s", w.Name, w.Failures, w.LastError)
		}
	}
	return nil
}

// batches is the number of batches the agent applied since it started,
// from /status.
func (a *agentRenderer) batches() (uint64, error) {
	ws, err := a.status()
	var n uint64
	for _, w := range ws {
		n += w.Batches
	}
	return n, err
}

// agentTotals are counts since the agent started.
type agentTotals struct {
	batches uint64        // batches applied
	plugin  time.Duration // time in plugin calls
}

func (a *agentRenderer) totals() (agentTotals, error) {
	n, err := a.batches()
	if err != nil {
		return agentTotals{}, err
	}
	s, err := a.pluginSeconds()
	return agentTotals{n, time.Duration(s * float64(time.Second))}, err
}

// pluginSeconds is the time the agent spent in plugin calls since it
// started (slipagent_plugin_call_seconds_sum, over every kind).
func (a *agentRenderer) pluginSeconds() (float64, error) {
	resp, err := http.Get("http://" + a.httpAddr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	var sum float64
	for line := range strings.Lines(string(body)) {
		if !strings.HasPrefix(line, "slipagent_plugin_call_seconds_sum") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("slipagent /metrics: %q: %w", line, err)
		}
		sum += v
	}
	return sum, nil
}
