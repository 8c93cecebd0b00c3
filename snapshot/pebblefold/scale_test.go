package pebblefold

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/snapshot/internal/benchdata"
)

// scaleEnv is the number of keys of BenchmarkScale ("1M", "10M", "50M" or a
// plain number); without it the benchmark is skipped. `make bench-fold`
// sets it, one process per size.
const scaleEnv = "SLIPSTREAM_BENCH_SCALE"

// scaleProbes is the number of point gets of BenchmarkScale.
const scaleProbes = 20_000

// BenchmarkScale measures the fold at one size, generated as it is
// delivered (never all in memory), beside plain file I/O on the same bytes
// in the same process: the baseline first, its file deleted before the
// fold is built, so that the disk holds one copy at a time.
//
//   - hydrate: every key applied in batches of 1024, each durable when Apply
//     returns (a Pebble commit with its WAL fsynced); baseline: the batch's
//     keys, values and versions appended to a file and fsynced. Peak RSS of
//     each is reported (VmHWM, reset before each).
//   - hydrate-sync: the same batches fed as the agent's initial sync feeds
//     them (WatchApplied folds a state sync's chunks under the cursor from
//     before, then checkpoints once), into a fold with [Options.Bulk], durable
//     at the checkpoint; baseline: the same appends, one fsync at the end.
//   - restart-load: opening the closed fold of hydrate-sync, as an agent
//     restart does; baseline: reading the raw file, what loading a fold of
//     those bytes into memory costs.
//   - get: p50/p99 of 20,000 gets of random present keys on the fold just
//     reopened (as hydration left it, not settled; 64 MiB block cache), once
//     the compactions the hydration left due have run (their wait is
//     reported), as the baseline's file has no writer beside its reads;
//     baseline: pread of those entries' records in the raw file.
func BenchmarkScale(b *testing.B) {
	n, name := scaleKeys(b)
	s := benchdata.NewStream(n)
	dir := b.TempDir()
	rng := rand.New(rand.NewPCG(5, 6))
	probes := make([]int, scaleProbes)
	for i := range probes {
		probes[i] = rng.IntN(n)
	}
	raw := filepath.Join(dir, "raw")
	b.Run(name+"/hydrate/baseline", func(b *testing.B) {
		benchdata.ResetPeakRSS()
		el := benchdata.Timed(b, func() error { return writeRaw(raw, s, true) })
		b.ReportMetric(float64(n)/el.Seconds(), "entries/s")
		b.ReportMetric(float64(benchdata.PeakRSS())/(1<<20), "peak-RSS-MB")
	})
	b.Run(name+"/hydrate-sync/baseline", func(b *testing.B) {
		benchdata.ResetPeakRSS()
		el := benchdata.Timed(b, func() error { return writeRaw(raw, s, false) })
		b.ReportMetric(float64(n)/el.Seconds(), "entries/s")
		b.ReportMetric(float64(benchdata.PeakRSS())/(1<<20), "peak-RSS-MB")
	})
	// needRaw skips a benchmark that reads the raw file when -test.bench
	// left out the ones that write it.
	needRaw := func(b *testing.B) {
		if _, err := os.Stat(raw); errors.Is(err, fs.ErrNotExist) {
			b.Skip("reads the raw file the hydrate baselines write (-test.bench skipped them)")
		}
	}
	b.Run(name+"/restart-load/baseline", func(b *testing.B) {
		needRaw(b)
		el := benchdata.Timed(b, func() error { return readAll(raw) })
		b.ReportMetric(float64(el.Nanoseconds()), "load-ns")
	})
	b.Run(name+"/get/baseline", func(b *testing.B) {
		needRaw(b)
		f, err := os.Open(raw)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		buf := make([]byte, rawRecord)
		lat := make([]time.Duration, 0, len(probes))
		for _, i := range probes {
			start := time.Now()
			_, err := f.ReadAt(buf, int64(i)*rawRecord)
			lat = append(lat, time.Since(start))
			if err != nil || string(buf[:benchdata.KeyLen]) != s.Key(s.Perm(i)) {
				b.Fatalf("record %d: %v", i, err)
			}
		}
		benchdata.ReportPercentiles(b, lat)
	})
	if err := os.Remove(raw); err != nil && !errors.Is(err, fs.ErrNotExist) {
		b.Fatal(err)
	}

	fold := filepath.Join(dir, "fold")
	b.Run(name+"/hydrate/ours", func(b *testing.B) {
		hydrateScale(b, fold, s, Options{}, func(batch []kvcore.Update, c kvcore.Cursor) (kvcore.Cursor, kvcore.Cursor) {
			return c, c
		})
	})
	if err := os.RemoveAll(fold); err != nil {
		b.Fatal(err)
	}
	b.Run(name+"/hydrate-sync/ours", func(b *testing.B) {
		hydrateScale(b, fold, s, Options{Bulk: true}, func(batch []kvcore.Update, c kvcore.Cursor) (kvcore.Cursor, kvcore.Cursor) {
			return kvcore.Cursor{}, c
		})
	})
	var f *Fold
	b.Run(name+"/restart-load/ours", func(b *testing.B) {
		el := benchdata.Timed(b, func() (err error) {
			f, err = Open(fold, Options{})
			return err
		})
		b.ReportMetric(float64(el.Nanoseconds()), "load-ns")
		if want := kvcore.RevisionCursor(uint64(n)); f.Cursor() != want {
			b.Fatalf("reopened at %v, want %v", f.Cursor(), want)
		}
	})
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	b.Run(name+"/get/ours", func(b *testing.B) {
		if f == nil {
			b.Skip("runs on the fold restart-load/ours opens (-test.bench skipped it)")
		}
		start := time.Now()
		for f.db.Metrics().Compact.NumInProgress > 0 || waitingCompaction(f) {
			if time.Since(start) > time.Hour {
				b.Fatal("compactions still running after an hour")
			}
			time.Sleep(50 * time.Millisecond)
		}
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "compact-wait-ms")
		r := f.Reader()
		lat := make([]time.Duration, 0, len(probes))
		for _, i := range probes {
			start := time.Now()
			e, err := r.Get(s.Key(s.Perm(i)))
			lat = append(lat, time.Since(start))
			if err != nil || len(e.Value) != benchdata.ValueLen {
				b.Fatalf("Get: %v", err)
			}
		}
		benchdata.ReportPercentiles(b, lat)
	})
}

