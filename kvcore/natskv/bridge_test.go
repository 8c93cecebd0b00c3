package natskv

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/kvcore"
)

// holdCreation makes every consumer created after arm() wait in attach
// until release() (as one waits on a cluster without a meta leader, where
// creations go unanswered while the stream's new leader takes writes).
type holdCreation struct {
	armed   atomic.Bool
	holding atomic.Int32
	release chan struct{}
}

func newHoldCreation(t *testing.T) *holdCreation {
	h := &holdCreation{release: make(chan struct{})}
	t.Cleanup(h.free)
	return h
}

func (h *holdCreation) tune(w *watch) {
	w.afterCreate = func() {
		if !h.armed.Load() {
			return
		}
		h.holding.Add(1)
		defer h.holding.Add(-1)
		select {
		case <-h.release:
		case <-w.ctx.Done():
		}
	}
}

func (h *holdCreation) free() {
	if h.armed.CompareAndSwap(true, false) {
		close(h.release)
	}
}

// syncedWatch starts a whole-bucket watch of s from cursor, with its
// consumer creations held by h, and waits for its Synced event.
func syncedWatch(t *testing.T, s *store, h *holdCreation, cursor uint64) kvcore.Watch {
	t.Helper()
	s.tuneWatch = h.tune
	w, err := s.Watch(testCtx(t), kvcore.AllKeys(), kvcore.CursorAt(kvcore.RevisionVersion(cursor)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	if ev := next(t, w, eventWait); !ev.Synced {
		t.Fatalf("event %+v, want Synced", ev)
	}
	return w
}

// holdReattach deletes w's consumer behind its back and waits until the
// re-creation that follows is held by h.
func holdReattach(t *testing.T, js jetstream.JetStream, s *store, w kvcore.Watch, h *holdCreation) {
	t.Helper()
	h.armed.Store(true)
	if err := js.DeleteConsumer(testCtx(t), streamName(s.bucket), watchOf(w).currentName()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, eventWait, "a re-creation held", func() bool { return h.holding.Load() == 1 })
}

// A watch whose consumer is being re-created still delivers what is
// written meanwhile (read with direct gets by the bridge), in order, and
// the new consumer does not deliver it again.
func TestBridgeDeliversWhileConsumerIsRecreated(t *testing.T) {
	srv := natstest.Run(t)
	_, js := rawJS(t, srv.URL())
	for _, tc := range []struct {
		name   string
		scope  kvcore.Scope
		cursor bool // resume from a cursor: the floor guard is on
	}{
		{"whole bucket from a cursor", kvcore.AllKeys(), true},
		{"whole bucket state sync", kvcore.AllKeys(), false},
		{"one prefix", kvcore.Prefixes("node."), false},
		{"two prefixes", kvcore.Prefixes("node.", "svc."), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := connect(t, fastOpts(srv.URL()))
			s := openStore(t, c, kvcore.StoreConfig{})
			mustPut(t, s, "node.a", "0")
			mustPut(t, s, "other.o", "0")
			cursor := mustPut(t, s, "svc.s", "0")
			h := newHoldCreation(t)
			s.tuneWatch = h.tune
			from := kvcore.Cursor{}
			if tc.cursor {
				from = kvcore.CursorAt(kvcore.RevisionVersion(cursor))
			}
			w, err := s.Watch(testCtx(t), tc.scope, from)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(w.Stop)
			for ev := next(t, w, eventWait); !ev.Synced; ev = next(t, w, eventWait) {
			}

			ww := watchOf(w)
			holdReattach(t, js, s, w, h)

			// Each change, seen before the next one is made.
			expect := func(key, value string, op kvcore.Op, r uint64) {
				t.Helper()
				if !tc.scope.Match(key) {
					return
				}
				ev := next(t, w, eventWait)
				if ev.Synced || ev.Key != key || string(ev.Value) != value || ev.Op != op || rev(ev.Version) != r {
					t.Fatalf("event %+v, want %s %s=%q at %d", ev, op, key, value, r)
				}
				if ev.Created.IsZero() {
					t.Errorf("event %+v has no time", ev)
				}
			}
			put := func(key, value string) {
				t.Helper()
				expect(key, value, kvcore.OpPut, mustPut(t, s, key, value))
			}
			put("node.x", "1")
			put("other.y", "1") // outside the prefixes
			put("svc.s", "2")
			if err := s.Delete(testCtx(t), "node.a"); err != nil {
				t.Fatal(err)
			}
			st, err := s.streamState(testCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			expect("node.a", "", kvcore.OpDelete, st.last)
			// A record superseded before the bridge reads it leaves a gap,
			// as it would for a consumer.
			r2 := mustPut(t, s, "node.x", "2")
			r3 := mustPut(t, s, "node.x", "3")
			if tc.scope.Match("node.x") {
				ev := next(t, w, eventWait)
				if rev(ev.Version) == r2 { // read before the next one came
					ev = next(t, w, eventWait)
				}
				if ev.Key != "node.x" || string(ev.Value) != "3" || rev(ev.Version) != r3 {
					t.Fatalf("event %+v, want node.x=3 at %d", ev, r3)
				}
			}
			if h.holding.Load() != 1 || ww.cur.Load() != nil {
				t.Fatal("the events came from a consumer, not the bridge")
			}

			h.free()
			waitFor(t, eventWait, "the new consumer current", func() bool { return ww.cur.Load() != nil })
			r := mustPut(t, s, "node.z", "1")
			if ev := next(t, w, eventWait); ev.Key != "node.z" || rev(ev.Version) != r {
				t.Fatalf("after the re-creation: event %+v, want node.z at %d (delivered twice?)", ev, r)
			}
			quiet(t, w, 300*time.Millisecond)
			if err := w.Err(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A bucket deleted and created again while a watch re-creates its
// consumer holds other revisions under the same numbers: the bridge
// delivers none of them, and the watch ends with ErrCursorExpired.
func TestBridgeRefusesARecreatedBucket(t *testing.T) {
	srv := natstest.Run(t)
	_, js := rawJS(t, srv.URL())
	o := fastOpts(srv.URL())
	o.Logger = testLogger(t)
	c := connect(t, o)
	s := openStore(t, c, kvcore.StoreConfig{})
	cursor := mustPut(t, s, "k", "old")
	h := newHoldCreation(t)
	w := syncedWatch(t, s, h, cursor)

	holdReattach(t, js, s, w, h)
	if err := js.DeleteKeyValue(testCtx(t), s.bucket); err != nil {
		t.Fatal(err)
	}
	kv, err := natstest.CreateOrUpdateKeyValue(testCtx(t), js, jetstream.KeyValueConfig{Bucket: s.bucket})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 { // revisions past the cursor, none superseded
		if _, err := kv.Put(testCtx(t), fmt.Sprintf("k%d", i), []byte("new")); err != nil {
			t.Fatal(err)
		}
	}
	quiet(t, w, 5*bridgeEvery)
	h.free()
	select {
	case ev, ok := <-w.Events():
		if ok {
			t.Fatalf("event %+v from the new bucket", ev)
		}
	case <-time.After(eventWait):
		t.Fatal("the watch did not end")
	}
	wantErr(t, "watch", w.Err(), kvcore.ErrCursorExpired)
}

// Replicas that stop answering direct gets for a while (as during an
// election: "no responders") do not end the bridge: it reads on once they
// answer again.
func TestBridgeOutlastsNoResponders(t *testing.T) {
	srv := natstest.Run(t)
	_, js := rawJS(t, srv.URL())
	c := connect(t, fastOpts(srv.URL()))
	s := openStore(t, c, kvcore.StoreConfig{})
	cursor := mustPut(t, s, "k", "0")
	h := newHoldCreation(t)
	w := syncedWatch(t, s, h, cursor)
	allowDirect := func(on bool) {
		t.Helper()
		st, err := js.Stream(testCtx(t), streamName(s.bucket))
		if err != nil {
			t.Fatal(err)
		}
		cfg := st.CachedInfo().Config
		cfg.AllowDirect = on
		if _, err := js.UpdateStream(testCtx(t), cfg); err != nil {
			t.Fatal(err)
		}
	}
	allowDirect(false)
	holdReattach(t, js, s, w, h)
	r := mustPut(t, s, "k", "1")
	quiet(t, w, 10*bridgeEvery) // a dozen direct gets without responders
	allowDirect(true)
	if ev := next(t, w, eventWait); ev.Key != "k" || string(ev.Value) != "1" || rev(ev.Version) != r {
		t.Fatalf("event %+v, want k=1 at %d", ev, r)
	}
	if h.holding.Load() != 1 {
		t.Fatal("the event came from a consumer, not the bridge")
	}
}

// A user not allowed direct gets is told once, in the log; its watches
// wait for their new consumers, and deliver everything once they have them.
func TestBridgeWithoutDirectGetPermission(t *testing.T) {
	perms := &server.Permissions{Publish: &server.SubjectPermission{Deny: []string{"$JS.API.DIRECT.GET.>"}}}
	srv := natstest.Run(t, func(o *server.Options) {
		o.Users = []*server.User{{Username: "admin", Password: "admin"}, {Username: "reader", Password: "reader", Permissions: perms}}
	})
	host := strings.TrimPrefix(srv.URL(), "nats://")
	_, js := rawJS(t, "nats://admin:admin@"+host)
	writer := openStore(t, connect(t, fastOpts("nats://admin:admin@"+host)), kvcore.StoreConfig{})
	cursor := mustPut(t, writer, "k", "0")
	c := connect(t, fastOpts("nats://reader:reader@"+host))
	s := openStore(t, c, kvcore.StoreConfig{Bucket: writer.bucket})
	h := newHoldCreation(t)
	w := syncedWatch(t, s, h, cursor)
	holdReattach(t, js, s, w, h)
	r := mustPut(t, writer, "k", "1")
	waitFor(t, eventWait, "the denial noted", s.noDirect.Load)
	quiet(t, w, 2*bridgeEvery)
	h.free()
	if ev := next(t, w, eventWait); ev.Key != "k" || string(ev.Value) != "1" || rev(ev.Version) != r {
		t.Fatalf("event %+v, want k=1 at %d", ev, r)
	}
}
