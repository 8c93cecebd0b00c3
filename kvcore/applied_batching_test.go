package kvcore_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/kvcore/memkv"
)

// batchingRun runs WatchApplied on a memkv bucket in a synctest bubble, from
// an empty bucket, and records when each incremental batch was applied.
// gate, when set, holds every incremental apply until it is closed.
type batchingRun struct {
	store   kvcore.Store
	mu      sync.Mutex
	batches []int
	at      []time.Duration
	start   time.Time
}

func startBatching(t *testing.T, cfg kvcore.AppliedConfig, gate <-chan struct{}) *batchingRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	conn := memkv.New()
	store, err := conn.Store(ctx, kvcore.StoreConfig{Bucket: "b"})
	if err != nil {
		t.Fatal(err)
	}
	r := &batchingRun{store: store, start: time.Now()}
	f := newMemFold()
	cfg.Scope = kvcore.AllKeys()
	cfg.Logger = slog.New(slog.DiscardHandler)
	go kvcore.WatchApplied(ctx, store, f, cfg, func(_ context.Context, b kvcore.Batch) error {
		if b.Full {
			return nil
		}
		if gate != nil {
			<-gate
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.batches = append(r.batches, len(b.Updates))
		r.at = append(r.at, time.Since(r.start))
		return nil
	})
	synctest.Wait() // the initial sync of the empty bucket
	return r
}

func (r *batchingRun) put(t *testing.T, n int) {
	t.Helper()
	for i := range n {
		if _, err := r.store.Put(context.Background(), fmt.Sprintf("k%04d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
}

func (r *batchingRun) seen() ([]int, []time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.batches...), append([]time.Duration(nil), r.at...)
}

func TestNoWindowAppliesAnIdleWatchsChangeAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startBatching(t, kvcore.AppliedConfig{Window: kvcore.NoWindow, MaxBatch: 1000}, nil)
		r.put(t, 1)
		synctest.Wait()
		batches, at := r.seen()
		if len(batches) != 1 || at[0] != 0 {
			t.Fatalf("batches %v at %v, want one batch applied with no time passing", batches, at)
		}
	})
}

func TestChangesArrivingDuringApplyFormTheNextBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		r := startBatching(t, kvcore.AppliedConfig{Window: kvcore.NoWindow, MaxBatch: 1000}, gate)
		r.put(t, 1) // the first batch, held in apply by the gate
		synctest.Wait()
		r.put(t, 200) // arrive while it is applied
		synctest.Wait()
		close(gate)
		synctest.Wait()
		if batches, _ := r.seen(); len(batches) != 2 || batches[1] != 200 {
			t.Fatalf("batches %v, want [1 200]", batches)
		}
	})
}

// A window far shorter than an apply has always fired by the time the loop
// looks again; the backlog queued meanwhile must still go as one batch.
func TestTinyWindowDoesNotSplitABacklog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		r := startBatching(t, kvcore.AppliedConfig{Window: time.Nanosecond, MaxBatch: 1000}, gate)
		r.put(t, 1)
		time.Sleep(time.Millisecond) // the window closes the first batch
		synctest.Wait()
		r.put(t, 200) // queued while the first batch waits at the gate
		synctest.Wait()
		close(gate)
		time.Sleep(time.Second)
		if batches, _ := r.seen(); len(batches) != 2 || batches[1] != 200 {
			t.Fatalf("batches %v, want [1 200]", batches)
		}
	})
}

func TestQuietWaitsForQuiescenceUpToMax(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startBatching(t, kvcore.AppliedConfig{Quiet: kvcore.Quiescence{Min: time.Second, Max: 3 * time.Second}, MaxBatch: 1000}, nil)
		// Changes 500ms apart keep the batch open until Max.
		for range 10 {
			r.put(t, 1)
			time.Sleep(500 * time.Millisecond)
		}
		synctest.Wait()
		time.Sleep(5 * time.Second)
		batches, at := r.seen()
		if len(batches) < 2 || at[0] != 3*time.Second {
			t.Fatalf("batches %v at %v, want the first closed by Max at 3s", batches, at)
		}
		// A lone change waits Min.
		before := time.Since(r.start)
		r.put(t, 1)
		time.Sleep(2 * time.Second)
		batches, at = r.seen()
		if got := at[len(at)-1] - before; got != time.Second {
			t.Fatalf("a lone change was applied after %v, want Min (1s); batches %v", got, batches)
		}
	})
}

