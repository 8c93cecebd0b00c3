package kvtest

import (
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// stream reads a watch and checks, for every event, what holds for every
// watch: versions strictly increase and Synced comes at most once.
type stream struct {
	t      testing.TB
	w      kvcore.Watch
	wait   time.Duration
	last   kvcore.Version
	synced bool
}

func (s *suite) watch(t testing.TB, st kvcore.Store, scope kvcore.Scope, from kvcore.Cursor) *stream {
	t.Helper()
	w, err := st.Watch(s.ctx(t), scope, from)
	if err != nil {
		t.Fatalf("watch %v from %v: %v", scope, from, err)
	}
	t.Cleanup(w.Stop)
	return &stream{t: t, w: w, wait: s.h.Wait}
}

// next returns the next event.
func (r *stream) next() kvcore.Event {
	r.t.Helper()
	select {
	case ev, ok := <-r.w.Events():
		if !ok {
			r.t.Fatalf("watch ended early: %v", r.w.Err())
		}
		if ev.Synced {
			if r.synced {
				r.t.Fatalf("second Synced event")
			}
			r.synced = true
			return ev
		}
		if ev.Version.IsUnknown() {
			r.t.Fatalf("event %s %s without a version", ev.Op, ev.Key)
		}
		if !r.last.IsUnknown() && !after(ev.Version, r.last) {
			r.t.Fatalf("event %s %s at %v does not follow %v", ev.Op, ev.Key, ev.Version, r.last)
		}
		r.last = ev.Version
		return ev
	case <-time.After(r.wait):
		r.t.Fatalf("no event within %v", r.wait)
	}
	panic("unreachable")
}

// untilSynced returns the updates before the Synced event.
func (r *stream) untilSynced() []kvcore.Update {
	r.t.Helper()
	var us []kvcore.Update
	for {
		ev := r.next()
		if ev.Synced {
			return us
		}
		us = append(us, ev.Update)
	}
}

// updates returns the next n updates, failing on a Synced event.
func (r *stream) updates(n int) []kvcore.Update {
	r.t.Helper()
	us := make([]kvcore.Update, 0, n)
	for len(us) < n {
		ev := r.next()
		if ev.Synced {
			r.t.Fatalf("unexpected Synced after %d of %d updates", len(us), n)
		}
		us = append(us, ev.Update)
	}
	return us
}

// quiet fails if anything arrives within d.
func (r *stream) quiet(d time.Duration) {
	r.t.Helper()
	select {
	case ev, ok := <-r.w.Events():
		if !ok {
			r.t.Fatalf("watch ended: %v", r.w.Err())
		}
		r.t.Fatalf("unexpected event %+v", ev)
	case <-time.After(d):
	}
}

// want checks updates against "op key=value" descriptions such as
// "put a=1", "delete b" or "purge c".
func want(t testing.TB, got []kvcore.Update, desc ...string) {
	t.Helper()
	g := make([]string, len(got))
	for i, u := range got {
		g[i] = describe(u)
	}
	if len(g) != len(desc) {
		t.Fatalf("updates = %q, want %q", g, desc)
	}
	for i := range g {
		if g[i] != desc[i] {
			t.Fatalf("updates = %q, want %q", g, desc)
		}
	}
}

func describe(u kvcore.Update) string {
	if u.Op == kvcore.OpPut {
		return "put " + u.Key + "=" + string(u.Value)
	}
	return u.Op.String() + " " + u.Key
}
