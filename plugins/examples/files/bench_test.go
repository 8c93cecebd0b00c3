//go:build !wasip1

package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/internal/plugintest"
	"github.com/slipstreamkv/slipstream/internal/plugintest/harness"
	"github.com/slipstreamkv/slipstream/plugins/host"
)

// bigBenchEnv enables BenchmarkFilesRender1M, which writes a million files
// (about 4 GiB of disk and a minute or more): `make bench-render` sets it.
const bigBenchEnv = "SLIPSTREAM_BENCH_BIG"

// BenchmarkFilesRender100k renders a 100,000-key bucket, one file per key,
// into an empty output with the files example and the host's DEFAULT
// settings, and commits it (every file and directory fsynced).
func BenchmarkFilesRender100k(b *testing.B) { benchmarkRender(b, 100_000) }

// BenchmarkFilesRender1M is BenchmarkFilesRender100k for a million keys; it
// runs only when SLIPSTREAM_BENCH_BIG=1.
func BenchmarkFilesRender1M(b *testing.B) {
	if os.Getenv(bigBenchEnv) != "1" {
		b.Skipf("writes a million files; set %s=1 (make bench-render)", bigBenchEnv)
	}
	benchmarkRender(b, 1_000_000)
}

// benchmarkRender reports, per first render of n keys, its time (s/render),
// its rate (files/s) and the process's peak RSS during it (peak-RSS-MiB,
// VmHWM, the view of n keys included; base-RSS-MiB before it). "ours" is the plugin on the host,
// "baseline" plain Go writing and fsyncing the same files, one by one, and
// fsyncing each directory once.
func benchmarkRender(b *testing.B, n int) {
	keys := benchKeys(n)
	b.Run("ours", func(b *testing.B) {
		wasm := plugintest.Module(b, "plugins/examples/files")
		var elapsed, call time.Duration
		var base, peak int64
		for range b.N {
			b.StopTimer()
			h := harness.New(b, wasm, harness.Options{Outputs: []string{"files"}, Plugin: host.PluginConfig{Name: "files"}})
			for i, k := range keys {
				h.View.Put(host.Entry{Key: k, Value: benchValue(i), Revision: uint64(i + 1)})
			}
			resetPeakRSS(b)
			base = max(base, peakRSS(b))
			b.StartTimer()
			start := time.Now()
			res, err := h.Render()
			if err != nil {
				b.Fatal(err)
			}
			mid := time.Now()
			if err := res.Commit(context.Background()); err != nil {
				b.Fatal(err)
			}
			elapsed += time.Since(start)
			call += mid.Sub(start)
			b.StopTimer()
			peak = max(peak, peakRSS(b))
			if got, ok := h.Read("files", keys[n-1]); !ok || got != string(benchValue(n-1)) {
				b.Fatalf("last file %q holds %q", keys[n-1], got)
			}
		}
		reportRender(b, n, elapsed, base, peak)
		// The part the render's time limit pays for; the rest is the commit.
		b.ReportMetric(call.Seconds()/float64(b.N), "s/call")
	})
	b.Run("baseline", func(b *testing.B) {
		var elapsed time.Duration
		var base, peak int64
		for range b.N {
			b.StopTimer()
			dir := b.TempDir()
			resetPeakRSS(b)
			base = max(base, peakRSS(b))
			b.StartTimer()
			start := time.Now()
			if err := writeFiles(dir, keys); err != nil {
				b.Fatal(err)
			}
			elapsed += time.Since(start)
			b.StopTimer()
			peak = max(peak, peakRSS(b))
		}
		reportRender(b, n, elapsed, base, peak)
	})
}

// benchKeys returns n keys in ascending order, a thousand per directory.
func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("d%04d/key-%07d.conf", i/1000, i)
	}
	return keys
}

func benchValue(i int) []byte {
	return fmt.Appendf(nil, "value %d: %s\n", i, strings.Repeat("x", 64))
}

// syncWorkers is how many fsyncs the baseline runs at once, as many as the
// host's commit: one at a time is several times slower on most disks.
const syncWorkers = 16

// writeFiles is the baseline, the least a durable writer does: each file
// created and written in place (no staging, no rename), then every file and
// every directory fsynced once, syncWorkers at a time.
func writeFiles(root string, keys []string) error {
	dirs := map[string]bool{root: true}
	paths := make([]string, len(keys))
	for i, k := range keys {
		p := filepath.Join(root, filepath.FromSlash(k))
		if d := filepath.Dir(p); !dirs[d] {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
			dirs[d] = true
		}
		if err := os.WriteFile(p, benchValue(i), 0o644); err != nil {
			return err
		}
		paths[i] = p
	}
	for d := range dirs {
		paths = append(paths, d)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	sem := make(chan struct{}, syncWorkers)
	for _, p := range paths {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := syncFile(p); err != nil {
				mu.Lock()
				first = cmp.Or(first, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return first
}

func syncFile(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// reportRender reports the render's time and rate, the process's peak RSS
// and what it held before the render started (base-RSS-MiB: for ours, the
// in-memory view of n keys, which the agent's fold holds anyway).
func reportRender(b *testing.B, n int, elapsed time.Duration, base, peak int64) {
	b.ReportMetric(elapsed.Seconds()/float64(b.N), "s/render")
	b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "files/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(float64(base)/(1<<20), "base-RSS-MiB")
}

// resetPeakRSS collects garbage and resets the process's peak RSS (VmHWM)
// to its current RSS (Linux: "5" to /proc/self/clear_refs).
func resetPeakRSS(b *testing.B) {
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Logf("cannot reset the peak RSS, it includes earlier work: %v", err)
	}
}

// peakRSS returns VmHWM from /proc/self/status, in bytes.
func peakRSS(b *testing.B) int64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skipf("no peak RSS on this system: %v", err)
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmHWM in /proc/self/status")
	return 0
}
