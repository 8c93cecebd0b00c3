package snapshot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/snapshot/internal/foldtest"
)

// windowFold is a Log and the fold it should hold.
type windowFold struct {
	l    *Log
	want map[string]string
	rev  uint64
}

// grow applies batches of 100 new keys, each moving the cursor (values of
// several lengths, a delete of an earlier key in each), until the fold
// references entries through a window and holds at least n keys.
func (w *windowFold) grow(t *testing.T, n int) {
	t.Helper()
	for len(w.want) < n || len(w.l.mapped) == 0 {
		if len(w.want) > 200_000 {
			t.Fatal("no window after 200,000 keys")
		}
		batch := make([]kvcore.Update, 0, 101)
		for range 100 {
			w.rev++
			k, v := fmt.Sprintf("key-%08d", w.rev), strings.Repeat("v", int(w.rev%40))
			batch = append(batch, put(k, v, w.rev))
			w.want[k] = v
		}
		w.rev++
		gone := fmt.Sprintf("key-%08d", w.rev-10_000) // most likely in base
		batch = append(batch, del(gone, w.rev))
		delete(w.want, gone)
		apply(t, w.l, cur(w.rev), batch...)
	}
}

// change applies batches of 50 updates (too few for Apply to index them
// beside their fsync) that give keys whose entries are in a window new
// values of the same length, moving the cursor. Once a merge finds that
// they change keys rather than add them, the fold is no longer growing and
// writes such puts over their entries where those are in memory.
func (w *windowFold) change(t *testing.T, keys int) {
	t.Helper()
	var batch []kvcore.Update
	for _, k := range slices.Sorted(maps.Keys(w.want)) {
		if r, _ := w.l.idx.lookup(k); w.l.idx.ar.writable(r) {
			continue
		}
		w.rev++
		v := strings.Repeat("c", len(w.want[k]))
		batch = append(batch, put(k, v, w.rev))
		w.want[k] = v
		if keys--; len(batch) == 50 || keys == 0 {
			apply(t, w.l, cur(w.rev), batch...)
			batch = batch[:0]
		}
		if keys == 0 {
			return
		}
	}
	t.Fatalf("%d keys short of entries in windows", keys)
}

