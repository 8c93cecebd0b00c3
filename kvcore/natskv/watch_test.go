package natskv

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/kvcore"
)

const eventWait = 10 * time.Second

// Port of watch_prefixes_unions_on_a_single_consumer (§11.I 147).
func TestWatchUsesOneConsumer(t *testing.T) {
	srv := natstest.Run(t)
	c := connect(t, fastOpts(srv.URL()))
	_, js := rawJS(t, srv.URL())
	s := openStore(t, c, kvcore.StoreConfig{})
	for _, scope := range []kvcore.Scope{kvcore.Prefixes("vpcA.", "vpcB.", "node", "a.b"), kvcore.AllKeys()} {
		w, err := s.Watch(testCtx(t), scope, kvcore.Cursor{})
		if err != nil {
			t.Fatal(err)
		}
		if n := consumerCount(t, js, s.bucket); n != 1 {
			t.Fatalf("watch of %v uses %d consumers", scope, n)
		}
		w.Stop()
		waitFor(t, eventWait, "consumer deleted after Stop", func() bool { return consumerCount(t, js, s.bucket) == 0 })
	}
}

// Port of nats_silently_clamps_resume_below_first_seq and
// watch_from_compacted_cursor_does_not_spuriously_fail (§11.J 174, §11.I 152).
func TestSilentClampIsCaught(t *testing.T) {
	srv := natstest.Run(t)
	c := connect(t, fastOpts(srv.URL()))
	_, js := rawJS(t, srv.URL())
	s := openStore(t, c, kvcore.StoreConfig{Bucket: "routes"})
	for i := range 4 {
		mustPut(t, s, "route.a", fmt.Sprint(i))
		mustPut(t, s, "route.b", fmt.Sprint(i))
	}
	ctx := testCtx(t)
	st, err := js.Stream(ctx, "KV_routes")
	if err != nil {
		t.Fatal(err)
	}
	if first := st.CachedInfo().State.FirstSeq; first != 7 {
		t.Fatalf("first sequence = %d, want 7", first)
	}
	// The server's behaviour this package guards against: no error, and
	// delivery starts at the first retained record.
	kv, err := js.KeyValue(ctx, "routes")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := kv.WatchAll(ctx, jetstream.ResumeFromRevision(3))
	if err != nil {
		t.Fatalf("nats.go watch from a compacted revision failed: %v (the server no longer clamps?)", err)
	}
	defer raw.Stop()
	select {
	case e := <-raw.Updates():
		if e == nil || e.Revision() < 7 {
			t.Fatalf("nats.go watch delivered %v first", e)
		}
	case <-time.After(eventWait):
		t.Fatal("nats.go watch delivered nothing")
	}

	for _, cursor := range []uint64{1, 2, 5} {
		_, err = s.Watch(ctx, kvcore.AllKeys(), kvcore.RevisionCursor(cursor))
		wantErr(t, fmt.Sprintf("watch from revision %d", cursor), err, kvcore.ErrCursorExpired)
		_, err = s.Watch(ctx, kvcore.Prefixes("route."), kvcore.RevisionCursor(cursor))
		wantErr(t, fmt.Sprintf("prefix watch from revision %d", cursor), err, kvcore.ErrCursorExpired)
	}
	w, err := s.Watch(ctx, kvcore.AllKeys(), kvcore.RevisionCursor(6))
	if err != nil {
		t.Fatalf("watch from the last revision before the window: %v", err)
	}
	defer w.Stop()
	if ev := next(t, w, eventWait); rev(ev.Version) != 7 {
		t.Fatalf("first event %+v, want revision 7", ev)
	}
}

// The window is checked again once the consumer exists: retention can move
// between the first check and the consumer's creation.
func TestResumeWindowRecheckedAfterCreate(t *testing.T) {
	srv := natstest.Run(t)
	c := connect(t, fastOpts(srv.URL()))
	_, js := rawJS(t, srv.URL())
	s := openStore(t, c, kvcore.StoreConfig{})
	cursor := mustPut(t, s, "a", "1")
	mustPut(t, s, "b", "2")
	last := mustPut(t, s, "c", "3")
	s.tuneWatch = func(w *watch) {
		w.afterCreate = func() { purgeBelow(t, js, s.bucket, last) }
	}
	_, err := s.Watch(testCtx(t), kvcore.Prefixes("a", "b", "c"), kvcore.RevisionCursor(cursor))
	wantErr(t, "watch whose window closed during setup", err, kvcore.ErrCursorExpired)
}

