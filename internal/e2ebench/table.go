package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/slipstreamkv/slipstream/internal/benchproc"
)

// figure is one measurement: a duration, a size in kB, a count, or a
// note (text, no ratio).
type figure struct {
	set  bool
	d    time.Duration
	kb   int64
	n    uint64
	text string
	kind byte // 'd', 'm' (memory), 'n', 't' (note) or 'x' (failed)
}

func dur(d time.Duration) figure { return figure{set: true, d: d, kind: 'd'} }
func mem(kb int64) figure        { return figure{set: true, kb: kb, kind: 'm'} }
func count(n uint64) figure      { return figure{set: true, n: n, kind: 'n'} }
func note(s string) figure       { return figure{set: true, text: s, kind: 't'} }

func (f figure) String() string {
	switch {
	case f.kind == 'x':
		return "FAILED"
	case !f.set:
		return "—"
	case f.kind == 'm':
		return fmt.Sprintf("%.0f MB", float64(f.kb)/1024)
	case f.kind == 'n':
		return fmt.Sprint(f.n)
	case f.kind == 't':
		return f.text
	case f.d < time.Second:
		return fmt.Sprintf("%.2f ms", float64(f.d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.2f s", f.d.Seconds())
	}
}

func (f figure) value() float64 {
	switch f.kind {
	case 'm':
		return float64(f.kb)
	case 'n':
		return float64(f.n)
	}
	return float64(f.d)
}

// failed marks a figure whose measurement failed (see the notes).
var failed = figure{kind: 'x'}

// row is one line of the table: the slipagent figure over the bare one.
type row struct {
	workload    string
	bare, agent figure
	goal        string
}

func (r row) ratio() string {
	if !r.bare.set || !r.agent.set || r.agent.kind == 't' || r.bare.value() == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", r.agent.value()/r.bare.value())
}

// results is what a run measured.
type results struct {
	cfg       config
	loadStart string
	loadEnd   string
	rows      []row
	failures  []error
	failedAt  map[string]bool // "renderer\x00workload" of each failure
}

// fail notes that renderer could not measure workload; add then shows
// FAILED instead of its figure.
func (r *results) fail(renderer, workload string, err error) {
	slog.Error("workload failed", "renderer", renderer, "workload", workload, "err", err)
	r.failures = append(r.failures, fmt.Errorf("%s, %s: %w", renderer, workload, err))
	if r.failedAt == nil {
		r.failedAt = map[string]bool{}
	}
	r.failedAt[renderer+"\x00"+workload] = true
}

// add appends a row of the bare and slipagent figures. A figure of a
// renderer whose failure was noted under a prefix of workload shows FAILED.
func (r *results) add(workload string, f [2]figure, goal string) {
	for i, name := range []string{"bare", "slipagent"} {
		for k := range r.failedAt {
			if n, w, _ := strings.Cut(k, "\x00"); n == name && strings.HasPrefix(workload, w) {
				f[i] = failed
			}
		}
	}
	r.rows = append(r.rows, row{workload, f[0], f[1], goal})
}

func (r *results) print(w io.Writer) {
	fmt.Fprintf(w, "load average (/proc/loadavg) at start: %s, at end: %s\n", r.loadStart, r.loadEnd)
	if r.cfg.PluginMemory != "" || r.cfg.PluginTimeout != "" {
		fmt.Fprintf(w, "not the default settings: plugin memory = %q, timeout = %q\n", r.cfg.PluginMemory, r.cfg.PluginTimeout)
	}
	fmt.Fprintf(w, "sizes: latency %d puts every %v; bursts %d keys (%d sync writers); full render %d keys of %d B\n\n",
		r.cfg.LatN, r.cfg.LatInterval, r.cfg.BurstN, r.cfg.BurstConc, r.cfg.BigN, r.cfg.ValueSize)
	cells := [][]string{{"workload", "bare", "slipagent", "ratio", "goal"}}
	for _, x := range r.rows {
		cells = append(cells, []string{x.workload, x.bare.String(), x.agent.String(), x.ratio(), x.goal})
	}
	benchproc.WriteTable(w, cells)
	for _, err := range r.failures {
		fmt.Fprintf(w, "FAILED: %v\n", err)
	}
	if len(r.failures) > 0 && !r.cfg.Keep {
		fmt.Fprintln(w, "(the run directory with those logs is removed: E2E_KEEP=1 or -keep keeps it)")
	}
}

// size names a key count: 10k, 100k, 1M.
func size(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1_000 && n%1_000 == 0:
		return fmt.Sprintf("%dk", n/1_000)
	}
	return fmt.Sprint(n)
}
