package pebblefold

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/snapshot/internal/foldtest"
)

// noise is incompressible text for values.
var noise = func() string {
	rng := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 64<<10)
	for i := range b {
		b[i] = 'a' + byte(rng.IntN(26))
	}
	return string(b)
}()

// bulkModel applies random chunks of puts and removals of keys k0..k<keys>
// to f under its cursor, and to want, the fold's expected contents.
type bulkModel struct {
	rng  *rand.Rand
	keys int
	pad  int // bytes added to each value
	// key, when set, names key i instead of k<i>.
	key  func(i int) string
	rev  uint64
	want map[string]string
}

func (m *bulkModel) chunk(n int) []kvcore.Update {
	us := make([]kvcore.Update, 0, n)
	for range n {
		m.rev++
		k := fmt.Sprintf("k%05d", m.rng.IntN(m.keys))
		if m.key != nil {
			k = m.key(m.rng.IntN(m.keys))
		}
		if m.rng.IntN(5) == 0 {
			us = append(us, kvcore.Update{Op: kvcore.OpDelete, Key: k, Version: kvcore.RevisionVersion(m.rev)})
			delete(m.want, k)
			continue
		}
		n := m.pad + m.rng.IntN(40)
		at := m.rng.IntN(len(noise) - n)
		v := fmt.Sprint(m.rev, noise[at:at+n])
		us = append(us, putU(k, v, m.rev))
		m.want[k] = v
	}
	return us
}

// check fails t unless f holds exactly m.want.
func (m *bulkModel) check(t *testing.T, f *Fold) {
	t.Helper()
	got := foldtest.Dump(t, f, "")
	want := make([]string, 0, len(m.want))
	for _, k := range slices.Sorted(maps.Keys(m.want)) {
		want = append(want, k+"="+m.want[k])
	}
	if !slices.Equal(got, want) {
		t.Fatalf("fold holds %d entries, want %d (or values differ)", len(got), len(want))
	}
}

// Runs spilled from full buffers are merged with the buffer still filling,
// over what the fold held, in key ranges merged in parallel: the newest
// update of each key wins, whichever run, range and processor count.
func TestBulkRunsMerge(t *testing.T) {
	for _, procs := range []int{1, 2, 4} {
		t.Run(fmt.Sprintf("GOMAXPROCS %d", procs), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			// About 40 bytes an update: runs of ~10,000 records, so
			// that each has enough marks to be split up to 4 ways.
			f, err := Open("fold", Options{FS: vfs.NewMem(), Bulk: true, BulkBytes: 400_000})
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			m := &bulkModel{rng: rand.New(rand.NewPCG(uint64(procs), 11)), keys: 20_000, want: map[string]string{}}
			for round := range 3 {
				for range 80 {
					if err := f.Apply(context.Background(), m.chunk(1000), f.Cursor()); err != nil {
						t.Fatal(err)
					}
				}
				if len(f.runs) < 4 {
					t.Fatalf("round %d spilled %d runs: the fixture does not test merging", round, len(f.runs))
				}
				if got := len(f.splitKeys()); got != procs-1 {
					t.Fatalf("the runs split into %d ranges, want %d", got+1, procs)
				}
				apply(t, f, uint64(round+1)) // the checkpoint merges them
				if len(f.runs) != 0 {
					t.Fatalf("%d runs left after the checkpoint", len(f.runs))
				}
				m.check(t, f)
			}
		})
	}
}