// purgeBelow removes every record of the bucket's stream before seq.
func purgeBelow(t testing.TB, js jetstream.JetStream, bucket string, seq uint64) {
	t.Helper()
	st, err := js.Stream(testCtx(t), streamName(bucket))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Purge(testCtx(t), jetstream.WithPurgeSequence(seq)); err != nil {
		t.Fatal(err)
	}
}

// Port of benign_interior_gap_passes (§5.9, §11.F 113).
func TestFloorGuardBenignGap(t *testing.T) {
	srv := natstest.Run(t)
	c := connect(t, fastOpts(srv.URL()))
	s := openStore(t, c, kvcore.StoreConfig{})
	for i := 1; i <= 5; i++ {
		mustPut(t, s, fmt.Sprintf("k%d", i), "v")
	}
	mustPut(t, s, "k2", "w") // 6: revision 2 is gone, superseded
	mustPut(t, s, "k3", "w") // 7
	w, err := s.Watch(testCtx(t), kvcore.AllKeys(), kvcore.RevisionCursor(1))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var revs []uint64
	for {
		ev := next(t, w, eventWait)
		if ev.Synced {
			break
		}
		revs = append(revs, rev(ev.Version))
	}
	if fmt.Sprint(revs) != "[4 5 6 7]" {
		t.Fatalf("revisions %v, want [4 5 6 7]", revs)
	}
	if w.Err() != nil {
		t.Fatal(w.Err())
	}
}

// Port of gapped_delivery_with_advanced_floor_trips (§5.9, §11.F 112): a
// whole-bucket resume watch whose consumer falls behind retention fails
// instead of skipping. The reader stalls, flow control stops the server
// after a few MiB, and the stream is purged under the stalled consumer.
func TestFloorGuardTrips(t *testing.T) {
	srv := natstest.Run(t)
	o := fastOpts(srv.URL())
	// Only the live guard may notice: on a loaded machine the server can
	// stay silent for two short heartbeats, and the watch then re-creates
	// its consumer, whose resume check reports the overrun instead.
	o.Heartbeat = time.Minute
	c := connect(t, o)
	_, js := rawJS(t, srv.URL())
	s := openStore(t, c, kvcore.StoreConfig{MaxBytes: 64 << 20})
	anchor := mustPut(t, s, "anchor", "a")
	w, err := s.Watch(testCtx(t), kvcore.AllKeys(), kvcore.RevisionCursor(anchor))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	value := bytes.Repeat([]byte("v"), 8<<10)
	const n = 1024 // 8 MiB, well past the 2 MiB flow-control window
	for i := range n {
		if _, err := js.PublishAsync(fmt.Sprintf("$KV.%s.k.%04d", s.bucket, i), value); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(eventWait):
		t.Fatal("publishing did not complete")
	}
	purgeBelow(t, js, s.bucket, anchor+n)

	// Everything delivered is contiguous; then the watch fails.
	want := anchor + 1
	for ev := range w.Events() {
		if ev.Synced {
			continue
		}
		if r := rev(ev.Version); r != want {
			t.Fatalf("delivered revision %d, want %d: the watch skipped records", r, want)
		}
		want++
	}
	if want > anchor+n {
		t.Fatalf("the consumer delivered everything (%d records); the test did not stall it", want-anchor-1)
	}
	err = w.Err()
	wantErr(t, "watch overrun by retention", err, kvcore.ErrCursorExpired)
	if !strings.Contains(err.Error(), "retention overran live watch") {
		t.Fatalf("error %q does not say what happened", err)
	}
}

