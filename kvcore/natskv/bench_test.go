package natskv

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/kvcore"
)

// Each benchmark pairs our layer (".../ours") with the same operation done
// with plain nats.go (".../baseline") against the same server in the same
// run. The two are measured in alternating rounds, so that changes in
// background load (the machine is shared) hit both alike, and each side
// reports its fastest round (load only ever adds time).

const (
	benchKeys   = 100_000
	benchValue  = 100
	benchLive   = 50_000
	benchLat    = 2_000
	benchRounds = 5
)

// sample is one timed run of an operation over items items, with extra
// metrics (unit → value) of that run.
type sample struct {
	items   int
	elapsed time.Duration
	extra   map[string]float64
}

// pair measures ours and base in benchRounds alternating rounds, then
// reports them as the sub-benchmarks name/ours and name/baseline: ns/op is
// the fastest round and rate its items per second. Iterations beyond the
// alternating rounds (with a -benchtime above 1x) measure more rounds.
func pair(b *testing.B, name, rate string, ours, base func() sample) {
	var so, sb []sample
	for range benchRounds {
		so = append(so, ours())
		sb = append(sb, base())
	}
	report := func(samples []sample, op func() sample) func(*testing.B) {
		return func(b *testing.B) {
			for i := range b.N {
				if i >= len(samples) {
					samples = append(samples, op())
				}
			}
			best := slices.MinFunc(samples, func(x, y sample) int { return cmp.Compare(x.elapsed, y.elapsed) })
			b.ReportMetric(float64(best.elapsed.Nanoseconds()), "ns/op")
			b.ReportMetric(float64(best.items)/best.elapsed.Seconds(), rate)
			for unit, v := range best.extra {
				b.ReportMetric(v, unit)
			}
		}
	}
	b.Run(name+"/ours", report(so, ours))
	b.Run(name+"/baseline", report(sb, base))
}

type benchEnv struct {
	c  *Conn
	js jetstream.JetStream
}

