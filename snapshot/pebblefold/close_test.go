package pebblefold

import (
	"context"
	"errors"
	"path/filepath"
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
