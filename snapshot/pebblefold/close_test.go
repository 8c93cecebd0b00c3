package pebblefold

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/snapshot"
)

// closing reports whether Close has begun on f.
func closing(f *Fold) bool {
	f.life.Lock()
	defer f.life.Unlock()
	return f.closed
}

// A Get, Range or Apply made inside a Range callback while Close waits for
// that Range fails with ErrClosed instead of waiting: with a read-write
// mutex the nested read lock queued behind Close's write lock, which waited
// for the outer Range, and all three deadlocked.
func TestNestedUseDuringCloseDoesNotDeadlock(t *testing.T) {
	f, err := Open(filepath.Join(t.TempDir(), "fold"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	apply(t, f, 1, putU("a", "1", 1), putU("b", "2", 1))
	inCallback, closeStarted := make(chan struct{}), make(chan struct{})
	var nested []error
	ranged := make(chan error, 1)
	go func() {
		ranged <- f.Range(context.Background(), "", "", func(e kvcore.Entry) error {
			if e.Key == "a" {
				close(inCallback)
				<-closeStarted
				_, gerr := f.Get("b")
				rerr := f.Range(context.Background(), "", "", func(kvcore.Entry) error { return nil })
				aerr := f.Apply(context.Background(), nil, kvcore.RevisionCursor(2))
				nested = append(nested, gerr, rerr, aerr)
			}
			return nil
		})
	}()
	<-inCallback
	closed := make(chan error, 1)
	go func() { closed <- f.Close() }()
	for !closing(f) {
		time.Sleep(time.Millisecond)
	}
	close(closeStarted)
	// Waiting here only turns a deadlock into a failure instead of a hung test.
	for name, ch := range map[string]chan error{"Range": ranged, "Close": closed} {
		select {
		case err := <-ch:
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		case <-time.After(time.Minute):
			t.Fatalf("%s deadlocked: the callback's nested call waits for Close, Close for the Range", name)
		}
	}
	for i, err := range nested {
		if !errors.Is(err, snapshot.ErrClosed) {
			t.Fatalf("nested call %d during Close: %v, want ErrClosed", i, err)
		}
	}
	if _, err := f.Get("a"); !errors.Is(err, snapshot.ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// Close flushes a memtable whose log holds more than flushOnCloseBytes, so
// that the next Open does not replay it; a small one stays in the log.
func TestCloseFlushesALargeMemtable(t *testing.T) {
	for _, n := range []int{10, 2 * flushOnCloseBytes / 1024} {
		dir := filepath.Join(t.TempDir(), "fold")
		f, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		batch := make([]kvcore.Update, 0, n)
		for i := range n {
			batch = append(batch, putU(fmt.Sprintf("k%07d", i), strings.Repeat("v", 1000), uint64(i+1)))
		}
		apply(t, f, uint64(n), batch...)
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		ro, err := open(dir, Options{}, true)
		if err != nil {
			t.Fatal(err)
		}
		tables := int64(0) // a read-only open replays the log into memtables, flushing nothing
		for _, l := range ro.db.Metrics().Levels {
			tables += l.TablesCount
		}
		ro.Close()
		if large := n*1000 > flushOnCloseBytes; large != (tables > 0) {
			t.Fatalf("%d entries of 1000 bytes: %d tables after Close (want them flushed: %v)", n, tables, large)
		}
	}
}
