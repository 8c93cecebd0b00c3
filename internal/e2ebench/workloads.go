package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/slipstreamkv/slipstream/internal/benchproc"
)

// bench runs the workloads: one client, one output file, both renderers.
type bench struct {
	cfg   config
	c     *client
	out   string
	watch *fileWatch
	res   *results
}

// lines reports whether data is a complete render of n keys.
func lines(n int) func([]byte, time.Time) bool {
	return func(data []byte, _ time.Time) bool { return data != nil && bytes.Count(data, []byte{'\n'}) == n }
}

// waitFor calls done with the output's content now and after each change of
// it until done returns true, giving up when the deadline passes or r's
// process p exits or reports failures. That check runs beside the watch,
// once a second, so that it never delays noticing a change.
func (b *bench) waitFor(ctx context.Context, r renderer, p *benchproc.Proc, deadline time.Duration, done func([]byte, time.Time) bool) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			if err := r.failing(p); err != nil {
				cancel(err)
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	err := b.watch.until(ctx, deadline, done)
	if err != nil && ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return err
}

// startEmpty starts r over an empty bucket and waits for its empty file.
func (b *bench) startEmpty(ctx context.Context, r renderer) (*benchproc.Proc, error) {
	if err := b.c.reset(ctx); err != nil {
		return nil, err
	}
	if err := os.Remove(b.out); err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	p, err := r.start(true)
	if err != nil {
		return nil, err
	}
	if err := b.waitFor(ctx, r, p, 120*time.Second, lines(0)); err != nil {
		p.Stop()
		return nil, fmt.Errorf("%s: first (empty) render: %w (log: %s)", p.Name, err, p.Log)
	}
	return p, nil
}

// latency puts LatN sequential values to one key, one every LatInterval
// (open loop), and returns the median and 99th percentile of the time from a
// put's start until the file showed its value or a newer one.
func (b *bench) latency(ctx context.Context, r renderer) (p50, p99 time.Duration, err error) {
	p, err := b.startEmpty(ctx, r)
	if err != nil {
		return 0, 0, err
	}
	defer p.Stop()
	n := b.cfg.LatN
	starts := make([]time.Time, n+1)
	seen := make([]time.Time, n+1)
	errc := make(chan error, 1)
	go func() {
		t0 := time.Now()
		for i := 1; i <= n; i++ {
			time.Sleep(time.Until(t0.Add(time.Duration(i) * b.cfg.LatInterval)))
			starts[i] = time.Now()
			if _, err := b.c.kv.Put(ctx, "lat", []byte(strconv.Itoa(i))); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	last := 0
	err = b.waitFor(ctx, r, p, time.Duration(n)*b.cfg.LatInterval+60*time.Second, func(data []byte, at time.Time) bool {
		v := latValue(data)
		for ; last < v; last++ {
			seen[last+1] = at
		}
		return last == n
	})
	if perr := <-errc; perr != nil { // also orders the writes of starts before the reads below
		return 0, 0, fmt.Errorf("latency put: %w", perr)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("%s: latency: %w", p.Name, err)
	}
	lat := make([]time.Duration, n)
	for i := 1; i <= n; i++ {
		lat[i-1] = seen[i].Sub(starts[i])
	}
	slices.Sort(lat)
	return percentile(lat, 0.50), percentile(lat, 0.99), nil
}

// latValue is the value of key "lat" in a render, 0 if absent.
func latValue(data []byte) int {
	for line := range bytes.Lines(data) {
		if v, ok := bytes.CutPrefix(line, []byte("lat=")); ok {
			n, _ := strconv.Atoi(string(bytes.TrimSpace(v)))
			return n
		}
	}
	return 0
}

// percentile is the nearest-rank percentile of sorted d.
func percentile(d []time.Duration, q float64) time.Duration {
	i := int(float64(len(d))*q+0.999999) - 1
	return d[max(0, min(i, len(d)-1))]
}

// burst writes BurstN distinct keys into an empty bucket, with BurstConc
// synchronous writers or one asynchronous publisher, and returns the time
// from the first write until the file holds them all, and for the agent
// how many batches it applied for them and its time in plugin calls (else
// an unset figure).
func (b *bench) burst(ctx context.Context, r renderer, async bool) (time.Duration, figure, error) {
	p, err := b.startEmpty(ctx, r)
	if err != nil {
		return 0, figure{}, err
	}
	defer p.Stop()
	agent, _ := r.(*agentRenderer)
	var before agentTotals
	if agent != nil {
		if before, err = agent.totals(); err != nil {
			return 0, figure{}, err
		}
	}
	n := b.cfg.BurstN
	t0 := time.Now()
	errc := make(chan error, 1)
	go func() {
		if async {
			errc <- b.c.putAsync(ctx, n, 0)
		} else {
			errc <- b.c.putSync(ctx, n, b.cfg.BurstConc, 0)
		}
	}()
	var done time.Time
	err = b.waitFor(ctx, r, p, 300*time.Second, func(data []byte, at time.Time) bool {
		done = at
		return lines(n)(data, at)
	})
	if perr := <-errc; perr != nil {
		return 0, figure{}, fmt.Errorf("burst writes: %w", perr)
	}
	if err != nil {
		return 0, figure{}, fmt.Errorf("%s: burst of %d keys: %w (log: %s)", p.Name, n, err, p.Log)
	}
	var spent figure
	if agent != nil {
		after, err := agent.totals()
		if err != nil {
			return 0, figure{}, err
		}
		spent = note(fmt.Sprintf("%d batches, %v in plugin calls", after.batches-before.batches, dur(after.plugin-before.plugin)))
	}
	return done.Sub(t0), spent, nil
}

// fill gives the bucket exactly keys 0..n-1 with values of size bytes.
func (b *bench) fill(ctx context.Context, n, size int) error {
	if err := b.c.reset(ctx); err != nil {
		return err
	}
	return b.c.putAsync(ctx, n, size)
}

// coldStart deletes the output, starts r (fresh) over the filled bucket of n
// keys and returns the running process and the time from its start until
// the file was complete.
func (b *bench) coldStart(ctx context.Context, r renderer, n int) (*benchproc.Proc, time.Duration, error) {
	if err := os.Remove(b.out); err != nil && !os.IsNotExist(err) {
		return nil, 0, err
	}
	p, err := r.start(true)
	if err != nil {
		return nil, 0, err
	}
	var done time.Time
	err = b.waitFor(ctx, r, p, 600*time.Second, func(data []byte, at time.Time) bool {
		done = at
		return lines(n)(data, at)
	})
	if err == nil {
		err = p.Exited()
	}
	if err != nil {
		p.Stop()
		return nil, 0, fmt.Errorf("%s: cold start over %d keys: %w (log: %s)", p.Name, n, err, p.Log)
	}
	return p, done.Sub(p.Start), nil
}