// check compares the fold with want through Get and Range.
func (w *windowFold) check(t *testing.T, l *Log) {
	t.Helper()
	var exp []string
	for _, k := range slices.Sorted(maps.Keys(w.want)) {
		exp = append(exp, k+"="+w.want[k])
	}
	if got := foldtest.Dump(t, l, ""); !slices.Equal(got, exp) {
		t.Fatalf("Range holds %d entries, want %d (first difference at %d)", len(got), len(exp), firstDiff(got, exp))
	}
	for k, v := range w.want {
		e, err := l.Get(k)
		if err != nil || string(e.Value) != v {
			t.Fatalf("Get(%q) = %q, %v; want %q", k, e.Value, err, v)
		}
	}
	if n := l.Len(); n != len(w.want) {
		t.Fatalf("Len = %d, want %d", n, len(w.want))
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func newWindowFold(t *testing.T, p string) *windowFold {
	return &windowFold{l: openLog(t, p, Options{CompactThreshold: 1 << 40}), want: map[string]string{}}
}

// A growing fold's large batches are referenced in the log, not copied:
// the fold reads them back right, through compaction and reopening, and a
// later change of such an entry (same length, the fold no longer growing)
// is not written over it in the read-only mapping, which would fault.
func TestGrowingFoldReadsBatchesFromTheLog(t *testing.T) {
	p := newPath(t)
	w := newWindowFold(t, p)
	w.grow(t, 20_000)
	inWindow := 0
	for _, r := range w.l.idx.base {
		if !w.l.idx.ar.writable(r) {
			inWindow++
		}
	}
	if inWindow == 0 {
		t.Fatal("no entry of base is in a window")
	}
	w.check(t, w.l)
	w.change(t, 6_000)
	if w.l.idx.growing {
		t.Fatal("the fold still grows after changing keys")
	}
	w.check(t, w.l)
	if err := w.l.Compact(); err != nil {
		t.Fatal(err)
	}
	if len(w.l.mapped) != 0 || len(w.l.retired) != 0 || w.l.win != nil || w.l.idx.ar.windows != nil {
		t.Fatalf("after a compaction: %d windows mapped, %d retired, current %v, arena windows %v; want none",
			len(w.l.mapped), len(w.l.retired), w.l.win, w.l.idx.ar.windows)
	}
	w.check(t, w.l)
	w.grow(t, len(w.want)+20_000) // on the compacted file
	w.check(t, w.l)
	if err := w.l.Close(); err != nil {
		t.Fatal(err)
	}
	if w.l.Len() != 0 || len(w.l.mapped) != 0 || len(w.l.retired) != 0 {
		t.Fatalf("after Close: Len %d, %d windows mapped, %d retired", w.l.Len(), len(w.l.mapped), len(w.l.retired))
	}
	w.check(t, openLog(t, p, Options{}))
}

// A background compaction that ends while an export reads a snapshot of
// the arena leaves the windows mapped until the export ends, which unmaps
// them.
func TestWindowsOutliveExports(t *testing.T) {
	p := newPath(t)
	w := newWindowFold(t, p)
	w.grow(t, 10_000)
	real := osFS()
	compacting, exporting := make(chan struct{}), make(chan struct{})
	w.l.fs.createTemp = func(dir, pattern string) (*os.File, error) {
		if dir == filepath.Dir(p) {
			<-compacting // the compaction's image
		} else {
			<-exporting // the export's payload, once its snapshot is taken
		}
		return real.createTemp(dir, pattern)
	}
	w.l.mu.Lock()
	w.l.startCompaction()
	job := w.l.job
	w.l.mu.Unlock()
	exported := make(chan error, 1)
	go func() {
		_, err := w.l.Export(context.Background(), filepath.Join(t.TempDir(), "artifact"))
		exported <- err
	}()
	for {
		w.l.mu.Lock()
		exports := w.l.exports
		w.l.mu.Unlock()
		if exports > 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	mapped, win, old := len(w.l.mapped), *w.l.win, readFile(t, p)
	close(compacting)
	<-job.done
	if job.err != nil {
		t.Fatal(job.err)
	}
	w.l.mu.Lock()
	retired := len(w.l.retired)
	w.l.mu.Unlock()
	if retired != mapped {
		t.Fatalf("%d windows retired, want %d", retired, mapped)
	}
	// Reading an unmapped window would fault.
	if !bytes.Equal(win.data[:int64(len(old))-win.off], old[win.off:]) {
		t.Fatal("a retired window no longer reads the replaced log")
	}
	close(exporting)
	if err := <-exported; err != nil {
		t.Fatal(err)
	}
	if len(w.l.retired) != 0 {
		t.Fatalf("%d windows still retired after the export", len(w.l.retired))
	}
	w.check(t, w.l)
}

// Batches fill window after window; one larger than a window is copied.
func TestBatchesSpanWindows(t *testing.T) {
	defer func(size int64) { windowSize = size }(windowSize)
	windowSize = 64 << 10
	w := newWindowFold(t, newPath(t))
	w.grow(t, 10_000)
	if len(w.l.mapped) < 2 {
		t.Fatalf("%d windows for %d bytes of log", len(w.l.mapped), w.l.size)
	}
	big := make([]kvcore.Update, 100)
	for i := range big {
		w.rev++
		k, v := fmt.Sprintf("big-%03d", i), strings.Repeat("b", 1<<10)
		big[i] = put(k, v, w.rev)
		w.want[k] = v
	}
	apply(t, w.l, cur(w.rev), big...)
	if r, _ := w.l.idx.lookup("big-000"); !w.l.idx.ar.writable(r) {
		t.Fatal("a batch larger than a window was staged in one")
	}
	w.grow(t, len(w.want)+1_000)
	w.check(t, w.l)
}

// A mapping that does not read what was written (a filesystem where writes
// and shared mappings are not coherent; here, a write that changed the
// bytes on their way) makes the log copy its entries from then on.
func TestIncoherentMappingCopies(t *testing.T) {
	w := newWindowFold(t, newPath(t))
	w.grow(t, 10_000)
	real := osFS()
	w.l.fs.writeAt = func(f *os.File, b []byte, off int64) (int, error) {
		changed := slices.Clone(b)
		changed[len(changed)-1]++
		return real.writeAt(f, changed, off)
	}
	batch := make([]kvcore.Update, 100)
	for i := range batch {
		w.rev++
		k := fmt.Sprintf("new-%03d", i)
		batch[i] = put(k, "value", w.rev)
		w.want[k] = "value"
	}
	apply(t, w.l, cur(w.rev), batch...)
	if w.l.mapErr == nil {
		t.Fatal("the mapping was used although it read other bytes")
	}
	if r, _ := w.l.idx.lookup("new-000"); !w.l.idx.ar.writable(r) {
		t.Fatal("the batch was staged in a window")
	}
	w.l.fs = real
	w.check(t, w.l)
}

// A large batch of a growing fold that fails leaves nothing visible: a
// failed write (truncated back) or a failed fsync (the log is poisoned).
func TestWindowedBatchFailures(t *testing.T) {
	for _, step := range []string{"write", "fsync"} {
		t.Run(step, func(t *testing.T) {
			w := newWindowFold(t, newPath(t))
			w.grow(t, 10_000)
			real := osFS()
			inject := errors.New("injected")
			switch step {
			case "write":
				w.l.fs.writeAt = func(f *os.File, b []byte, off int64) (int, error) {
					n, _ := real.writeAt(f, b[:len(b)/2], off)
					return n, inject
				}
			case "fsync":
				w.l.fs.sync = func(*os.File) error { return inject }
			}
			batch := make([]kvcore.Update, 100)
			for i := range batch {
				batch[i] = put(fmt.Sprintf("new-%03d", i), "value", w.rev+uint64(i)+1)
			}
			if err := w.l.Apply(context.Background(), batch, cur(w.rev+100)); !errors.Is(err, inject) {
				t.Fatalf("Apply = %v, want the injected failure", err)
			}
			w.check(t, w.l)
			if step == "write" {
				w.l.fs = real
				w.grow(t, len(w.want)+1_000)
				w.check(t, w.l)
			}
		})
	}
}

// A log that cannot be mapped copies its entries instead.
func TestUnmappableLogCopies(t *testing.T) {
	w := newWindowFold(t, newPath(t))
	w.l.mapErr = errors.ErrUnsupported
	for len(w.want) < 20_000 {
		w.rev++
		batch := make([]kvcore.Update, 100)
		for i := range batch {
			k := fmt.Sprintf("key-%08d", w.rev*100+uint64(i))
			batch[i] = put(k, "value", w.rev)
			w.want[k] = "value"
		}
		apply(t, w.l, cur(w.rev), batch...)
	}
	if len(w.l.mapped) != 0 || w.l.idx.ar.windows != nil {
		t.Fatal("an unmappable log has windows")
	}
	w.check(t, w.l)
}

// A windowed batch is set in mem by the next Apply or by whatever reads the
// fold first (see indexTail): every reader sees it, and a later change of
// one of its keys wins over it.
func TestTailIsSetBeforeItIsRead(t *testing.T) {
	reads := map[string]func(t *testing.T, w *windowFold, last string){
		"Get": func(t *testing.T, w *windowFold, last string) {
			if e, err := w.l.Get(last); err != nil || string(e.Value) != w.want[last] {
				t.Fatalf("Get(%q) = %q, %v; want %q", last, e.Value, err, w.want[last])
			}
		},
		"Range": func(t *testing.T, w *windowFold, last string) {
			if got := foldtest.Dump(t, w.l, last); len(got) != 1 || got[0] != last+"="+w.want[last] {
				t.Fatalf("Range(%q) = %q", last, got)
			}
			// Once a Range brought mem's sorted keys up to date, the tail
			// is the only change left to see.
			w.grow(t, len(w.want)+1)
			if len(w.l.idx.tail) == 0 || w.l.idx.memKeysStale() {
				t.Fatalf("after a Range and a batch: tail of %d, mem's keys stale %v", len(w.l.idx.tail), w.l.idx.memKeysStale())
			}
			w.check(t, w.l)
		},
		"Len": func(t *testing.T, w *windowFold, last string) {
			if n := w.l.Len(); n != len(w.want) {
				t.Fatalf("Len = %d, want %d", n, len(w.want))
			}
		},
		"Stats": func(t *testing.T, w *windowFold, last string) {
			if n := w.l.Stats().Keys; n != len(w.want) {
				t.Fatalf("Stats().Keys = %d, want %d", n, len(w.want))
			}
		},
		"Compact": func(t *testing.T, w *windowFold, last string) {
			if err := w.l.Compact(); err != nil {
				t.Fatal(err)
			}
			w.check(t, w.l)
		},
		"Export": func(t *testing.T, w *windowFold, last string) {
			dir := filepath.Join(t.TempDir(), "artifact")
			if _, err := w.l.Export(context.Background(), dir); err != nil {
				t.Fatal(err)
			}
			imported, err := Import(dir, filepath.Join(t.TempDir(), "imported.snap"), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer imported.Close()
			w.check(t, imported)
		},
		"Apply": func(t *testing.T, w *windowFold, last string) {
			w.rev++
			w.want[last] = "changed"
			apply(t, w.l, cur(w.rev), put(last, "changed", w.rev))
			w.check(t, w.l)
		},
	}
	for name, read := range reads {
		for _, under := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/under=%v", name, under), func(t *testing.T) {
				w := newWindowFold(t, newPath(t))
				w.grow(t, 10_000)
				last := fmt.Sprintf("key-%08d", w.rev-1) // the last put
				if under {
					last = w.growUnder(t)
					if !w.l.tailPendingLocked() {
						t.Fatal("no batch in the tail with its fsync running")
					}
				}
				if len(w.l.idx.tail) == 0 {
					t.Fatal("the last batch was set in mem at once")
				}
				read(t, w, last)
				if len(w.l.idx.tail) != 0 {
					t.Fatalf("%d entries still in the tail", len(w.l.idx.tail))
				}
			})
		}
	}
}

// growUnder applies a batch of 100 new keys of 1 KiB values under the
// unchanged cursor, more than Apply leaves unsynced (its fsync runs in the
// background), and returns its last key.
func (w *windowFold) growUnder(t *testing.T) string {
	t.Helper()
	batch := w.underBatch()
	apply(t, w.l, w.l.Cursor(), batch...)
	return batch[len(batch)-1].Key
}

// underBatch is growUnder's batch.
func (w *windowFold) underBatch() []kvcore.Update {
	batch := make([]kvcore.Update, 100)
	for i := range batch {
		w.rev++
		k, v := fmt.Sprintf("key-%08d", w.rev), strings.Repeat("u", 1<<10)
		batch[i] = put(k, v, w.rev)
		w.want[k] = v
	}
	return batch
}

// A windowed batch under an unchanged cursor returns before its fsync, as
// a copied one does, even when the log's garbage is due to be checked
// (which would set the batch in mem, waiting for the fsync): the caller
// fetches its next chunk meanwhile.
func TestWindowedBatchUnderCursorReturnsBeforeItsFsync(t *testing.T) {
	w := newWindowFold(t, newPath(t))
	w.grow(t, 10_000)
	release := make(chan struct{})
	real := osFS()
	w.l.fs.sync = func(f *os.File) error {
		<-release
		return real.sync(f)
	}
	w.l.due, w.l.recheck = 0, 0 // the garbage check is due
	returnsBeforeFsync(t, w.l, w.underBatch(), release)
	if !w.l.tailPendingLocked() {
		t.Fatal("the batch is not in the tail")
	}
	close(release)
	w.check(t, w.l)
}

// A batch folded under an unchanged cursor whose background fsync fails is
// dropped from the fold, which it was staged in a window of, and the log
// is poisoned: the fold holds what is durable, whatever reads it first.
func TestFailedBackgroundFsyncDropsTheBatch(t *testing.T) {
	first := map[string]func(t *testing.T, l *Log, last string){
		"Get": func(t *testing.T, l *Log, last string) { l.Get(last) },
		"Range": func(t *testing.T, l *Log, last string) {
			l.Range(context.Background(), "", "", func(kvcore.Entry) error { return nil })
		},
		"Len":     func(t *testing.T, l *Log, last string) { l.Len() },
		"Stats":   func(t *testing.T, l *Log, last string) { l.Stats() },
		"Compact": func(t *testing.T, l *Log, last string) { l.Compact() },
		"Export": func(t *testing.T, l *Log, last string) {
			l.Export(context.Background(), filepath.Join(t.TempDir(), "artifact"))
		},
	}
	for name, read := range first {
		t.Run(name, func(t *testing.T) {
			w := newWindowFold(t, newPath(t))
			w.grow(t, 10_000)
			inject := errors.New("injected")
			w.l.fs.sync = func(*os.File) error { return inject }
			before := maps.Clone(w.want)
			last := w.growUnder(t) // returns before its fsync
			w.want = before
			read(t, w.l, last)
			if _, err := w.l.Get(last); !errors.Is(err, kvcore.ErrNotFound) {
				t.Fatalf("Get(%q) of a batch whose fsync failed = %v, want not found", last, err)
			}
			w.check(t, w.l)
			if err := w.l.Apply(context.Background(), nil, cur(w.rev)); !errors.Is(err, ErrPoisoned) || !errors.Is(err, inject) {
				t.Fatalf("Apply after a failed fsync = %v, want the log poisoned by it", err)
			}
		})
	}
}
