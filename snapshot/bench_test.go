package snapshot

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/snapshot/internal/benchdata"
)

// Benchmarks of the append log and the in-memory fold on the benchdata
// workload (1M keys of 60 bytes, 200-byte values). Every ".../ours" has a
// ".../baseline" doing the same physical I/O with plain buffered file I/O
// (or, for memory, holding just the raw key and value bytes).

var (
	fixOnce sync.Once
	fixDir  string
	fixErr  error
)

// fixtures builds, once per process: compact.snap (the compacted fold of
// the workload, keys sorted) and bloated.snap (the workload written three
// times over in shuffled order with a checkpoint per batch, about 3x the
// size).
func fixtures(b *testing.B) string {
	b.Helper()
	fixOnce.Do(func() {
		fixDir, fixErr = os.MkdirTemp("", "snapshot-bench-")
		if fixErr != nil {
			return
		}
		d := benchdata.Get()
		w, err := OpenWriter(filepath.Join(fixDir, "bloated.snap"), Options{Sync: SyncNone, CompactThreshold: 1 << 62})
		if err != nil {
			fixErr = err
			return
		}
		for r := range 3 {
			fixErr = d.Batches(r, uint64(r*len(d.Keys)), func(batch []kvcore.Update, c kvcore.Cursor) error {
				for _, u := range batch {
					if err := w.WriteUpdate(u); err != nil {
						return err
					}
				}
				_, err := w.Checkpoint(c)
				return err
			})
			if fixErr != nil {
				return
			}
		}
		w.Close()
		img, err := os.ReadFile(filepath.Join(fixDir, "bloated.snap"))
		if err != nil {
			fixErr = err
			return
		}
		rep := inspect(img)
		x := rep.rep.idx
		f, err := os.Create(filepath.Join(fixDir, "compact.snap"))
		if err != nil {
			fixErr = err
			return
		}
		bw := bufio.NewWriterSize(f, 1<<20)
		if fixErr = writeCompacted(bw, &x.ar, x.base, rep.Cursor); fixErr == nil {
			fixErr = bw.Flush()
		}
		f.Close()
		// Written back before any benchmark runs (see copyFile).
		syscall.Sync()
	})
	if fixErr != nil {
		b.Fatal(fixErr)
	}
	return fixDir
}

func TestMain(m *testing.M) {
	if mode := os.Getenv("SLIPSTREAM_MEM_CHILD"); mode != "" {
		os.Exit(memoryChild(mode, os.Getenv("SLIPSTREAM_MEM_FILE")))
	}
	if mode := os.Getenv("SLIPSTREAM_LOAD_CHILD"); mode != "" {
		os.Exit(loadChild(mode, os.Getenv("SLIPSTREAM_LOAD_FILE"), os.Getenv("SLIPSTREAM_LOAD_COMPACTED")))
	}
	code := m.Run()
	if fixDir != "" {
		os.RemoveAll(fixDir)
	}
	os.Exit(code)
}

func reportRate(b *testing.B, bytes int64, d time.Duration) {
	b.ReportMetric(float64(bytes)/1e6/d.Seconds(), "MB/s")
}

// encodeAll returns the record bytes of round 0 in delivery order, one slice per batch (cursor last).
func encodeAll(d *benchdata.Data) [][]byte {
	var out [][]byte
	d.Batches(0, 0, func(batch []kvcore.Update, c kvcore.Cursor) error {
		var buf []byte
		for _, u := range batch {
			buf = encodeRec(buf, u)
		}
		out = append(out, appendCursor(buf, c))
		return nil
	})
	return out
}