// readAhead runs WatchApplied with a ChannelCapacity of 10 over the
// scripted watch of wrap(w), whose session feeds live, holds the first
// apply, and returns how many updates the watch took meanwhile.
func readAhead(t *testing.T, wrap func(*scriptWatcher) kvcore.Source) int {
	t.Helper()
	live := make(chan kvcore.Event)
	f := newMemFold()
	f.cursor = kvcore.RevisionCursor(1)
	w := wrap(&scriptWatcher{sessions: []session{{events: []kvcore.Event{synced}, live: live}}})
	gate := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer close(gate)
	go kvcore.WatchApplied(ctx, w, f, kvcore.AppliedConfig{Scope: kvcore.AllKeys(), Window: kvcore.NoWindow, ChannelCapacity: 10, Logger: slog.New(slog.DiscardHandler)},
		func(context.Context, kvcore.Batch) error { <-gate; return nil })
	synctest.Wait()
	sent := 0
	for rev := uint64(2); rev < 40; rev++ {
		select {
		case live <- put("k", "v", rev):
			sent++
			synctest.Wait()
		default:
		}
	}
	return sent
}

// With a channel capacity, the watch is read ahead while apply runs: an
// unbuffered scripted watch delivers ChannelCapacity updates beyond the one
// being applied before apply returns.
func TestChannelCapacityReadsAheadWhileApplying(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// One update is being applied, ten wait in the buffer, one is in
		// the relay's hand and one in the scripted watch's.
		if sent := readAhead(t, func(w *scriptWatcher) kvcore.Source { return w }); sent != 13 {
			t.Errorf("the watch delivered %d updates while apply was blocked, want 13", sent)
		}
	})
}

// A source that buffers events itself (kvcore.BufferedWatcher) is asked for
// ChannelCapacity of them, and the loop reads its watch with no relay in
// between: a change reaches the loop with one goroutine hand-off less.
func TestChannelCapacityOfABufferedWatcherIsTheWatchs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// One update is being applied, ten wait in the watch's buffer and
		// one is in the scripted watch's hand; a relay would hold eleven
		// more.
		if sent := readAhead(t, func(w *scriptWatcher) kvcore.Source { return bufferedScriptWatcher{w} }); sent != 12 {
			t.Errorf("the watch delivered %d updates while apply was blocked, want 12", sent)
		}
	})
}

// A resumed watch's backlog is applied as one batch even when its records
// trickle in: until the Synced event, an update that finds the loop idle
// does not close a batch at once.
func TestBacklogIsOneBatchEvenWhenItTrickles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		live := make(chan kvcore.Event)
		f := newMemFold()
		f.cursor = kvcore.RevisionCursor(1)
		w := &scriptWatcher{sessions: []session{{live: live}}}
		var mu sync.Mutex
		var batches [][]string
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go kvcore.WatchApplied(ctx, w, f, kvcore.AppliedConfig{Scope: kvcore.AllKeys(), Window: kvcore.NoWindow, MaxBatch: 100, Logger: slog.New(slog.DiscardHandler)},
			func(_ context.Context, b kvcore.Batch) error {
				var keys []string
				for _, u := range b.Updates {
					keys = append(keys, u.Key)
				}
				mu.Lock()
				batches = append(batches, keys)
				mu.Unlock()
				return nil
			})
		for _, ev := range []kvcore.Event{put("a", "1", 2), put("b", "2", 3), synced, put("c", "3", 4)} {
			live <- ev
			synctest.Wait()
		}
		mu.Lock()
		defer mu.Unlock()
		if got := fmt.Sprint(batches); got != "[[a b] [c]]" {
			t.Errorf("batches %s, want the backlog in one batch, then the live update at once: [[a b] [c]]", got)
		}
	})
}

