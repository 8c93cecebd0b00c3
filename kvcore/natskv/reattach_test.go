package natskv

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/kvcore"
)

// OnReattach hears a watch re-creating its consumer: a failed attempt while
// the server is down, then the success once it is back.
func TestOnReattachHearsEveryAttempt(t *testing.T) {
	srv := natstest.Run(t)
	var mu sync.Mutex
	var failed, succeeded int
	var heard kvcore.Scope
	o := fastOpts(srv.URL())
	o.OnReattach = func(bucket string, scope kvcore.Scope, err error) {
		mu.Lock()
		defer mu.Unlock()
		heard = scope
		if err != nil {
			failed++
		} else {
			succeeded++
		}
	}
	c := connect(t, o)
	s := openStore(t, c, kvcore.StoreConfig{})
	w, err := s.Watch(testCtx(t), kvcore.Prefixes("node."), kvcore.Cursor{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	srv.Shutdown()
	waitFor(t, eventWait, "a failed attempt while the server is down", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return failed > 0
	})
	srv.Start()
	waitFor(t, eventWait, "the consumer re-created", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return succeeded > 0
	})
	// The reconnect that ended the outage is no reason to re-create the
	// consumer made since: a fleet coming back would double its requests.
	time.Sleep(time.Second) // well past ReconnectJitter
	mu.Lock()
	if succeeded != 1 {
		t.Errorf("the consumer was re-created %d times after the outage, want once", succeeded)
	}
	mu.Unlock()
	if heard.String() != kvcore.Prefixes("node.").String() {
		t.Errorf("OnReattach heard scope %v, want the watch's", heard)
	}
	if err := w.Err(); err != nil {
		t.Errorf("the watch ended: %v", err)
	}
}

// A watch opened on a WithReattach context reports its own attempts there,
// and only its own: of two watches of the same bucket and scope, the one
// whose consumer is deleted re-creates it and is heard; the other is not.
func TestWithReattachHearsOnlyItsWatch(t *testing.T) {
	srv := natstest.Run(t)
	c := connect(t, fastOpts(srv.URL()))
	s := openStore(t, c, kvcore.StoreConfig{})
	var mu sync.Mutex
	heard := map[string][]error{}
	open := func(name string) *watch {
		ctx := WithReattach(testCtx(t), func(err error) {
			mu.Lock()
			defer mu.Unlock()
			heard[name] = append(heard[name], err)
		})
		w, err := s.Watch(ctx, kvcore.Prefixes("node."), kvcore.Cursor{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Stop)
		if ev := next(t, w, eventWait); !ev.Synced {
			t.Fatalf("first event %+v, want Synced", ev)
		}
		return w.(*watch)
	}
	broken, other := open("broken"), open("other")
	if err := s.sess.js.DeleteConsumer(testCtx(t), s.stream, broken.currentName()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, eventWait, "the broken watch's consumer re-created", func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := len(heard["broken"])
		return n > 0 && heard["broken"][n-1] == nil
	})
	mu.Lock()
	defer mu.Unlock()
	if len(heard["other"]) > 0 {
		t.Errorf("the other watch's function heard %v", heard["other"])
	}
	for _, w := range []*watch{broken, other} {
		if err := w.Err(); err != nil {
			t.Errorf("a watch ended: %v", err)
		}
	}
}