// The floor guard's periodic probe catches retention passing a watch that
// delivers nothing at all.
func TestFloorGuardProbe(t *testing.T) {
	srv := natstest.Run(t)
	o := fastOpts(srv.URL())
	o.Heartbeat = time.Minute // no heartbeat-based detection during the test
	c := connect(t, o)
	_, js := rawJS(t, srv.URL())
	s := openStore(t, c, kvcore.StoreConfig{})
	head := mustPut(t, s, "a", "1")
	s.tuneWatch = func(w *watch) {
		w.pauseNext = time.Minute // the consumer delivers nothing
		w.probeEvery = 100 * time.Millisecond
	}
	w, err := s.Watch(testCtx(t), kvcore.AllKeys(), kvcore.RevisionCursor(head))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if ev := next(t, w, eventWait); !ev.Synced {
		t.Fatalf("first event %+v", ev)
	}
	mustPut(t, s, "b", "2")
	last := mustPut(t, s, "c", "3")
	purgeBelow(t, js, s.bucket, last)
	select {
	case ev, ok := <-w.Events():
		if ok {
			t.Fatalf("a paused consumer delivered %+v", ev)
		}
	case <-time.After(eventWait):
		t.Fatal("the probe did not notice the stream moving past the watch")
	}
	wantErr(t, "probe", w.Err(), kvcore.ErrCursorExpired)
}

