package kvtest

import (
	"testing"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// reconnect checks that watches and stores ride through the loss of the
// backend connection: watches resume after the last update they delivered,
// with nothing lost, replayed or re-synced.
func (s *suite) reconnect(t *testing.T) {
	if s.h.Interrupt == nil {
		t.Skip("the backend has no connection to lose (Harness.Interrupt is nil)")
	}
	st := s.open(t, kvcore.StoreConfig{})
	ctx := s.ctx(t)
	s.put(t, st, "node.a", "1")
	cursor := s.put(t, st, "node.b", "2")
	s.put(t, st, "other.c", "3")

	all := s.watch(t, st, kvcore.AllKeys(), kvcore.Cursor{})
	want(t, all.untilSynced(), "put node.a=1", "put node.b=2", "put other.c=3")
	delta := s.watch(t, st, kvcore.Prefixes("node."), kvcore.CursorAt(cursor))
	want(t, delta.untilSynced())
	multi := s.watch(t, st, kvcore.Prefixes("node.", "other."), kvcore.CursorAt(cursor))
	want(t, multi.untilSynced(), "put other.c=3")

	for round := range 2 {
		s.h.Interrupt(t)
		v := string(rune('x' + round))
		s.put(t, st, "node.x", v)
		s.put(t, st, "other.y", v)
		s.put(t, st, "third.z", v)
		want(t, all.updates(3), "put node.x="+v, "put other.y="+v, "put third.z="+v)
		want(t, delta.updates(1), "put node.x="+v)
		want(t, multi.updates(2), "put node.x="+v, "put other.y="+v)
	}
	all.quiet(quietFor)
	delta.quiet(quietFor)
	multi.quiet(quietFor)

	e, err := st.Get(ctx, "third.z")
	noErr(t, "get after reconnecting", err)
	if string(e.Value) != "y" {
		t.Fatalf("get after reconnecting = %q", e.Value)
	}
	// A watch started after the interruptions works too.
	fresh := s.watch(t, st, kvcore.Prefixes("third."), kvcore.Cursor{})
	want(t, fresh.untilSynced(), "put third.z=y")
}
