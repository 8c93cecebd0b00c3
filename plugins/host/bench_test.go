package host

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/internal/plugintest"
	"github.com/slipstreamkv/slipstream/plugins/abi"
)

// benchModules are the example modules whose load times are measured.
var benchModules = []struct {
	name string
	wasm func(b *testing.B) []byte
}{
	{"files", func(b *testing.B) []byte { return plugintest.Module(b, "plugins/examples/files") }},
	{"template", func(b *testing.B) []byte { return plugintest.Module(b, "plugins/examples/template") }},
	{"nginx-upstreams", func(b *testing.B) []byte { return plugintest.Module(b, "plugins/examples/nginx-upstreams") }},
	{"envfile-c", func(b *testing.B) []byte { return plugintest.CModule(b, "plugins/examples/envfile/envfile.c") }},
}

// load creates an engine on cacheDir ("" = no file cache), loads wasm and
// closes both, as a process start does.
func load(b *testing.B, cacheDir string, wasm []byte) {
	ctx := context.Background()
	e, err := New(ctx, Config{CacheDir: cacheDir})
	if err != nil {
		b.Fatal(err)
	}
	p, err := e.Load(ctx, wasm, PluginConfig{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	p.Close(ctx)
	e.Close(ctx)
}

// BenchmarkLoad measures loading each example module in a fresh process:
// ours with wazero's file cache already populated, baseline compiling from
// scratch. The ratio column is cold/cached (goal: above 10).
func BenchmarkLoad(b *testing.B) {
	for _, m := range benchModules {
		b.Run(m.name, func(b *testing.B) {
			wasm := m.wasm(b)
			b.Run("ours", func(b *testing.B) {
				dir := b.TempDir()
				load(b, dir, wasm) // populate the cache
				b.ResetTimer()
				for range b.N {
					load(b, dir, wasm)
				}
			})
			b.Run("baseline", func(b *testing.B) {
				for range b.N {
					load(b, "", wasm)
				}
			})
		})
	}
}

// BenchmarkInstantiate measures creating an instance (instantiation,
// _initialize and the ABI version check) of each example module.
func BenchmarkInstantiate(b *testing.B) {
	ctx := context.Background()
	for _, m := range benchModules {
		b.Run(m.name, func(b *testing.B) {
			p, err := testEngine(b).Load(ctx, m.wasm(b), PluginConfig{Name: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close(ctx)
			b.ResetTimer()
			for range b.N {
				inst, err := p.NewInstance(ctx, InstanceConfig{Watch: "bench"})
				if err != nil {
					b.Fatal(err)
				}
				inst.Close(ctx)
			}
		})
	}
}

// benchBatch is n updates of 1 KiB values.
func benchBatch(n int, keyPrefix string) Batch {
	value := []byte(strings.Repeat("v", 1024))
	b := Batch{Cursor: Cursor{Revision: uint64(n)}}
	for i := range n {
		b.Updates = append(b.Updates, Update{Op: OpPut, Key: fmt.Sprintf("%s/%08d", keyPrefix, i), Value: value, Revision: uint64(i + 1)})
	}
	return b
}

// nativeDecoder holds what the SDK reuses across calls.
type nativeDecoder struct {
	out, in []byte
	records []abi.RawRecord
	updates []Update
}

// apply is the baseline: the encoding the host does and the decoding the
// SDK does (sdk.readInput's algorithm: one-loop record decoding, a key arena,
// reused buffers), then the bench plugin's work, as one native Go function.
func (d *nativeDecoder) apply(watch string, b Batch) int {
	d.out = abi.AppendHeader(d.out[:0], abi.Header{Kind: abi.KindApply, Watch: watch, Cursor: b.Cursor, Count: uint32(len(b.Updates))})
	for _, u := range b.Updates {
		d.out = abi.AppendRecord(d.out, u)
	}
	d.in = append(d.in[:0], d.out...) // the copy into guest memory
	h, off, err := abi.ParseHeader(d.in)
	if err != nil {
		panic(err)
	}
	raws, _, err := abi.AppendRawRecords(d.records[:0], d.in[off:], h.Count)
	if err != nil {
		panic(err)
	}
	d.records = raws[:0]
	arena := 0
	for i := range raws {
		arena += len(raws[i].Key) + len(raws[i].Version)
	}
	keys := make([]byte, arena)
	if cap(d.updates) < len(raws) {
		d.updates = make([]Update, len(raws))
	}
	ups := d.updates[:len(raws)]
	at := 0
	for i := range raws {
		n := copy(keys[at:], raws[i].Key)
		ups[i] = Update{Op: raws[i].Op, Key: string(keys[at : at+n]), Revision: raws[i].Revision, Value: raws[i].Value}
		at += n
	}
	sum := 0
	for _, u := range ups {
		sum += len(u.Key) + len(u.Value)
		if strings.HasPrefix(u.Key, "hash") {
			s := sha256.Sum256(u.Value)
			sum += int(s[0])
		}
	}
	return sum
}

func benchInstance(b *testing.B, interrupt bool) *Instance {
	return benchInstanceOf(b, plugintest.Module(b, "plugins/host/testdata/bench"), interrupt)
}

func benchInstanceOf(b *testing.B, wasm []byte, interrupt bool) *Instance {
	ctx := context.Background()
	e := testEngine(b)
	if !interrupt {
		var err error
		e, err = New(ctx, Config{CacheDir: plugintest.CacheDir(b)})
		if err != nil {
			b.Fatal(err)
		}
		e.interrupt = false
		b.Cleanup(func() { e.Close(ctx) })
	}
	p, err := e.Load(ctx, wasm, PluginConfig{Name: "bench", MemoryLimit: 256 << 20, Timeout: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close(ctx) })
	inst, err := p.NewInstance(ctx, InstanceConfig{Watch: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	return inst
}

// rounds is how many batches of n updates one benchmark operation runs, so
// that even -benchtime 1x measures a stable per-batch time ("ns/batch").
func rounds(n int) int { return max(2, 20_000/n) }

// perBatch runs one batch function rounds(n) times per operation after a
// warm-up, and reports the time per batch.
func perBatch(b *testing.B, n int, batch func()) {
	for range 3 {
		batch()
	}
	r := rounds(n)
	b.ResetTimer()
	for range b.N {
		for range r {
			batch()
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*r), "ns/batch")
}

func runApply(b *testing.B, inst *Instance, batch Batch) {
	ctx := context.Background()
	view := NewMemView()
	perBatch(b, len(batch.Updates), func() {
		res, err := inst.Apply(ctx, batch, view)
		if err != nil {
			b.Fatal(err)
		}
		res.Discard()
	})
	b.ReportMetric(float64(inst.Stats().Recycled), "recycles")
}

// BenchmarkBatch measures the per-batch cost of a call through the host
// (encode, copy into the guest, decode in the guest with the Go SDK, touch
// every update) against a native Go function doing the same encoding and the
// same decoding algorithm. BenchmarkBatchC runs the same batches through a C
// guest: the difference between the two is the Go guest's own cost (Go's
// wasm code, and interruptibility checks on every function call).
func BenchmarkBatch(b *testing.B) {
	for _, n := range []int{1, 100, 10_000} {
		batch := benchBatch(n, "key")
		b.Run(fmt.Sprintf("updates=%d", n), func(b *testing.B) {
			b.Run("ours", func(b *testing.B) { runApply(b, benchInstance(b, true), batch) })
			b.Run("baseline", func(b *testing.B) {
				var d nativeDecoder
				perBatch(b, n, func() { d.apply("bench", batch) })
			})
		})
	}
}

// BenchmarkBatchC is BenchmarkBatch with a C guest decoding the batch in
// place: the cost of the host and the call itself, without the Go guest's.
func BenchmarkBatchC(b *testing.B) {
	for _, n := range []int{1, 100, 10_000} {
		batch := benchBatch(n, "key")
		b.Run(fmt.Sprintf("updates=%d", n), func(b *testing.B) {
			b.Run("ours", func(b *testing.B) {
				runApply(b, benchInstanceOf(b, plugintest.CModule(b, "plugins/host/testdata/benchc/bench.c"), true), batch)
			})
			b.Run("baseline", func(b *testing.B) {
				var d nativeDecoder
				perBatch(b, n, func() { d.apply("bench", batch) })
			})
		})
	}
}

// BenchmarkInterruptible measures what WithCloseOnContextDone costs: ours has
// it (as the host always does), baseline runs the same calls without it (an
// instance then cannot be stopped by a timeout). "decode" is the 100-update
// batch; "hash" adds a sha256 of every 1 KiB value, a loop-heavy guest.
func BenchmarkInterruptible(b *testing.B) {
	for _, w := range []struct{ name, prefix string }{{"decode", "key"}, {"hash", "hash"}} {
		batch := benchBatch(100, w.prefix)
		b.Run(w.name, func(b *testing.B) {
			b.Run("ours", func(b *testing.B) { runApply(b, benchInstance(b, true), batch) })
			b.Run("baseline", func(b *testing.B) { runApply(b, benchInstance(b, false), batch) })
		})
	}
}

// BenchmarkCommit stages n small files and commits them. Staging writes
// them (the part a guest's time limit pays for, "stage-ms"); the commit
// fsyncs them before renaming ("commit-ms"): ours commitSyncWorkers at
// once, baseline one at a time, as staging used to do inside the limit.
func BenchmarkCommit(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("files=%d", n), func(b *testing.B) {
			for _, v := range []struct {
				name    string
				workers int
			}{{"ours", commitSyncWorkers}, {"baseline", 1}} {
				b.Run(v.name, func(b *testing.B) {
					var staging, committing time.Duration
					for range b.N {
						dir := b.TempDir()
						s := newStage(map[string]Output{"out": {Dir: dir, Mode: 0o644}}, Limits{}.withDefaults(), false)
						s.syncWorkers = v.workers
						start := time.Now()
						for i := range n {
							if _, ref := s.write("out", fmt.Sprintf("d%d/f%d", i%10, i), []byte("content"), 0); ref != nil {
								b.Fatal(ref.err)
							}
						}
						mid := time.Now()
						if err := s.commit(context.Background()); err != nil {
							b.Fatal(err)
						}
						staging += mid.Sub(start)
						committing += time.Since(mid)
					}
					b.ReportMetric(float64(staging.Milliseconds())/float64(b.N), "stage-ms")
					b.ReportMetric(float64(committing.Milliseconds())/float64(b.N), "commit-ms")
				})
			}
		})
	}
}