// A backlog whose Synced event is late (a caught-up check that failed waits
// for the next heartbeat) is applied after backlogLinger, not then.
func TestBacklogWithoutSyncedIsAppliedAfterALinger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		live, applied := backlogLoop(t, 100)
		start := time.Now()
		live <- put("a", "1", 2)
		live <- put("b", "2", 3)
		n := <-applied
		if waited := time.Since(start); n != 2 || waited != 50*time.Millisecond {
			t.Errorf("a batch of %d updates after %v, want the 2 after 50ms", n, waited)
		}
	})
}

// A backlog whose records come slower than MaxBatch per linger, with no
// gap as long as the linger (a loaded host), is still one batch; one
// that keeps coming is applied backlogLingerMax after its first record.
func TestBacklogThatTricklesSlowlyIsOneBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		live, applied := backlogLoop(t, 1000)
		rev := uint64(2)
		send := func(n int) {
			for range n {
				live <- put(fmt.Sprintf("k%d", rev), "v", rev)
				rev++
				time.Sleep(30 * time.Millisecond)
			}
		}
		send(10) // 300 ms, a record every 30 ms
		synctest.Wait()
		if n := <-applied; n != 10 {
			t.Fatalf("a backlog of 10 records 30 ms apart was applied as a batch of %d, want 10", n)
		}
		start := time.Now()
		send(40) // 1.2 s
		synctest.Wait()
		if n := <-applied; n != 34 || time.Since(start) < time.Second {
			t.Fatalf("a backlog that kept coming was applied as a batch of %d, want the 34 of its first second", n)
		}
	})
}

// backlogLoop runs WatchApplied, with no batch window and maxBatch, over a
// resumed watch whose records the test sends on live, until the test
// ends; applied receives the size of each batch.
func backlogLoop(t *testing.T, maxBatch int) (live chan<- kvcore.Event, applied <-chan int) {
	events := make(chan kvcore.Event)
	sizes := make(chan int, 10)
	f := newMemFold()
	f.cursor = kvcore.RevisionCursor(1)
	w := &scriptWatcher{sessions: []session{{live: events}}}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go kvcore.WatchApplied(ctx, w, f, kvcore.AppliedConfig{Scope: kvcore.AllKeys(), Window: kvcore.NoWindow, MaxBatch: maxBatch, Logger: slog.New(slog.DiscardHandler)},
		func(_ context.Context, b kvcore.Batch) error { sizes <- len(b.Updates); return nil })
	return events, sizes
}

// A batch that takes long (a hook waiting out its min_interval) leaves the
// loop behind by the updates that came meanwhile: the report of that batch
// says so (Progress.Pending), however caught up the batch itself was, so
// that a caller does not take the loop for current between that batch and
// the next.
func TestProgressCountsTheUpdatesThatCameDuringABatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		pending := map[uint64][]uint64{} // reports by cursor revision
		cfg := kvcore.AppliedConfig{Window: kvcore.NoWindow, MaxBatch: 1000, OnProgress: func(p kvcore.Progress) {
			mu.Lock()
			defer mu.Unlock()
			rev, _ := p.Cursor.Revision()
			pending[rev] = append(pending[rev], p.Pending)
		}}
		gate := make(chan struct{})
		r := startBatching(t, cfg, gate)
		r.put(t, 1) // the first batch, held in apply by the gate
		synctest.Wait()
		for i := range 5 { // arrive while it is applied
			if _, err := r.store.Put(context.Background(), fmt.Sprintf("late%d", i), []byte("v")); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		close(gate)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if got := pending[1]; len(got) == 0 || got[0] < 5 {
			t.Fatalf("reports at revision 1 had Pending %v, want the first at least 5 (the updates that came during its batch)", got)
		}
		if got := pending[6]; len(got) == 0 || got[len(got)-1] != 0 {
			t.Fatalf("reports at revision 6 had Pending %v, want the last 0 (caught up)", got)
		}
	})
}