// hydrateScale applies every batch of s to a new fold at dir, under the
// cursor cursors returns first for it, then, when the last batch moved
// nothing, checkpoints at the last cursor it returned second, and reports
// entries/s, peak RSS, read amplification and disk use.
func hydrateScale(b *testing.B, dir string, s *benchdata.Stream, opts Options, cursors func(batch []kvcore.Update, c kvcore.Cursor) (under, last kvcore.Cursor)) {
	f, err := Open(dir, opts)
	if err != nil {
		b.Fatal(err)
	}
	benchdata.ResetPeakRSS()
	el := benchdata.Timed(b, func() error {
		var last kvcore.Cursor
		err := s.Batches(func(batch []kvcore.Update, c kvcore.Cursor) error {
			var under kvcore.Cursor
			under, last = cursors(batch, c)
			return f.Apply(context.Background(), batch, under)
		})
		if err != nil || f.Cursor() == last {
			return err
		}
		return f.Apply(context.Background(), nil, last)
	})
	b.ReportMetric(float64(s.N())/el.Seconds(), "entries/s")
	b.ReportMetric(float64(benchdata.PeakRSS())/(1<<20), "peak-RSS-MB")
	m := f.db.Metrics()
	b.ReportMetric(float64(m.ReadAmp()), "read-amp")
	b.ReportMetric(float64(m.DiskSpaceUsage())/float64(s.N()), "disk-B/entry")
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// waitingCompaction reports whether f has a compaction due.
func waitingCompaction(f *Fold) bool {
	waiting, _ := f.db.GetWaitingCompaction()
	return waiting
}

// rawRecord is the size of an entry in the baseline's file: key, value and
// 8-byte revision.
const rawRecord = benchdata.KeyLen + benchdata.ValueLen + 8

// writeRaw writes the raw file of s's entries in delivery order, one
// write per batch, and an fsync after each (syncEach) or after the last.
func writeRaw(path string, s *benchdata.Stream, syncEach bool) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 0, benchdata.BatchSize*rawRecord)
	err = s.Batches(func(batch []kvcore.Update, c kvcore.Cursor) error {
		buf = buf[:0]
		for _, u := range batch {
			buf = append(buf, u.Key...)
			buf = append(buf, u.Value...)
			buf = u.Version.AppendBytes(buf)
		}
		if _, err := f.Write(buf); err != nil || !syncEach {
			return err
		}
		return f.Sync()
	})
	if err == nil && !syncEach {
		err = f.Sync()
	}
	if err != nil {
		return err
	}
	return f.Close()
}

// readAll reads the file at path from start to end.
func readAll(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Read(buf); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
	}
}

// scaleKeys reads scaleEnv, skipping the benchmark when it is unset.
func scaleKeys(b *testing.B) (int, string) {
	v := os.Getenv(scaleEnv)
	if v == "" {
		b.Skipf("%s is not set (make bench-fold sets it)", scaleEnv)
	}
	n, err := parseKeys(v)
	if err != nil {
		b.Fatalf("%s: %v", scaleEnv, err)
	}
	return n, v
}

// parseKeys parses a number of keys such as 1M, 500k or 2000000.
func parseKeys(v string) (int, error) {
	s, mult := v, 1
	if m, ok := strings.CutSuffix(s, "M"); ok {
		s, mult = m, 1_000_000
	} else if k, ok := strings.CutSuffix(s, "k"); ok {
		s, mult = k, 1_000
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q: want a number of keys such as 1M, 500k or 2000000", v)
	}
	return n * mult, nil
}
