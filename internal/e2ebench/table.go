package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"
)

// figure is one measurement: a duration, a size in kB, or a count.
type figure struct {
	set  bool
	d    time.Duration
	kb   int64
	n    uint64
	kind byte // 'd', 'm' (memory) or 'n'
}

func dur(d time.Duration) figure { return figure{set: true, d: d, kind: 'd'} }
func mem(kb int64) figure        { return figure{set: true, kb: kb, kind: 'm'} }
func count(n uint64) figure      { return figure{set: true, n: n, kind: 'n'} }

func (f figure) String() string {
	switch {
	case !f.set:
		return "—"
	case f.kind == 'm':
		return fmt.Sprintf("%.0f MB", float64(f.kb)/1024)
	case f.kind == 'n':
		return fmt.Sprint(f.n)
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

// row is one line of the table: the slipagent figure over the bare one.
type row struct {
	workload    string
	bare, agent figure
	goal        string
}

func (r row) ratio() string {
	if !r.bare.set || !r.agent.set || r.bare.value() == 0 {
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
}

func (r *results) add(workload string, bare, agent figure, goal string) {
	r.rows = append(r.rows, row{workload, bare, agent, goal})
}

func (r *results) print(w io.Writer) {
	fmt.Fprintf(w, "load average (/proc/loadavg) at start: %s, at end: %s\n", r.loadStart, r.loadEnd)
	fmt.Fprintf(w, "sizes: latency %d puts every %v; bursts %d keys (%d sync writers); full render %d keys of %d B\n\n",
		r.cfg.LatN, r.cfg.LatInterval, r.cfg.BurstN, r.cfg.BurstConc, r.cfg.BigN, r.cfg.ValueSize)
	cells := [][]string{{"workload", "bare", "slipagent", "ratio", "goal"}}
	for _, x := range r.rows {
		cells = append(cells, []string{x.workload, x.bare.String(), x.agent.String(), x.ratio(), x.goal})
	}
	width := make([]int, len(cells[0]))
	for _, c := range cells {
		for i, s := range c {
			width[i] = max(width[i], utf8.RuneCountInString(s))
		}
	}
	for n, c := range cells {
		var b strings.Builder
		for i, s := range c {
			fmt.Fprintf(&b, "| %s%s ", s, strings.Repeat(" ", width[i]-utf8.RuneCountInString(s)))
		}
		fmt.Fprintln(w, b.String()+"|")
		if n == 0 {
			b.Reset()
			for i := range c {
				fmt.Fprintf(&b, "|%s", strings.Repeat("-", width[i]+2))
			}
			fmt.Fprintln(w, b.String()+"|")
		}
	}
}

// loadavg is the first three fields of /proc/loadavg.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
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
