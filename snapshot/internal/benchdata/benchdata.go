// Package benchdata generates the benchmark workload shared by the fold
// backends: N keys of about 60 bytes with 200-byte incompressible values
// (N = 1,000,000 unless SLIPSTREAM_BENCH_KEYS says otherwise), and the
// helpers to report latency percentiles and peak memory.
package benchdata

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// Workload shape.
const (
	DefaultKeys = 1_000_000
	KeyLen      = 60
	ValueLen    = 200
	BatchSize   = 1024
)

// Data is the workload: keys in a shuffled order (as a bucket's initial
// sync would deliver them) and a value pool.
type Data struct {
	Keys []string // Keys[i] is the i-th key in delivery order
	pool []byte
}

var (
	once sync.Once
	data *Data
)

// N is the number of keys.
func N() int {
	if n, err := strconv.Atoi(os.Getenv("SLIPSTREAM_BENCH_KEYS")); err == nil && n > 0 {
		return n
	}
	return DefaultKeys
}

// Get returns the workload, generating it on first use.
func Get() *Data {
	once.Do(func() {
		n := N()
		rng := rand.New(rand.NewPCG(1, 2))
		d := &Data{Keys: make([]string, n), pool: make([]byte, 1<<20)}
		for i := range d.pool {
			d.pool[i] = byte(rng.Uint32())
		}
		for i, j := range rng.Perm(n) {
			k := fmt.Sprintf("route.svc-%06d.%08d.", j/1000, j%1000)
			d.Keys[i] = k + strings.Repeat("x", KeyLen-len(k))
		}
		data = d
	})
	return data
}

// Value is the value of key i in round r: ValueLen bytes of the pool.
func (d *Data) Value(i, r int) []byte {
	off := (i*7919 + r*104729) % (len(d.pool) - ValueLen)
	return d.pool[off : off+ValueLen : off+ValueLen]
}

// Update is the put of key i in round r, at revision rev.
func (d *Data) Update(i, r int, rev uint64) kvcore.Update {
	return kvcore.Update{Op: kvcore.OpPut, Key: d.Keys[i], Value: d.Value(i, r), Version: kvcore.RevisionVersion(rev)}
}

// RawBytes is the size of all keys plus one value each.
func (d *Data) RawBytes() int64 { return int64(len(d.Keys)) * (KeyLen + ValueLen) }

// Batches calls fn with the updates of round r in batches of BatchSize,
// revisions counting from base+1, and the cursor of each batch.
func (d *Data) Batches(r int, base uint64, fn func(batch []kvcore.Update, cursor kvcore.Cursor) error) error {
	batch := make([]kvcore.Update, 0, BatchSize)
	for i := range d.Keys {
		batch = append(batch, d.Update(i, r, base+uint64(i)+1))
		if len(batch) == BatchSize || i == len(d.Keys)-1 {
			if err := fn(batch, kvcore.RevisionCursor(base+uint64(i)+1)); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	return nil
}

// ReportPercentiles reports the p50 and p99 of durations as "p50-ns" and "p99-ns".
func ReportPercentiles(b *testing.B, durations []time.Duration) {
	slices.Sort(durations)
	at := func(q float64) float64 { return float64(durations[int(q*float64(len(durations)-1))].Nanoseconds()) }
	b.ReportMetric(at(0.50), "p50-ns")
	b.ReportMetric(at(0.99), "p99-ns")
}

// PeakRSS is the process's peak resident set size in bytes (VmHWM).
func PeakRSS() int64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// Timed runs fn with the benchmark timer running, fails the benchmark on
// its error, and returns how long fn took.
func Timed(b *testing.B, fn func() error) time.Duration {
	Quiesce()
	b.ResetTimer()
	start := time.Now()
	err := fn()
	el := time.Since(start)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	return el
}

// CPUTime is the user and system CPU time the process has used so far, on
// all its threads. A benchmark that reports the difference over its timed
// part ("cpu-ns") shows how much of its time is computation that a busy
// machine stretches, beside a baseline that mostly waits for the disk.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Quiesce collects garbage and flushes every dirty page of the machine to
// disk, so that a measurement does not pay for the work of the one before.
func Quiesce() {
	runtime.GC()
	syscall.Sync()
}