// A state sync whose whole backlog is purged before the consumer sends it
// still ends with Synced.
func TestSyncedWhenBacklogVanishes(t *testing.T) {
	srv := natstest.Run(t)
	c := connect(t, fastOpts(srv.URL()))
	_, js := rawJS(t, srv.URL())
	s := openStore(t, c, kvcore.StoreConfig{})
	mustPut(t, s, "a", "1")
	last := mustPut(t, s, "b", "2")
	s.tuneWatch = func(w *watch) {
		w.pauseNext = 2 * time.Second
		w.afterCreate = func() { purgeBelow(t, js, s.bucket, last+1) }
	}
	w, err := s.Watch(testCtx(t), kvcore.AllKeys(), kvcore.Cursor{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if ev := next(t, w, eventWait); !ev.Synced {
		t.Fatalf("first event %+v, want Synced", ev)
	}
	mustPut(t, s, "c", "3")
	if ev := next(t, w, eventWait); ev.Key != "c" {
		t.Fatalf("event %+v", ev)
	}
}

// A filtered watch learns from heartbeats how far the stream has moved past
// it, so a resume after a busy stretch of other keys is not mistaken for
// an expired cursor.
func TestSparsePrefixResumesAfterOtherTraffic(t *testing.T) {
	srv := natstest.Run(t)
	proxy := natstest.NewProxy(t, srv.URL())
	c := connect(t, fastOpts(proxy.URL()))
	writer := connect(t, fastOpts(srv.URL()))
	s := openStore(t, c, kvcore.StoreConfig{})
	ws := openStore(t, writer, kvcore.StoreConfig{Bucket: s.bucket})
	cursor := mustPut(t, ws, "busy", "0")
	w, err := s.Watch(testCtx(t), kvcore.Prefixes("sparse."), kvcore.RevisionCursor(cursor))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if ev := next(t, w, eventWait); !ev.Synced {
		t.Fatalf("first event %+v", ev)
	}
	var last uint64
	for i := range 50 {
		last = mustPut(t, ws, "busy", fmt.Sprint(i)) // history 1: the stream's first revision moves on
	}
	ww := watchOf(w)
	waitFor(t, eventWait, "heartbeats to report the position", func() bool {
		ww.mu.Lock()
		defer ww.mu.Unlock()
		return ww.pos >= last
	})
	proxy.Cut()
	mustPut(t, ws, "sparse.x", "1")
	if ev := next(t, w, eventWait); ev.Key != "sparse.x" {
		t.Fatalf("event %+v", ev)
	}
}

// watchPair starts a state-sync watch of the whole bucket and a delta watch
// of "node." from cursor, stopped by t.Cleanup.
func watchPair(t *testing.T, s kvcore.Store, cursor uint64) (all, delta kvcore.Watch) {
	t.Helper()
	all = startWatch(t, s, kvcore.AllKeys(), kvcore.Cursor{})
	delta = startWatch(t, s, kvcore.Prefixes("node."), kvcore.RevisionCursor(cursor))
	return all, delta
}

// startWatch starts a watch stopped by t.Cleanup. A start that times out is
// tried again: a new R3 stream may not take a consumer at once on a loaded
// machine (CI's parallel packages timed its creation out), and a caller
// such as the agent starts the watch again too. Any other error fails t.
func startWatch(t *testing.T, s kvcore.Store, scope kvcore.Scope, from kvcore.Cursor) kvcore.Watch {
	t.Helper()
	var w kvcore.Watch
	waitFor(t, 30*time.Second, "a watch to start", func() bool {
		var err error
		w, err = s.Watch(testCtx(t), scope, from)
		if errors.Is(err, kvcore.ErrTimeout) {
			t.Logf("watch: %v; starting it again", err)
			return false
		}
		if err != nil {
			t.Fatal(err)
		}
		return true
	})
	t.Cleanup(w.Stop)
	return w
}

// watchOf returns the internal watch behind w.
func watchOf(w kvcore.Watch) *watch { return w.(*watch) }

// currentName is the name of the watch's consumer ("" between consumers).
func (w *watch) currentName() string {
	if a := w.cur.Load(); a != nil {
		return a.name
	}
	return ""
}

// currentInbox is the delivery subject of the watch's consumer.
func (w *watch) currentInbox() string { return w.cur.Load().sub.Subject }

func TestWatchRecovers(t *testing.T) {
	srv := natstest.Run(t)
	proxy := natstest.NewProxy(t, srv.URL())
	o := fastOpts(proxy.URL())
	o.Logger = testLogger(t)
	c := connect(t, o)
	writer := connect(t, fastOpts(srv.URL()))
	_, js := rawJS(t, srv.URL())
	s := openStore(t, c, kvcore.StoreConfig{})
	ws := openStore(t, writer, kvcore.StoreConfig{Bucket: s.bucket})
	ctx := testCtx(t)

	mustPut(t, ws, "node.a", "0")
	cursor := mustPut(t, ws, "node.b", "0")
	all, delta := watchPair(t, s, cursor)
	for range 3 { // node.a, node.b, Synced
		next(t, all, eventWait)
	}
	next(t, delta, eventWait) // Synced
	last := map[kvcore.Watch]uint64{all: cursor, delta: cursor}
	expect := func(step string) {
		t.Helper()
		r := mustPut(t, ws, "node.x", step)
		for _, w := range []kvcore.Watch{all, delta} {
			ev := next(t, w, eventWait)
			if ev.Synced || ev.Key != "node.x" || string(ev.Value) != step || rev(ev.Version) != r {
				t.Fatalf("%s: event %+v, want node.x=%s at %d", step, ev, step, r)
			}
			if rev(ev.Version) <= last[w] {
				t.Fatalf("%s: revision %d replayed", step, r)
			}
			last[w] = r
		}
		// Replaced consumers are deleted in the background.
		waitFor(t, eventWait, step+": 2 consumers for 2 watches", func() bool { return consumerCount(t, js, s.bucket) == 2 })
	}
	expect("start")

	proxy.Cut() // the server and the old consumers live on
	expect("after a connection drop")

	srv.Restart() // the consumers are gone
	expect("after a server restart")

	// A consumer deleted behind the watch's back falls silent: the watch
	// notices the missing heartbeats.
	old := watchOf(all).currentName()
	if err := js.DeleteConsumer(ctx, streamName(s.bucket), old); err != nil {
		t.Fatal(err)
	}
	waitFor(t, eventWait, "new consumer", func() bool { n := watchOf(all).currentName(); return n != "" && n != old })
	expect("after the consumer was deleted")

	// A heartbeat that reports deliveries the watch never got makes it
	// start over after what it handled.
	old = watchOf(delta).currentName()
	hb := &nats.Msg{Subject: watchOf(delta).currentInbox(), Header: nats.Header{
		hdrStatus: {statusControl}, hdrDescription: {"Idle Heartbeat"}, hdrLastConsumer: {"99999"}, hdrLastStream: {"99999"},
	}}
	if err := c.NATS().PublishMsg(hb); err != nil {
		t.Fatal(err)
	}
	waitFor(t, eventWait, "new consumer after the heartbeat", func() bool { n := watchOf(delta).currentName(); return n != "" && n != old })
	expect("after a heartbeat reported a gap")

	// So does a delivery out of sequence, which is not passed on. (The
	// server refuses clients that publish with an ACK reply subject, so
	// the stray delivery is handed to the handler directly.)
	dw := watchOf(delta)
	a := dw.cur.Load()
	stray := fmt.Sprintf("$JS.ACK.%s.%s.1.%d.99999.%d.0", streamName(s.bucket), a.name, 1<<40, time.Now().UnixNano())
	dw.handle(a, &nats.Msg{Subject: ws.pre + "node.stray", Reply: stray, Data: []byte("x")})
	waitFor(t, eventWait, "new consumer after the gap", func() bool { n := dw.currentName(); return n != "" && n != a.name })
	expect("after a delivery gap")

	for _, w := range []kvcore.Watch{all, delta} {
		quiet(t, w, 300*time.Millisecond)
		if w.Err() != nil {
			t.Fatal(w.Err())
		}
	}
}

func TestWatchTerminalFailures(t *testing.T) {
	srv := natstest.Run(t)
	proxy := natstest.NewProxy(t, srv.URL())
	c := connect(t, fastOpts(proxy.URL()))
	_, js := rawJS(t, srv.URL())
	ctx := testCtx(t)

	t.Run("cursor expired during an outage", func(t *testing.T) {
		s := openStore(t, c, kvcore.StoreConfig{})
		mustPut(t, s, "a", "1")
		w, err := s.Watch(ctx, kvcore.Prefixes("a"), kvcore.Cursor{})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		next(t, w, eventWait) // a
		next(t, w, eventWait) // Synced
		proxy.SetDown(true)
		kv, err := js.KeyValue(ctx, s.bucket)
		if err != nil {
			t.Fatal(err)
		}
		var last uint64
		for i := range 3 {
			if last, err = kv.Put(ctx, "a", []byte(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
		}
		purgeBelow(t, js, s.bucket, last+1) // a's updates are gone unseen
		proxy.SetDown(false)
		drain(t, w)
		wantErr(t, "watch after retention passed it", w.Err(), kvcore.ErrCursorExpired)
	})

	// deletedUnder returns a state sync of s's one key that has delivered
	// its initial state, with the connection down and the bucket deleted.
	deletedUnder := func(t *testing.T, s *store) kvcore.Watch {
		t.Helper()
		w, err := s.Watch(ctx, kvcore.AllKeys(), kvcore.Cursor{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Stop)
		next(t, w, eventWait) // the key
		next(t, w, eventWait) // Synced
		proxy.SetDown(true)
		if err := js.DeleteKeyValue(ctx, s.bucket); err != nil {
			t.Fatal(err)
		}
		return w
	}

	// Refilled short of the watch's position, and past it: either way the
	// revisions mean something else now.
	for _, refill := range []int{1, 8} {
		t.Run(fmt.Sprintf("bucket re-created with %d records during an outage", refill), func(t *testing.T) {
			s := openStore(t, c, kvcore.StoreConfig{})
			for range 5 {
				mustPut(t, s, "a", "1")
			}
			w := deletedUnder(t, s)
			kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: s.bucket})
			if err != nil {
				t.Fatal(err)
			}
			for i := range refill { // revisions 1… again
				if _, err := kv.Put(ctx, fmt.Sprintf("new%d", i), []byte("new life")); err != nil {
					t.Fatal(err)
				}
			}
			proxy.SetDown(false)
			drain(t, w)
			wantErr(t, "watch of a re-created bucket", w.Err(), kvcore.ErrCursorExpired)
		})
	}

	t.Run("bucket deleted during an outage", func(t *testing.T) {
		s := openStore(t, c, kvcore.StoreConfig{})
		mustPut(t, s, "a", "1")
		s.tuneWatch = func(w *watch) { w.notFoundFor = time.Second }
		w := deletedUnder(t, s)
		proxy.SetDown(false)
		drain(t, w)
		err := w.Err()
		wantErr(t, "watch of a deleted bucket", err, kvcore.ErrWatchFailed)
		if errors.Is(err, kvcore.ErrCursorExpired) {
			t.Fatalf("deleted bucket reported as an expired cursor: %v", err)
		}
	})
}

// A 3-node cluster with an R3 bucket loses its stream leader: writes,
// reads and watches carry on, nothing is lost or replayed, and no
// consumer is left behind.
func TestWatchSurvivesLeaderChange(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test skipped in -short mode")
	}
	cl := natstest.RunCluster(t, 3)
	o := fastOpts(cl.URLs()...)
	o.Logger = testLogger(t)
	c := connect(t, o)
	_, js := rawJS(t, strings.Join(cl.URLs(), ","))
	s := openStore(t, c, kvcore.StoreConfig{Replicas: 3})
	ctx := testCtx(t)
	mustPut(t, s, "node.a", "1")
	cursor := mustPut(t, s, "node.b", "2")

	all, delta := watchPair(t, s, cursor)
	for range 3 {
		next(t, all, eventWait)
	}
	next(t, delta, eventWait)

	leader := cl.StreamLeader("$G", streamName(s.bucket))
	leader.Shutdown()
	cl.StreamLeader("$G", streamName(s.bucket))

	// Create is idempotent across a retry whose first attempt landed.
	var revs []uint64
	for i := range 3 {
		key := fmt.Sprintf("node.after%d", i)
		waitFor(t, 30*time.Second, "create "+key, func() bool {
			_, err := s.Create(ctx, key, []byte("v"))
			return err == nil || errors.Is(err, kvcore.ErrAlreadyExists)
		})
		var e kvcore.Entry
		waitFor(t, 30*time.Second, "read "+key, func() bool {
			var err error
			e, err = s.Get(ctx, key)
			return err == nil
		})
		revs = append(revs, rev(e.Version))
	}
	for _, w := range []kvcore.Watch{all, delta} {
		for i, r := range revs {
			ev := next(t, w, 30*time.Second)
			if ev.Synced || rev(ev.Version) != r || ev.Key != fmt.Sprintf("node.after%d", i) {
				t.Fatalf("event %+v, want node.after%d at %d", ev, i, r)
			}
		}
		quiet(t, w, 300*time.Millisecond)
	}
	waitFor(t, 30*time.Second, "2 consumers for 2 watches", func() bool {
		st, err := js.Stream(ctx, streamName(s.bucket))
		if err == nil {
			var names []string
			for n := range st.ConsumerNames(ctx).Name() {
				names = append(names, n)
			}
			t.Logf("consumers %d %v; current %s %s", st.CachedInfo().State.Consumers, names, watchOf(all).currentName(), watchOf(delta).currentName())
		}
		return err == nil && st.CachedInfo().State.Consumers == 2
	})

	leader.Start()
	cl.WaitForMetaLeader()
	putEventually(t, s, "node.back", "1")
	for _, w := range []kvcore.Watch{all, delta} {
		if ev := next(t, w, 30*time.Second); ev.Key != "node.back" {
			t.Fatalf("event %+v", ev)
		}
	}
}

// A reconnect re-creates the consumer at once, without waiting for
// heartbeats to go missing (nats.go's own watcher takes 10–20 s).
func TestWatchResumesOnReconnect(t *testing.T) {
	srv := natstest.Run(t)
	o := fastOpts(srv.URL())
	o.Heartbeat = time.Minute
	c := connect(t, o)
	s := openStore(t, c, kvcore.StoreConfig{})
	w, err := s.Watch(testCtx(t), kvcore.AllKeys(), kvcore.Cursor{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	next(t, w, eventWait) // Synced
	srv.Restart()
	mustPut(t, s, "k", "1")
	if ev := next(t, w, eventWait); ev.Key != "k" {
		t.Fatalf("event %+v", ev)
	}
}

// A connection lost in the middle of a state sync resumes after the last
// key delivered: every key arrives once, Synced once, nothing is replayed.
func TestStateSyncInterruptedMidway(t *testing.T) {
	srv := natstest.Run(t)
	proxy := natstest.NewProxy(t, srv.URL())
	o := fastOpts(proxy.URL())
	o.Logger = testLogger(t)
	c := connect(t, o)
	_, js := rawJS(t, srv.URL())
	s := openStore(t, c, kvcore.StoreConfig{})
	const n = 3000
	for i := range n {
		if _, err := js.PublishAsync(fmt.Sprintf("%sk.%05d", s.pre, i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	<-js.PublishAsyncComplete()
	w, err := s.Watch(testCtx(t), kvcore.AllKeys(), kvcore.Cursor{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	seen := map[string]bool{}
	var last uint64
	for i := 0; ; i++ {
		if i == n/3 {
			// The handler is blocked on a full event buffer; cut the
			// connection and wait for the replacement consumer before
			// reading on, so the rest must come from the resumed one.
			old := watchOf(w).currentName()
			proxy.Cut()
			waitFor(t, eventWait, "replacement consumer", func() bool { n := watchOf(w).currentName(); return n != "" && n != old })
		}
		ev := next(t, w, eventWait)
		if ev.Synced {
			break
		}
		if seen[ev.Key] || rev(ev.Version) <= last {
			t.Fatalf("%s at %v replayed", ev.Key, ev.Version)
		}
		seen[ev.Key], last = true, rev(ev.Version)
	}
	if len(seen) != n {
		t.Fatalf("initial state had %d of %d keys", len(seen), n)
	}
	mustPut(t, s, "after", "1")
	if ev := next(t, w, eventWait); ev.Synced || ev.Key != "after" {
		t.Fatalf("event %+v", ev)
	}
}

// Any writer may give a record JetStream's control headers. An empty
// record with "Status: 100" looks like a flow control request, and any
// record does to Keys, whose deliveries carry headers only; each is still
// the record it is to watches, Keys and Scan.
func TestRecordsWithControlHeaders(t *testing.T) {
	srv := natstest.Run(t)
	c := connect(t, fastOpts(srv.URL()))
	_, js := rawJS(t, srv.URL())
	s := openStore(t, c, kvcore.StoreConfig{})
	ctx := testCtx(t)
	w, err := s.Watch(ctx, kvcore.AllKeys(), kvcore.Cursor{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if ev := next(t, w, eventWait); !ev.Synced {
		t.Fatalf("first event %+v", ev)
	}
	records := []struct {
		key, value string
		header     nats.Header
	}{
		{"heartbeat", "", nats.Header{hdrStatus: {statusControl}, hdrDescription: {"Idle Heartbeat"}}},
		{"flow", "v", nats.Header{hdrStatus: {statusControl}, hdrDescription: {"FlowControl Request"}}},
		{"gone", "v", nats.Header{hdrStatus: {statusConflict}, hdrDescription: {descConsumerGone}}},
	}
	for _, r := range records {
		m := &nats.Msg{Subject: s.pre + r.key, Header: r.header, Data: []byte(r.value)}
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	mustPut(t, s, "after", "v")
	for _, want := range []string{"heartbeat=", "flow=v", "gone=v", "after=v"} {
		if ev := next(t, w, eventWait); ev.Synced || ev.Key+"="+string(ev.Value) != want {
			t.Fatalf("event %+v, want %s", ev, want)
		}
	}
	keys, err := s.Keys(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	if want := []string{"after", "flow", "gone"}; !slices.Equal(keys, want) {
		t.Fatalf("keys %q, want %q", keys, want)
	}
	entries, err := s.Scan(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		t.Fatalf("scan found %d entries, want 3", len(entries))
	}
}

// A stream missing for a while (a cluster recovering it, a restore) does
// not end a watch: here the server restarts without the bucket's stream,
// answering "stream not found" attempt after attempt, and restarts with it
// again (the same stream, created at the same time).
func TestWatchOutlastsMissingStream(t *testing.T) {
	srv := natstest.Run(t)
	o := fastOpts(srv.URL())
	o.Logger = testLogger(t)
	c := connect(t, o)
	s := openStore(t, c, kvcore.StoreConfig{})
	mustPut(t, s, "a", "1")
	w, err := s.Watch(testCtx(t), kvcore.AllKeys(), kvcore.Cursor{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	next(t, w, eventWait) // a
	next(t, w, eventWait) // Synced

	dir := filepath.Join(srv.StoreDir(), "jetstream", "$G", "streams", s.stream)
	aside := filepath.Join(t.TempDir(), s.stream)
	move := func(from, to string) {
		srv.Shutdown()
		if err := os.Rename(from, to); err != nil {
			t.Fatal(err)
		}
		srv.Start()
	}
	move(dir, aside)
	waitFor(t, eventWait, "reconnected", c.Healthy)
	// Attempts 100 ms apart at first, backing off: a second is several
	// of them, all finding no stream.
	time.Sleep(time.Second)
	select {
	case ev, ok := <-w.Events():
		t.Fatalf("watch of a missing stream: event %+v (open %v), err %v", ev, ok, w.Err())
	default:
	}
	move(aside, dir)
	mustPut(t, s, "b", "2")
	if ev := next(t, w, eventWait); ev.Key != "b" {
		t.Fatalf("event %+v, want b", ev)
	}
	if err := w.Err(); err != nil {
		t.Fatal(err)
	}
}
