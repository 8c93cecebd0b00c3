package main

import (
	"fmt"
	"io"
	"time"

	"github.com/slipstreamkv/slipstream/internal/benchproc"
)

// phase is what one phase measured; a zero field was not measured.
type phase struct {
	name     string
	complete time.Duration // start or fault → every agent applied
	stall    time.Duration // server back, or first acknowledged put → every agent applied
	rssKB    int64         // the server's VmRSS once every agent applied (a cluster: its largest)
	before   int           // consumers on the bucket's stream before, -1: not read
	after    int           // and once every agent applied and the replaced ones are gone (or consumerSettle passed)
	err      error
}

// results is a run's phases and the machine's load around them.
type results struct {
	n, k      int
	loadStart string
	loadEnd   string
	phases    []*phase
}

func (r *results) print(w io.Writer) {
	fmt.Fprintf(w, "fleet of N=%d agents, K=%d keys; load average (/proc/loadavg) at start: %s, at end: %s\n\n",
		r.n, r.k, r.loadStart, r.loadEnd)
	cells := [][]string{{"phase", "time to complete", "stall after the fault", "server RSS", "consumers before", "consumers after"}}
	for _, p := range r.phases {
		if p.err != nil {
			cells = append(cells, []string{p.name, "FAILED", "—", "—", "—", "—"})
			continue
		}
		cells = append(cells, []string{p.name, seconds(p.complete), seconds(p.stall), megabytes(p.rssKB),
			fmt.Sprint(p.before), fmt.Sprint(p.after)})
	}
	benchproc.WriteTable(w, cells)
	fmt.Fprintf(w, `
time to complete: from the agents' start (start) or the fault (restart: SIGTERM; leader loss: SIGKILL)
to every agent having applied the bucket's last revision (start) or the writer's new put.
stall: from the server accepting clients again (restart) or the writer's first acknowledged put
after the kill (leader loss) to every agent having applied that put.
consumers after: once every agent applied and the consumers they replaced are deleted (read for up to %v).
`, consumerSettle)
	for _, p := range r.phases {
		if p.err != nil {
			fmt.Fprintf(w, "FAILED: %s: %v\n", p.name, p.err)
		}
	}
}

func seconds(d time.Duration) string {
	if d == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func megabytes(kb int64) string { return fmt.Sprintf("%.0f MB", float64(kb)/1024) }
