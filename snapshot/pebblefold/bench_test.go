package pebblefold

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/snapshot/internal/benchdata"
)

// Benchmarks of the Pebble fold on the benchdata workload (1M keys of 60
// bytes, 200-byte values), each beside plain file I/O on the same bytes.

var (
	hydratedOnce sync.Once
	hydratedDir  string // a fold holding the whole workload, for BenchmarkGet
)

func TestMain(m *testing.M) {
	if dir := os.Getenv("SLIPSTREAM_HOLD_FOLD"); dir != "" {
		holdFold(dir) // a child of TestAFoldOpenInAnotherProcessIsLocked
		return
	}
	code := m.Run()
	if hydratedDir != "" {
		os.RemoveAll(filepath.Dir(hydratedDir)) // the fold and the temporary directory holding it
	}
	os.Exit(code)
}

func hydrate(b *testing.B, dir string, opts Options, settle bool) time.Duration {
	f, err := Open(dir, opts)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	err = benchdata.Get().Batches(0, 0, func(batch []kvcore.Update, c kvcore.Cursor) error {
		return f.Apply(context.Background(), batch, c)
	})
	el := time.Since(start)
	if err != nil {
		b.Fatal(err)
	}
	if settle {
		if err := f.Settle(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return el
}

// hydrated returns the directory of a fold holding the whole workload.
func hydrated(b *testing.B) string {
	hydratedOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pebblefold-bench-")
		if err != nil {
			b.Fatal(err)
		}
		hydratedDir = filepath.Join(dir, "fold")
		hydrate(b, hydratedDir, Options{NoSync: true}, true)
	})
	return hydratedDir
}

// BenchmarkHydrate: the workload applied in batches of 1024, each batch one
// fsynced Pebble commit; the baseline appends the same key and value bytes
// per batch to a plain file and fsyncs.
func BenchmarkHydrate(b *testing.B) {
	d := benchdata.Get()
	b.Run("ours", func(b *testing.B) {
		for range b.N {
			el := hydrate(b, filepath.Join(b.TempDir(), "fold"), Options{}, false)
			b.ReportMetric(float64(len(d.Keys))/el.Seconds(), "entries/s")
		}
	})
	b.Run("baseline", func(b *testing.B) {
		for range b.N {
			f, err := os.Create(filepath.Join(b.TempDir(), "raw"))
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			buf := make([]byte, 0, benchdata.BatchSize*(benchdata.KeyLen+benchdata.ValueLen+9))
			err = d.Batches(0, 0, func(batch []kvcore.Update, c kvcore.Cursor) error {
				buf = buf[:0]
				for _, u := range batch {
					buf = append(buf, u.Key...)
					buf = append(buf, u.Value...)
					buf = u.Version.AppendBytes(buf)
				}
				if _, err := f.Write(buf); err != nil {
					return err
				}
				return f.Sync()
			})
			el := time.Since(start)
			f.Close()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(len(d.Keys))/el.Seconds(), "entries/s")
		}
	})
}

// BenchmarkGet: latency of 20,000 point gets of random present keys on the
// hydrated and settled fold (64 MiB block cache, no compaction running);
// the baseline reads each entry's 260 bytes with pread from a plain file of
// the same entries (page-cached). Both measure a steady state: the timed
// gets follow 200,000 untimed ones of other random keys, which fill the
// block cache (a fold that has just opened pays for its first blocks of
// each table, and on a VM for faulting in the cache's fresh memory, about
// as much as for the read itself) and bring the heap to its working size.
func BenchmarkGet(b *testing.B) {
	const probes, warmups = 20_000, 200_000
	d := benchdata.Get()
	dir := hydrated(b)
	rng := rand.New(rand.NewPCG(3, 4))
	keys := make([]int, probes)
	for i := range keys {
		keys[i] = rng.IntN(len(d.Keys))
	}
	warm := make([]int, warmups)
	for i := range warm {
		warm[i] = rng.IntN(len(d.Keys))
	}
	b.Run("ours", func(b *testing.B) {
		for range b.N {
			f, err := Open(dir, Options{})
			if err != nil {
				b.Fatal(err)
			}
			r := f.Reader()
			for _, i := range warm {
				if _, err := r.Get(d.Keys[i]); err != nil {
					b.Fatalf("Get: %v", err)
				}
			}
			lat := make([]time.Duration, 0, probes)
			benchdata.Quiesce()
			b.ResetTimer()
			for _, i := range keys {
				start := time.Now()
				e, err := r.Get(d.Keys[i])
				lat = append(lat, time.Since(start))
				if err != nil || len(e.Value) != benchdata.ValueLen {
					b.Fatalf("Get: %v", err)
				}
			}
			b.StopTimer()
			f.Close()
			benchdata.ReportPercentiles(b, lat)
		}
	})
	b.Run("baseline", func(b *testing.B) {
		const rec = benchdata.KeyLen + benchdata.ValueLen
		p := filepath.Join(b.TempDir(), "raw")
		raw := make([]byte, 0, d.RawBytes())
		for i, k := range d.Keys {
			raw = append(append(raw, k...), d.Value(i, 0)...)
		}
		if err := os.WriteFile(p, raw, 0o644); err != nil {
			b.Fatal(err)
		}
		raw = nil
		for range b.N {
			f, err := os.Open(p)
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, rec)
			for _, i := range warm {
				if _, err := f.ReadAt(buf, int64(i)*rec); err != nil {
					b.Fatal(err)
				}
			}
			lat := make([]time.Duration, 0, probes)
			benchdata.Quiesce()
			b.ResetTimer()
			for _, i := range keys {
				start := time.Now()
				_, err := f.ReadAt(buf, int64(i)*rec)
				lat = append(lat, time.Since(start))
				if err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			f.Close()
			benchdata.ReportPercentiles(b, lat)
		}
	})
}