func fsyncedFile(b *testing.B, dir string) *os.File {
	f, err := os.OpenFile(filepath.Join(dir, "baseline.bin"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	return f
}

// BenchmarkAppend: the Writer appends every update of the workload with
// one checkpoint (one fsync) at the end; the baseline writes the same
// record bytes through a bufio.Writer and fsyncs.
func BenchmarkAppend(b *testing.B) {
	d := benchdata.Get()
	b.Run("ours", func(b *testing.B) {
		updates := make([]kvcore.Update, len(d.Keys))
		for i := range updates {
			updates[i] = d.Update(i, 0, uint64(i+1))
		}
		var size int64
		for range b.N {
			p := filepath.Join(b.TempDir(), "append.snap")
			w, err := OpenWriter(p, Options{CompactThreshold: 1 << 62})
			if err != nil {
				b.Fatal(err)
			}
			benchdata.Quiesce()
			b.ResetTimer()
			start := time.Now()
			for _, u := range updates {
				if err := w.WriteUpdate(u); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := w.Checkpoint(kvcore.RevisionCursor(uint64(len(d.Keys)))); err != nil {
				b.Fatal(err)
			}
			el := time.Since(start)
			b.StopTimer()
			w.Close()
			fi, _ := os.Stat(p)
			size = fi.Size()
			reportRate(b, size, el)
		}
	})
	b.Run("baseline", func(b *testing.B) {
		recs := make([][]byte, len(d.Keys))
		for i := range d.Keys {
			recs[i] = encodeRec(nil, d.Update(i, 0, uint64(i+1)))
		}
		for range b.N {
			f := fsyncedFile(b, b.TempDir())
			benchdata.Quiesce()
			b.ResetTimer()
			start := time.Now()
			bw := bufio.NewWriterSize(f, 64<<10)
			var n int64
			for _, r := range recs {
				bw.Write(r)
				n += int64(len(r))
			}
			bw.Flush()
			f.Sync()
			el := time.Since(start)
			b.StopTimer()
			f.Close()
			reportRate(b, n, el)
		}
	})
}

// BenchmarkApply: a Log hydrated through Apply in batches of 1024 (write,
// fsync, index every update in memory); the baseline writes and fsyncs the
// same bytes per batch. Both report the CPU time they used ("cpu-ns"): the
// baseline mostly waits for its fsyncs, while ours also computes (the index
// work overlaps each fsync), so on a busy machine ours stretches and the
// baseline hardly does.
func BenchmarkApply(b *testing.B) { benchmarkApply(b, false) }

// BenchmarkApplySync: BenchmarkApply with the batches fed as a state sync
// feeds them (kvcore.WatchApplied, the agent's first sync): each folded
// under the cursor from before, its fsync in the background, then one
// checkpoint moves the cursor. The baseline is BenchmarkApply's.
func BenchmarkApplySync(b *testing.B) { benchmarkApply(b, true) }

func benchmarkApply(b *testing.B, sync bool) {
	d := benchdata.Get()
	b.Run("ours", func(b *testing.B) {
		for range b.N {
			l, err := Open(filepath.Join(b.TempDir(), "apply.snap"), Options{})
			if err != nil {
				b.Fatal(err)
			}
			benchdata.Quiesce()
			b.ResetTimer()
			start, cpu := time.Now(), benchdata.CPUTime()
			var last kvcore.Cursor
			err = d.Batches(0, 0, func(batch []kvcore.Update, c kvcore.Cursor) error {
				if sync {
					last, c = c, l.Cursor()
				}
				return l.Apply(context.Background(), batch, c)
			})
			if err == nil && sync {
				err = l.Apply(context.Background(), nil, last)
			}
			el, cpu := time.Since(start), benchdata.CPUTime()-cpu
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			reportRate(b, l.Stats().FileSize, el)
			b.ReportMetric(float64(len(d.Keys))/el.Seconds(), "keys/s")
			b.ReportMetric(float64(cpu.Nanoseconds()), "cpu-ns")
			l.Close()
		}
	})
	b.Run("baseline", func(b *testing.B) {
		batches := encodeAll(d)
		for range b.N {
			f := fsyncedFile(b, b.TempDir())
			benchdata.Quiesce()
			b.ResetTimer()
			start, cpu := time.Now(), benchdata.CPUTime()
			var n int64
			for _, batch := range batches {
				f.Write(batch)
				f.Sync()
				n += int64(len(batch))
			}
			el, cpu := time.Since(start), benchdata.CPUTime()-cpu
			b.StopTimer()
			f.Close()
			reportRate(b, n, el)
			b.ReportMetric(float64(len(d.Keys))/el.Seconds(), "keys/s")
			b.ReportMetric(float64(cpu.Nanoseconds()), "cpu-ns")
		}
	})
}

// BenchmarkCheckpoint: latency of Apply for a 16-update batch (write and
// fsync) on a log holding the whole workload; the baseline writes and
// fsyncs the same bytes.
func BenchmarkCheckpoint(b *testing.B) {
	const rounds, per = 300, 16
	d := benchdata.Get()
	dir := fixtures(b)
	b.Run("ours", func(b *testing.B) {
		for range b.N {
			p := filepath.Join(b.TempDir(), "fold.snap")
			copyFile(b, filepath.Join(dir, "compact.snap"), p)
			l, err := Open(p, Options{})
			if err != nil {
				b.Fatal(err)
			}
			lat := make([]time.Duration, 0, rounds)
			benchdata.Quiesce()
			b.ResetTimer()
			for r := range rounds {
				batch := make([]kvcore.Update, per)
				for j := range batch {
					batch[j] = d.Update(r*per+j, 1, uint64(10_000_000+r*per+j))
				}
				start := time.Now()
				if err := l.Apply(context.Background(), batch, kvcore.RevisionCursor(uint64(10_000_000+r*per+per))); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			l.Close()
			benchdata.ReportPercentiles(b, lat)
		}
	})
	b.Run("baseline", func(b *testing.B) {
		for range b.N {
			f := fsyncedFile(b, b.TempDir())
			lat := make([]time.Duration, 0, rounds)
			benchdata.Quiesce()
			b.ResetTimer()
			for r := range rounds {
				var buf []byte
				for j := range per {
					buf = encodeRec(buf, d.Update(r*per+j, 1, uint64(10_000_000+r*per+j)))
				}
				buf = appendCursor(buf, kvcore.RevisionCursor(uint64(r)))
				start := time.Now()
				f.Write(buf)
				f.Sync()
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			f.Close()
			benchdata.ReportPercentiles(b, lat)
		}
	})
}

func copyFile(b *testing.B, from, to string) {
	in, err := os.Open(from)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		b.Fatal(err)
	}
	// Written back now: a benchmark that fsyncs would otherwise pay for
	// the copy (an ext4 journal commit writes the data of every file whose
	// blocks it allocates), or not, as the kernel's writeback goes.
	if err := out.Sync(); err != nil {
		b.Fatal(err)
	}
	if err := out.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkLoadCompacted: Open of the compacted workload (read, check every
// CRC, index); the baseline reads the same file into memory (on huge pages,
// as ours does). Each load runs in a fresh child process, as a restart does
// (see timedLoad), and each side reports its median (see compareLoads).
func BenchmarkLoadCompacted(b *testing.B) {
	p := filepath.Join(fixtures(b), "compact.snap")
	os.ReadFile(p) // warm the page cache for both
	compareLoads(b, func() (string, func()) { return p, func() {} }, "")
}

// loadRounds is how many loads of each side compareLoads times.
const loadRounds = 5

// compareLoads times loadRounds loads of each side (timedLoad), ours and
// the baseline in turn, of the file file returns (and then cleans up), and
// reports each side's median as its sub-benchmark. Taking turns keeps
// either side from paying alone for the memory the host took back: on a
// virtual machine the first load after the fixtures were made faults its
// memory in at several times the cost of the next ones.
func compareLoads(b *testing.B, file func() (path string, cleanup func()), compacted string) {
	modes := []string{"ours", "baseline"}
	took := map[string][]float64{}
	for range loadRounds {
		for _, mode := range modes {
			p, cleanup := file()
			took[mode] = append(took[mode], timedLoad(b, mode, p, compacted))
			cleanup()
		}
	}
	for _, mode := range modes {
		b.Run(mode, func(b *testing.B) {
			ns := median(took[mode])
			b.ReportMetric(ns, "ns/op") // the load, not the process around it
			b.ReportMetric(ns, "load-ns")
		})
	}
}

func openAndClose(p string) error {
	l, err := Open(p, Options{})
	if err != nil {
		return err
	}
	return l.Close()
}

// writeSynced writes n bytes of buf (repeated) into a new file in dir
// through a 1 MiB bufio.Writer, fsyncs it and renames it to name: the
// physical work of writing a compacted file.
func writeSynced(dir, name string, buf []byte, n int64) error {
	f, err := os.Create(filepath.Join(dir, "baseline.tmp"))
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	for left := n; left > 0; left -= min(int64(len(buf)), left) {
		bw.Write(buf[:min(int64(len(buf)), left)])
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	f.Close()
	return os.Rename(f.Name(), filepath.Join(dir, name))
}

// BenchmarkLoadBloated: Open of the 3x-bloated log, which replays it and
// rewrites it compacted (fsync, rename, directory fsync); the baseline reads
// the same file (into memory on huge pages, as ours does) and writes,
// fsyncs and renames as many bytes as the
// compacted file has. Each load runs in a fresh child process, as a restart
// does (see timedLoad).
func BenchmarkLoadBloated(b *testing.B) {
	dir := fixtures(b)
	src := filepath.Join(dir, "bloated.snap")
	compareLoads(b, func() (string, func()) {
		copyDir, err := os.MkdirTemp("", "snapshot-bench-load-")
		if err != nil {
			b.Fatal(err)
		}
		p := filepath.Join(copyDir, "fold.snap")
		copyFile(b, src, p)
		os.ReadFile(p)
		return p, func() { os.RemoveAll(copyDir) }
	}, filepath.Join(dir, "compact.snap"))
}

// timedLoad loads the log at path in a child process (mode "ours": Open
// and Close; "baseline": read the file, then, when compacted names a file,
// write, fsync and rename as many bytes as it holds beside path) and
// returns how long that took, in nanoseconds. A load is a restart's work,
// done by a process whose heap has never held the fold: in one process with the
// other side, whichever side ran second would reuse the memory the first
// one faulted in and freed, which on a VM costs as much as the load itself.
// For the same reason each child starts after memoryHandback: on a VM that
// hands freed memory back to its host (free page reporting), memory that
// another process freed a moment ago is faulted in again for a fraction of
// what memory the host took back costs, so without the pause a child that
// followed a large one (the fixtures, the other side) would be measured
// with warm memory and the next one with cold.
func timedLoad(b *testing.B, mode, path, compacted string) float64 {
	time.Sleep(memoryHandback)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SLIPSTREAM_LOAD_CHILD="+mode, "SLIPSTREAM_LOAD_FILE="+path, "SLIPSTREAM_LOAD_COMPACTED="+compacted)
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("child: %v\n%s", err, out)
	}
	var ns float64
	if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "load-ns=%g", &ns); err != nil {
		b.Fatalf("child said %q: %v", out, err)
	}
	return ns
}

// memoryHandback is how long a VM with free page reporting takes to hand
// memory freed by a process back to its host (Linux reports after 2 s).
const memoryHandback = 3 * time.Second

// readHuge reads the file at path as os.ReadFile does, into a buffer on
// huge pages as a load's: the baseline pays for the same fresh memory as
// ours, no more.
func readHuge(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	buf := withHugePages(make([]byte, fi.Size()))
	_, err = io.ReadFull(f, buf)
	return buf, err
}

// loadChild runs in a child process of timedLoad and prints how long the
// load took.
func loadChild(mode, path, compacted string) int {
	var img []byte
	if compacted != "" && mode == "baseline" {
		var err error
		if img, err = os.ReadFile(compacted); err != nil {
			fmt.Println(err)
			return 1
		}
	}
	benchdata.Quiesce()
	start := time.Now()
	var err error
	switch {
	case mode == "ours":
		err = openAndClose(path)
	case compacted == "":
		_, err = readHuge(path)
	default:
		if _, err = readHuge(path); err == nil {
			err = writeSynced(filepath.Dir(path), filepath.Base(path), img, int64(len(img)))
		}
	}
	el := time.Since(start)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Printf("load-ns=%d\n", el.Nanoseconds())
	return 0
}

// BenchmarkCompact: Log.Compact of the whole fold (write the sorted image,
// fsync, copy the tail, rename, directory fsync); the baseline writes,
// fsyncs and renames as many bytes.
func BenchmarkCompact(b *testing.B) {
	src := filepath.Join(fixtures(b), "compact.snap")
	compacted, err := os.ReadFile(src)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("ours", func(b *testing.B) {
		for range b.N {
			p := filepath.Join(b.TempDir(), "fold.snap")
			copyFile(b, src, p)
			l, err := Open(p, Options{})
			if err != nil {
				b.Fatal(err)
			}
			el := benchdata.Timed(b, l.Compact)
			l.Close()
			b.ReportMetric(float64(el.Nanoseconds()), "compact-ns")
		}
	})
	b.Run("baseline", func(b *testing.B) {
		for range b.N {
			tmp := b.TempDir()
			el := benchdata.Timed(b, func() error { return writeSynced(tmp, "fold.snap", compacted, int64(len(compacted))) })
			b.ReportMetric(float64(el.Nanoseconds()), "compact-ns")
		}
	})
}

// BenchmarkMemory: peak RSS and live heap of a process holding the fold
// (loaded from the compacted file, then 100 batches of overwrites applied);
// the baseline process holds the raw key and value bytes in one slab.
// Each side runs in its own child process so that peaks do not mix.
func BenchmarkMemory(b *testing.B) {
	p := filepath.Join(fixtures(b), "compact.snap")
	for _, mode := range []string{"ours", "baseline"} {
		b.Run(mode, func(b *testing.B) {
			for range b.N {
				work := filepath.Join(b.TempDir(), "fold.snap")
				copyFile(b, p, work)
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), "SLIPSTREAM_MEM_CHILD="+mode, "SLIPSTREAM_MEM_FILE="+work)
				out, err := cmd.CombinedOutput()
				if err != nil {
					b.Fatalf("child: %v\n%s", err, out)
				}
				var heap, rss float64
				if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "heap=%g rss=%g", &heap, &rss); err != nil {
					b.Fatalf("child said %q: %v", out, err)
				}
				b.ReportMetric(heap, "heap-B")
				b.ReportMetric(rss, "peak-rss-B")
				b.ReportMetric(float64(benchdata.Get().RawBytes()), "raw-B")
			}
		})
	}
}

// memoryChild runs in a child process of BenchmarkMemory. The workload
// generator's own memory (all keys) is part of neither side: each side
// takes from it what it needs (the fold: the updates of its 100 batches,
// which count against it), then the rest is freed and returned to the
// OS and the peak RSS reset before the measured part.
func memoryChild(mode, path string) int {
	d := benchdata.Get()
	var batches [][]kvcore.Update
	var slab []byte
	switch mode {
	case "ours":
		for r := range 100 {
			batch := make([]kvcore.Update, benchdata.BatchSize)
			for j := range batch {
				i := (r*benchdata.BatchSize + j) % len(d.Keys)
				batch[j] = d.Update(i, 1, uint64(10_000_000+r*benchdata.BatchSize+j))
			}
			batches = append(batches, batch)
		}
	case "baseline":
		slab = make([]byte, 0, d.RawBytes())
		for i, k := range d.Keys {
			slab = append(slab, k...)
			slab = append(slab, d.Value(i, 0)...)
		}
	}
	d.Keys = nil
	debug.FreeOSMemory()
	if err := resetPeakRSS(); err != nil {
		fmt.Println(err)
		return 1
	}
	var keep any = slab
	if mode == "ours" {
		l, err := Open(path, Options{})
		if err != nil {
			fmt.Println(err)
			return 1
		}
		for r, batch := range batches {
			if err := l.Apply(context.Background(), batch, kvcore.RevisionCursor(uint64(10_000_000+r))); err != nil {
				fmt.Println(err)
				return 1
			}
		}
		batches = nil
		keep = l
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("heap=%d rss=%d\n", ms.HeapInuse, benchdata.PeakRSS())
	runtime.KeepAlive(keep)
	return 0
}

// resetPeakRSS restarts the process's peak RSS (VmHWM) from its current
// RSS (Linux: clear_refs 5).
func resetPeakRSS() error {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// BenchmarkRangeWhileApplying: a full Range of the compacted workload whose
// callback applies one batch with a new key after every page (the worst
// case for the sorted view of recent changes, which each page then has to
// bring up to date); the baseline is the same Range with nothing applied.
// The sides take turns, rangeRounds times, and each reports its median: a
// Range's garbage makes it sensitive to the heap that earlier benchmarks
// of the process left behind.
func BenchmarkRangeWhileApplying(b *testing.B) {
	fix := filepath.Join(fixtures(b), "compact.snap")
	// ranged returns how long one timed Range took and how many entries it
	// handed out.
	ranged := func(applying bool) (time.Duration, int) {
		dir, err := os.MkdirTemp("", "snapshot-bench-range-")
		if err != nil {
			b.Fatal(err)
		}
		defer os.RemoveAll(dir)
		p := filepath.Join(dir, "range.snap")
		copyFile(b, fix, p)
		l, err := Open(p, Options{Sync: SyncNone, CompactThreshold: 1 << 40})
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		ctx := context.Background()
		// An untimed Range first: the entries a Range hands out are
		// garbage the heap then reuses, so the timed one finds the heap
		// as a process that has ranged before does, whichever side runs
		// first (the first Range of a process also faults in fresh
		// memory for them, which costs more than the Range on a VM).
		if err := l.Range(ctx, "", "", func(kvcore.Entry) error { return nil }); err != nil {
			b.Fatal(err)
		}
		n, rev := 0, uint64(1)<<40
		benchdata.Quiesce()
		start := time.Now()
		err = l.Range(ctx, "", "", func(kvcore.Entry) error {
			if n++; applying && n%rangePage == 0 {
				rev++
				u := kvcore.Update{Op: kvcore.OpPut, Key: fmt.Sprintf("new-%012d", rev), Value: []byte("v"), Version: kvcore.RevisionVersion(rev)}
				return l.Apply(ctx, []kvcore.Update{u}, kvcore.RevisionCursor(rev))
			}
			return nil
		})
		el := time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		return el, n
	}
	modes := []string{"ours", "baseline"}
	took, entries := map[string][]float64{}, map[string]int{}
	for range rangeRounds {
		for _, mode := range modes {
			el, n := ranged(mode == "ours")
			took[mode] = append(took[mode], float64(el.Nanoseconds()))
			entries[mode] = n
		}
	}
	for _, mode := range modes {
		b.Run(mode, func(b *testing.B) {
			ns := median(took[mode])
			b.ReportMetric(ns, "ns/op")
			b.ReportMetric(float64(entries[mode])/(ns/1e9), "entries/s")
		})
	}
}

// rangeRounds is how many Ranges of each side BenchmarkRangeWhileApplying
// times.
const rangeRounds = 5

// median is the middle value of xs (which it sorts).
func median(xs []float64) float64 {
	slices.Sort(xs)
	return xs[len(xs)/2]
}