// A bulk hydration of an empty fold lands in one level, with nothing left
// for compactions to merge, however many runs it spilled.
func TestBulkHydrationIsSettled(t *testing.T) {
	f, err := Open("fold", Options{FS: vfs.NewMem(), Bulk: true, BulkBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var want []string
	for i := range 20 {
		chunk := bulkChunk(i*2000, 2000, 200, uint64(i+1))
		if err := f.Apply(context.Background(), chunk, kvcore.Cursor{}); err != nil {
			t.Fatal(err)
		}
		for _, u := range chunk {
			want = append(want, u.Key+"="+string(u.Value))
		}
	}
	if len(f.runs) < 4 {
		t.Fatalf("%d runs spilled: the fixture does not test merging", len(f.runs))
	}
	apply(t, f, 21)
	m := f.db.Metrics()
	if m.Levels[0].TablesCount != 0 || m.ReadAmp() > 2 { // the bottom level and the memtable
		t.Fatalf("after the hydration L0 holds %d tables, read amplification %d", m.Levels[0].TablesCount, m.ReadAmp())
	}
	if got := foldtest.Dump(t, f, ""); !slices.Equal(got, want) {
		t.Fatalf("fold holds %d entries, want %d (or values differ)", len(got), len(want))
	}
}

// The runs kept and the buffers being spilled, which a merge reads, are at
// most maxRuns: a full buffer that would make more has the runs merged
// first.
func TestBulkRunsAreBounded(t *testing.T) {
	f, err := Open("fold", Options{FS: vfs.NewMem(), Bulk: true, BulkBytes: 500})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := &bulkModel{rng: rand.New(rand.NewPCG(3, 4)), keys: 300, want: map[string]string{}}
	most := 0
	for range 3 * maxRuns {
		if err := f.Apply(context.Background(), m.chunk(10), f.Cursor()); err != nil {
			t.Fatal(err)
		}
		most = max(most, len(f.runs)+len(f.sealed))
	}
	if most != maxRuns {
		t.Fatalf("at most %d runs were kept or spilling, want %d", most, maxRuns)
	}
	m.check(t, f)
}

// failingFS fails the creation of files whose names contain match, or
// with syncs set their fsyncs, while failing is set.
type failingFS struct {
	vfs.FS
	match   string
	syncs   bool
	failing atomic.Bool
}

func (fs *failingFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	if !fs.failing.Load() || !strings.Contains(name, fs.match) {
		return fs.FS.Create(name, c)
	}
	if !fs.syncs {
		return nil, errors.New("injected: cannot create " + name)
	}
	file, err := fs.FS.Create(name, c)
	return failingSync{file}, err
}

// failingSync is a file whose fsync fails.
type failingSync struct{ vfs.File }

func (failingSync) Sync() error     { return errors.New("injected: fsync failed") }
func (failingSync) SyncData() error { return errors.New("injected: fsync failed") }

// A run that cannot be spilled, or runs that cannot be merged (a table not
// created, or not fsynced, including one closed in the background while the
// merge writes the next), are kept: the error reaches the caller, and once
// the file system recovers every update is written, none twice.
func TestBulkRunFailuresKeepTheUpdates(t *testing.T) {
	for _, tc := range []struct {
		match     string
		syncs     bool
		pad       int // 4 kB values fill the first table (8 MiB), closed in the background
		bulkBytes int
	}{{"run", false, 0, 20_000}, {"part", false, 0, 20_000}, {"part", true, 0, 20_000}, {"part0-000000.sst", true, 4000, 2 << 20}} {
		t.Run(fmt.Sprintf("%s, syncs %v, values of %d bytes", tc.match, tc.syncs, tc.pad), func(t *testing.T) {
			fs := &failingFS{FS: vfs.NewMem(), match: tc.match, syncs: tc.syncs}
			f, err := Open("fold", Options{FS: fs, Bulk: true, BulkBytes: tc.bulkBytes})
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			m := &bulkModel{rng: rand.New(rand.NewPCG(5, 6)), keys: 8000, pad: tc.pad, want: map[string]string{}}
			for range 10 {
				if err := f.Apply(context.Background(), m.chunk(500), f.Cursor()); err != nil {
					t.Fatal(err)
				}
			}
			fs.failing.Store(true)
			var failed error
			for range 5 {
				if failed = f.Apply(context.Background(), m.chunk(500), f.Cursor()); failed != nil {
					break
				}
			}
			if failed == nil {
				failed = f.Apply(context.Background(), nil, kvcore.RevisionCursor(1))
			}
			if failed == nil || !strings.Contains(failed.Error(), "injected") {
				t.Fatalf("Apply with %q files failing: %v", tc.match, failed)
			}
			fs.failing.Store(false)
			apply(t, f, 2)
			m.check(t, f)
		})
	}
}

// Records larger than a reader's buffer are read whole, and a run cut
// short within a record is an error, not a shorter run.
func TestRunRecords(t *testing.T) {
	fs := vfs.NewMem()
	b := &bulk{}
	var us []kvcore.Update
	values := strings.Repeat(noise, 4)
	for i, size := range []int{10, runReadBuf, 3 * runReadBuf, 0, 7} {
		us = append(us, putU(fmt.Sprintf("k%d", i), values[:size], uint64(i+1)))
	}
	us = append(us, kvcore.Update{Op: kvcore.OpDelete, Key: "k9", Version: kvcore.RevisionVersion(9)})
	if err := b.add(us); err != nil {
		t.Fatal(err)
	}
	r, err := writeRun(fs, "run", b)
	if err != nil {
		t.Fatal(err)
	}
	read := func(size int64) (n int, err error) {
		file, err := fs.Open("run")
		if err != nil {
			t.Fatal(err)
		}
		defer file.Close()
		rr := &runReader{r: bufio.NewReaderSize(io.NewSectionReader(file, 0, size), runReadBuf), path: "run"}
		for {
			ok, err := rr.next()
			if !ok || err != nil {
				return n, err
			}
			key, value, del := rr.entry()
			u := us[n]
			if string(key[1:]) != u.Key || del != u.IsRemoval() || (!del && string(value) != string(stored(t, u))) {
				t.Fatalf("record %d: key %q (removal %v), %d value bytes; want the update of %q", n, key, del, len(value), u.Key)
			}
			n++
		}
	}
	if n, err := read(r.size); err != nil || n != len(us) {
		t.Fatalf("read %d records (%v), want %d", n, err, len(us))
	}
	for _, cut := range []int64{r.size - 1, r.size - 3*runReadBuf, 5} {
		if _, err := read(cut); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("a run cut to %d of %d bytes: %v, want %v", cut, r.size, err, io.ErrUnexpectedEOF)
		}
	}
}

// hookFS calls before on every file it creates, failing the creation when
// before fails.
type hookFS struct {
	vfs.FS
	before func(name string) error
}

func (fs *hookFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	if err := fs.before(name); err != nil {
		return nil, err
	}
	return fs.FS.Create(name, c)
}

// Spills run two at a time and may end in any order, or fail once in the
// background and succeed when retried: runs still take effect in the order
// their buffers filled, no Apply fails, and the checkpoint leaves no run
// behind.
func TestBulkSpillsEndInAnyOrder(t *testing.T) {
	var failed atomic.Bool
	second := make(chan struct{})
	fs := &hookFS{FS: vfs.NewMem(), before: func(name string) error {
		switch filepath.Base(name) {
		case "run000001": // the first spill ends after the second
			<-second
		case "run000002":
			close(second)
		case "run000004":
			if failed.CompareAndSwap(false, true) {
				return errors.New("injected: cannot create " + name)
			}
		}
		return nil
	}}
	f, err := Open("fold", Options{FS: fs, Bulk: true, BulkBytes: 20_000})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := &bulkModel{rng: rand.New(rand.NewPCG(7, 8)), keys: 300, want: map[string]string{}}
	for range 20 {
		if err := f.Apply(context.Background(), m.chunk(500), f.Cursor()); err != nil {
			t.Fatal(err)
		}
	}
	if !failed.Load() {
		t.Fatal("the fixture did not spill a fourth run")
	}
	apply(t, f, 1)
	m.check(t, f)
	if names, err := fs.List(fs.PathJoin("fold", ingestDir)); err != nil || len(names) != 0 {
		t.Fatalf("%s holds %v after the checkpoint (%v)", ingestDir, names, err)
	}
}

// Keys that share long prefixes, differ only after the 8 bytes compared as
// integers, hold NUL bytes or are prefixes of one another sort as bytes do
// through the buffer's sort, the spills and the merge of runs whose keys
// share different prefixes.
func TestBulkRunsMergeKeysOfAnyShape(t *testing.T) {
	prefixes := []string{"p/", "p/aaaaaaaa", "p/aaaaaaaab", "q", "p/aaaaaaaa\x00"}
	rng := rand.New(rand.NewPCG(12, 13))
	var pool []string
	for _, p := range prefixes {
		for range 400 {
			k := p
			for range rng.IntN(12) {
				k += []string{"\x00", "a", "b", "é"}[rng.IntN(4)]
			}
			pool = append(pool, k)
		}
	}
	f, err := Open("fold", Options{FS: vfs.NewMem(), Bulk: true, BulkBytes: 30_000})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := &bulkModel{rng: rand.New(rand.NewPCG(14, 15)), keys: 400, want: map[string]string{}}
	for round := range 3 {
		for i := range 60 {
			// Each chunk's keys share one of the prefixes.
			group := pool[(i%len(prefixes))*400:][:400]
			m.key = func(i int) string { return group[i] }
			if err := f.Apply(context.Background(), m.chunk(300), f.Cursor()); err != nil {
				t.Fatal(err)
			}
		}
		if len(f.runs) < 10 {
			t.Fatalf("round %d spilled %d runs: the fixture does not test merging", round, len(f.runs))
		}
		apply(t, f, uint64(round+1))
		m.check(t, f)
	}
}

// closeHookFS calls closing with the name of every file it opened as that
// file is closed.
type closeHookFS struct {
	vfs.FS
	closing func(name string)
}

func (fs *closeHookFS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	file, err := fs.FS.Open(name, opts...)
	if err != nil {
		return nil, err
	}
	return &closeHookFile{File: file, closing: func() { fs.closing(name) }}, nil
}

type closeHookFile struct {
	vfs.File
	closing func()
}

func (f *closeHookFile) Close() error {
	f.closing()
	return f.File.Close()
}

// The runs a merge read are closed by a goroutine, since closing a removed
// file trims its blocks on a file system mounted with discard (seconds at
// 10M keys): the Apply that merged them returns without waiting for it,
// and Close waits for it.
func TestBulkRunsReleasedInTheBackground(t *testing.T) {
	release := make(chan struct{})
	unblock := sync.OnceFunc(func() { close(release) })
	t.Cleanup(unblock) // lets the goroutines a failure leaves blocked end
	var closed atomic.Int32
	fs := &closeHookFS{FS: vfs.NewMem(), closing: func(name string) {
		if strings.HasPrefix(filepath.Base(name), "run") {
			<-release
			closed.Add(1)
		}
	}}
	f, err := Open("fold", Options{FS: fs, Bulk: true, BulkBytes: 20_000})
	if err != nil {
		t.Fatal(err)
	}
	m := &bulkModel{rng: rand.New(rand.NewPCG(9, 10)), keys: 300, want: map[string]string{}}
	for range 6 {
		if err := f.Apply(context.Background(), m.chunk(500), f.Cursor()); err != nil {
			t.Fatal(err)
		}
	}
	f.mu.Lock()
	runs := len(f.runs) + len(f.sealed)
	f.mu.Unlock()
	if runs < 2 {
		t.Fatalf("the fixture spilled %d runs, want several", runs)
	}
	applied := make(chan error, 1)
	go func() { applied <- f.Apply(context.Background(), nil, kvcore.RevisionCursor(1)) }()
	select {
	case err := <-applied:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the checkpoint waited for the merged runs to be closed")
	}
	m.check(t, f)
	closing := make(chan error, 1)
	go func() { closing <- f.Close() }()
	select {
	case err := <-closing:
		t.Fatalf("Close returned (%v) while the merged runs were still being closed", err)
	case <-time.After(100 * time.Millisecond):
	}
	unblock()
	if err := <-closing; err != nil {
		t.Fatal(err)
	}
	if got := closed.Load(); got != int32(runs) {
		t.Fatalf("Close returned with %d of %d runs closed", got, runs)
	}
}