func newBenchEnv(b *testing.B) *benchEnv {
	srv := natstest.Run(b)
	o := Options{Servers: []string{srv.URL()}}
	c := New(o)
	if err := c.Connect(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	_, js := rawJS(b, srv.URL())
	return &benchEnv{c: c, js: js}
}

// bucket creates a bucket through our layer and returns both handles.
func (e *benchEnv) bucket(b *testing.B) (kvcore.Store, jetstream.KeyValue) {
	ctx := context.Background()
	s, err := e.c.Store(ctx, kvcore.StoreConfig{Bucket: uniqueBucket(), MaxBytes: -1})
	if err != nil {
		b.Fatal(err)
	}
	kv, err := e.js.KeyValue(ctx, s.Bucket())
	if err != nil {
		b.Fatal(err)
	}
	return s, kv
}

// load writes n keys prefix.000000… with PublishAsync.
func (e *benchEnv) load(b *testing.B, bucket, prefix string, n int) {
	value := bytes.Repeat([]byte("v"), benchValue)
	for i := range n {
		subj := fmt.Sprintf("$KV.%s.%s.%06d", bucket, prefix, i)
		if _, err := e.js.PublishAsync(subj, value, jetstream.WithStallWait(time.Minute)); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-e.js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("loading timed out")
	}
}

func BenchmarkScan(b *testing.B) {
	e := newBenchEnv(b)
	s, kv := e.bucket(b)
	e.load(b, s.Bucket(), "node", benchKeys)
	ctx := context.Background()
	pair(b, "100k", "keys/s", func() sample {
		start := time.Now()
		entries, err := s.Scan(ctx, "")
		if err != nil || len(entries) != benchKeys {
			b.Fatalf("scan: %d entries, %v", len(entries), err)
		}
		return sample{items: len(entries), elapsed: time.Since(start)}
	}, func() sample {
		// Plain nats.go has no scan: a watch of every key's last value,
		// collected until the end-of-initial-state marker.
		return natsInitialState(b, kv, true, jetstream.IgnoreDeletes())
	})
}

// natsInitialState times a plain nats.go watch of the whole bucket up to
// the end of its initial state, collecting the entries or only looking at
// each (as the state-sync benchmark of ours does).
func natsInitialState(b *testing.B, kv jetstream.KeyValue, collect bool, opts ...jetstream.WatchOpt) sample {
	start := time.Now()
	w, err := kv.WatchAll(context.Background(), opts...)
	if err != nil {
		b.Fatal(err)
	}
	var entries []jetstream.KeyValueEntry
	n, size := 0, 0
	for e := range w.Updates() {
		if e == nil {
			break
		}
		n, size = n+1, size+len(e.Key())+len(e.Value())
		if collect {
			entries = append(entries, e)
		}
	}
	d := time.Since(start)
	w.Stop()
	if n != benchKeys || size == 0 || collect && len(entries) != n {
		b.Fatalf("initial state of %d keys", n)
	}
	return sample{items: n, elapsed: d}
}

func BenchmarkKeys(b *testing.B) {
	e := newBenchEnv(b)
	s, kv := e.bucket(b)
	e.load(b, s.Bucket(), "node", benchKeys)
	ctx := context.Background()
	pair(b, "100k", "keys/s", func() sample {
		start := time.Now()
		keys, err := s.Keys(ctx, "")
		if err != nil || len(keys) != benchKeys {
			b.Fatalf("keys: %d, %v", len(keys), err)
		}
		return sample{items: len(keys), elapsed: time.Since(start)}
	}, func() sample {
		start := time.Now()
		l, err := kv.ListKeys(ctx)
		if err != nil {
			b.Fatal(err)
		}
		var keys []string
		for k := range l.Keys() {
			keys = append(keys, k)
		}
		if len(keys) != benchKeys {
			b.Fatalf("listed %d keys", len(keys))
		}
		return sample{items: len(keys), elapsed: time.Since(start)}
	})
}

func BenchmarkWatchStateSync(b *testing.B) {
	e := newBenchEnv(b)
	s, kv := e.bucket(b)
	e.load(b, s.Bucket(), "node", benchKeys)
	ctx := context.Background()
	pair(b, "100k", "keys/s", func() sample {
		start := time.Now()
		w, err := s.Watch(ctx, kvcore.AllKeys(), kvcore.Cursor{})
		if err != nil {
			b.Fatal(err)
		}
		n, size := 0, 0
		for ev := range w.Events() {
			if ev.Synced {
				break
			}
			n, size = n+1, size+len(ev.Key)+len(ev.Value)
		}
		d := time.Since(start)
		w.Stop()
		if n != benchKeys || size == 0 {
			b.Fatalf("initial state of %d keys", n)
		}
		return sample{items: n, elapsed: d}
	}, func() sample {
		return natsInitialState(b, kv, false)
	})
}

// BenchmarkWatchLive measures how fast a live watch passes on updates that
// a writer publishes as fast as it can, each to a new key of a new bucket.
func BenchmarkWatchLive(b *testing.B) {
	e := newBenchEnv(b)
	ctx := context.Background()
	// live times the delivery of benchLive updates by a watch whose next
	// returns false when it ends.
	live := func(s kvcore.Store, next func() bool) sample {
		start := time.Now()
		done := make(chan int)
		go func() {
			n := 0
			for n < benchLive && next() {
				n++
			}
			done <- n
		}()
		e.load(b, s.Bucket(), "live", benchLive)
		if n := <-done; n != benchLive {
			b.Fatalf("delivered %d of %d updates", n, benchLive)
		}
		return sample{items: benchLive, elapsed: time.Since(start)}
	}
	pair(b, "50k", "updates/s", func() sample {
		s, _ := e.bucket(b)
		w, err := s.Watch(ctx, kvcore.AllKeys(), kvcore.Cursor{})
		if err != nil {
			b.Fatal(err)
		}
		defer w.Stop()
		if ev := <-w.Events(); !ev.Synced {
			b.Fatalf("first event %+v", ev)
		}
		return live(s, func() bool { _, ok := <-w.Events(); return ok })
	}, func() sample {
		s, kv := e.bucket(b)
		w, err := kv.WatchAll(ctx)
		if err != nil {
			b.Fatal(err)
		}
		defer w.Stop()
		if e := <-w.Updates(); e != nil {
			b.Fatalf("first entry %v", e)
		}
		return live(s, func() bool { e, ok := <-w.Updates(); return ok && e != nil })
	})
}

// BenchmarkWatchLatency measures put→delivery latency: one synchronous put
// at a time, timed until the watch hands the update over. A round is
// benchLat puts; the fastest round's median and 99th percentile are
// reported as p50-us and p99-us.
func BenchmarkWatchLatency(b *testing.B) {
	e := newBenchEnv(b)
	ctx := context.Background()
	value := bytes.Repeat([]byte("v"), benchValue)
	round := func(put func(key string) error, recv func() string) sample {
		lat := make([]time.Duration, 0, benchLat)
		var sum time.Duration
		for i := range benchLat {
			key := fmt.Sprintf("k.%d", i%100)
			start := time.Now()
			if err := put(key); err != nil {
				b.Fatal(err)
			}
			if got := recv(); got != key {
				b.Fatalf("received %q, want %q", got, key)
			}
			d := time.Since(start)
			lat = append(lat, d)
			sum += d
		}
		slices.Sort(lat)
		return sample{items: benchLat, elapsed: sum, extra: map[string]float64{
			"p50-us": float64(lat[len(lat)/2].Microseconds()),
			"p99-us": float64(lat[len(lat)*99/100].Microseconds()),
		}}
	}

	s, _ := e.bucket(b)
	w, err := s.Watch(ctx, kvcore.AllKeys(), kvcore.Cursor{})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	<-w.Events() // Synced
	_, kv := e.bucket(b)
	kw, err := kv.WatchAll(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer kw.Stop()
	<-kw.Updates() // nil: initial state done

	pair(b, "put", "puts/s", func() sample {
		return round(func(key string) error { _, err := s.Put(ctx, key, value); return err },
			func() string { return (<-w.Events()).Key })
	}, func() sample {
		return round(func(key string) error { _, err := kv.Put(ctx, key, value); return err },
			func() string { return (<-kw.Updates()).Key() })
	})
}