// After a reconnect a watch waits a random part of ReconnectJitter before
// it re-creates its consumer, so a fleet does not all at once: with an hour
// of jitter, nothing is attempted for a while after the server is back.
func TestReconnectJitterDelaysReattach(t *testing.T) {
	srv := natstest.Run(t)
	var mu sync.Mutex
	attempts := 0
	o := fastOpts(srv.URL())
	o.Heartbeat = time.Hour // no missed-heartbeat re-creation either
	o.OnReattach = func(string, kvcore.Scope, error) {
		mu.Lock()
		defer mu.Unlock()
		attempts++
	}
	c := connect(t, o)
	s := openStore(t, c, kvcore.StoreConfig{})
	// The connection reconnects without delay; the watch waits.
	s.opts.ReconnectJitter = time.Hour
	w, err := s.Watch(testCtx(t), kvcore.AllKeys(), kvcore.Cursor{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	if ev := next(t, w, 10*time.Second); !ev.Synced {
		t.Fatalf("first event %+v, want Synced", ev)
	}
	srv.Restart()
	waitFor(t, eventWait, "the reconnect", c.Healthy)
	time.Sleep(2 * time.Second)
	mu.Lock()
	defer mu.Unlock()
	if attempts != 0 {
		t.Errorf("%d consumer re-creation attempts right after the reconnect, want none before the jitter", attempts)
	}
}

// A watch whose server stays silent past two heartbeats but still has its
// consumer (a loaded host; here the consumer's own heartbeat is a minute)
// keeps it, and gets the next put through it. Replacing it would make a
// state sync that busy keys left behind fail with ErrCursorExpired (its
// resume window gone) and its caller resync the whole bucket.
func TestSilentButAliveConsumerIsKept(t *testing.T) {
	srv := natstest.Run(t)
	o := fastOpts(srv.URL())
	o.Heartbeat = time.Minute // the server's idle heartbeat
	c := connect(t, o)
	s := openStore(t, c, kvcore.StoreConfig{})
	// The watch gives the server a heartbeat to answer about its consumer,
	// and replaces it at the first late answer: five seconds, and only a
	// few checks (below), so that a loaded test machine (-race, other
	// packages' servers; one second was missed in a CI run, three beside
	// a simulation run) answers in time, as a production heartbeat of
	// seconds leaves it.
	const expect = 5 * time.Second
	s.tuneWatch = func(w *watch) { w.hbEvery = expect }
	mustPut(t, s, "k", "0")
	w, err := s.Watch(testCtx(t), kvcore.AllKeys(), kvcore.Cursor{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for ev := next(t, w, eventWait); !ev.Synced; ev = next(t, w, eventWait) {
	}
	ww := w.(*watch)
	consumer := ww.currentName()
	time.Sleep(3 * expect) // past the silence that makes the watch ask, and its first checks
	last := mustPut(t, s, "k", "1")
	if ev := next(t, w, eventWait); rev(ev.Update.Version) != last {
		t.Fatalf("event %+v, want revision %d", ev, last)
	}
	if now := ww.currentName(); now != consumer {
		t.Fatalf("the watch replaced its consumer %s with %s while the server still had it", consumer, now)
	}
	if err := w.Err(); err != nil {
		t.Fatalf("the watch failed: %v", err)
	}
}

// A put landing while a silent watch asks about its consumer is counted as
// delivered by the server before the watch handles it: the watch waits for
// it instead of reading the consumer as lost. Each put here races its own
// check; without the wait, some of the checks fail.
func TestCheckWaitsForADeliveryInFlight(t *testing.T) {
	srv := natstest.Run(t)
	o := fastOpts(srv.URL())
	c := connect(t, o)
	s := openStore(t, c, kvcore.StoreConfig{})
	// The check's bound; the watch's own checks need ten seconds of
	// silence, which the puts below never leave.
	s.tuneWatch = func(w *watch) { w.hbEvery = 5 * time.Second }
	w, err := s.Watch(testCtx(t), kvcore.AllKeys(), kvcore.Cursor{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if ev := next(t, w, eventWait); !ev.Synced {
		t.Fatalf("first event %+v, want Synced", ev)
	}
	ww := w.(*watch)
	for i := range 1000 {
		last := mustPut(t, s, "k", strconv.Itoa(i))
		if !ww.slowButAlive() {
			t.Fatalf("put %d: the check read a consumer that delivers as lost", i)
		}
		if ev := next(t, w, eventWait); rev(ev.Update.Version) != last {
			t.Fatalf("event %+v, want revision %d", ev, last)
		}
	}
}
