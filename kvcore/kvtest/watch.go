package kvtest

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// quietFor is how long a test waits to be sure nothing more arrives.
const quietFor = 300 * time.Millisecond

func (s *suite) watchCases() []testCase {
	return []testCase{
		{"WatchStateSync", s.testWatchStateSync},
		{"WatchStateSyncCoversScanGap", s.testWatchScanGap},
		{"WatchDelta", s.testWatchDelta},
		{"WatchDeltaAtHead", s.testWatchDeltaAtHead},
		{"WatchPrefix", s.testWatchPrefix},
		{"WatchPrefixes", s.testWatchPrefixes},
		{"WatchPrefixesDelta", s.testWatchPrefixesDelta},
		{"WatchStringPrefixes", s.testWatchStringPrefixes},
		{"WatchOperations", s.testWatchOperations},
		{"WatchEmptyScope", s.testWatchEmptyScope},
		{"WatchStop", s.testWatchStop},
		{"WatchContextEnds", s.testWatchContext},
		{"WatchRevisionZeroIsNone", s.testWatchRevisionZero},
		{"WatchRefusesLastRevision", s.testWatchMaxCursor},
		{"WatchCursorAheadOfBucket", s.testWatchCursorAhead},
		{"WatchSlowReaderLosesNothing", s.testWatchSlowReader},
		{"WatchStateSyncUnderWrites", s.testWatchStateSyncUnderWrites},
	}
}

func (s *suite) testWatchStateSync(t *testing.T) {
	st := s.open(t, kvcore.StoreConfig{History: 5})
	s.put(t, st, "node.a", "1")
	s.put(t, st, "node.b", "2")
	s.put(t, st, "node.c", "3")
	s.put(t, st, "node.a", "4")
	s.del(t, st, "node.c")
	r := s.watch(t, st, kvcore.AllKeys(), kvcore.Cursor{})
	// The latest record of every key, markers included, in version order.
	want(t, r.untilSynced(), "put node.b=2", "put node.a=4", "delete node.c")
	s.put(t, st, "node.d", "5")
	want(t, r.updates(1), "put node.d=5")
	r.quiet(quietFor)
}

// A state-sync watch needs no scan before it: a write made between an
// earlier scan and the watch is in its initial state.
func (s *suite) testWatchScanGap(t *testing.T) {
	st := s.open(t, kvcore.StoreConfig{})
	ctx := s.ctx(t)
	s.put(t, st, "blackhole.1", "1")
	entries, err := st.Scan(ctx, "blackhole.")
	noErr(t, "scan", err)
	if len(entries) != 1 {
		t.Fatalf("scan found %d entries, want 1", len(entries))
	}
	baseline := entries[0].Version
	s.put(t, st, "blackhole.2", "2")

	r := s.watch(t, st, kvcore.Prefixes("blackhole."), kvcore.Cursor{})
	want(t, r.untilSynced(), "put blackhole.1=1", "put blackhole.2=2")
	s.put(t, st, "blackhole.3", "3")
	want(t, r.updates(1), "put blackhole.3=3")

	d := s.watch(t, st, kvcore.Prefixes("blackhole."), kvcore.CursorAt(baseline))
	want(t, d.untilSynced(), "put blackhole.2=2", "put blackhole.3=3")
}

func (s *suite) testWatchDelta(t *testing.T) {
	st := s.open(t, kvcore.StoreConfig{})
	s.put(t, st, "node.a", "1")
	cursor := s.put(t, st, "node.b", "2")
	s.put(t, st, "node.c", "3")
	s.put(t, st, "node.a", "1b")
	r := s.watch(t, st, kvcore.AllKeys(), kvcore.CursorAt(cursor))
	got := r.untilSynced()
	want(t, got, "put node.c=3", "put node.a=1b")
	for _, u := range got {
		if !after(u.Version, cursor) {
			t.Fatalf("delta update %s at %v is not after the cursor %v", u.Key, u.Version, cursor)
		}
	}
	s.put(t, st, "node.e", "4")
	want(t, r.updates(1), "put node.e=4")
}

func (s *suite) testWatchDeltaAtHead(t *testing.T) {
	st := s.open(t, kvcore.StoreConfig{})
	s.put(t, st, "node.a", "1")
	head := s.put(t, st, "node.b", "2")
	r := s.watch(t, st, kvcore.AllKeys(), kvcore.CursorAt(head))
	want(t, r.untilSynced())
	s.put(t, st, "node.c", "3")
	want(t, r.updates(1), "put node.c=3")
}

func (s *suite) testWatchPrefix(t *testing.T) {
	st := s.open(t, kvcore.StoreConfig{})
	r := s.watch(t, st, kvcore.Prefixes("node."), kvcore.Cursor{})
	want(t, r.untilSynced())
	s.put(t, st, "other.x", "1")
	s.put(t, st, "node.a", "2")
	want(t, r.updates(1), "put node.a=2")
	r.quiet(quietFor)
}

func (s *suite) testWatchPrefixes(t *testing.T) {
	st := s.open(t, kvcore.StoreConfig{})
	r := s.watch(t, st, kvcore.Prefixes("vpcA.", "vpcB."), kvcore.Cursor{})
	want(t, r.untilSynced())
	s.put(t, st, "vpcC.x", "0")
	s.put(t, st, "vpcA.a", "1")
	s.put(t, st, "vpcB.b", "2")
	want(t, r.updates(2), "put vpcA.a=1", "put vpcB.b=2")
	r.quiet(quietFor)
}

func (s *suite) testWatchPrefixesDelta(t *testing.T) {
	st := s.open(t, kvcore.StoreConfig{})
	s.put(t, st, "vpcA.a", "1")
	cursor := s.put(t, st, "vpcB.b", "2")
	s.put(t, st, "vpcC.x", "3")
	s.put(t, st, "vpcA.a2", "4")
	s.put(t, st, "vpcB.b2", "5")
	r := s.watch(t, st, kvcore.Prefixes("vpcA.", "vpcB."), kvcore.CursorAt(cursor))
	want(t, r.untilSynced(), "put vpcA.a2=4", "put vpcB.b2=5")
	r.quiet(quietFor)
}

// Prefixes are plain string prefixes, not subject tokens, and overlapping
// ones deliver each update once.
func (s *suite) testWatchStringPrefixes(t *testing.T) {
	st := s.open(t, kvcore.StoreConfig{})
	for _, k := range []string{"node", "node.a", "nodes", "nod", "other", "a.node", "a.x", "a.b.c", "a.bc"} {
		s.put(t, st, k, "v")
	}
	r := s.watch(t, st, kvcore.Prefixes("node", "a.no"), kvcore.Cursor{})
	want(t, r.untilSynced(), "put node=v", "put node.a=v", "put nodes=v", "put a.node=v")
	s.put(t, st, "nodes.x", "w")
	s.put(t, st, "nod.x", "w")
	s.put(t, st, "a.nx", "w")
	s.put(t, st, "a.nop", "w")
	want(t, r.updates(2), "put nodes.x=w", "put a.nop=w")
	r.quiet(quietFor)

	o := s.watch(t, st, kvcore.Prefixes("a.", "a.b.", "a.b", "a.bc"), kvcore.Cursor{})
	got := o.untilSynced()
	keys := make([]string, len(got))
	for i, u := range got {
		keys[i] = u.Key
	}
	slices.Sort(keys)
	equal(t, "keys of overlapping prefixes", keys, "a.b.c", "a.bc", "a.node", "a.nop", "a.nx", "a.x")
}

// Each kind of write arrives as its update. A watch that lags may skip
// records superseded meanwhile (it still ends with the latest record of
// every key), so each write waits for its update.
func (s *suite) testWatchOperations(t *testing.T) {
	st := s.open(t, kvcore.StoreConfig{})
	ctx := s.ctx(t)
	r := s.watch(t, st, kvcore.AllKeys(), kvcore.Cursor{})
	want(t, r.untilSynced())
	step := func(desc string, write func() error) {
		t.Helper()
		noErr(t, desc, write())
		u := r.updates(1)
		want(t, u, desc)
		if u[0].Op != kvcore.OpPut && u[0].Value != nil {
			t.Fatalf("%s carries a value", desc)
		}
	}
	var v kvcore.Version
	step("put k=1", func() error { _, err := st.Put(ctx, "k", []byte("1")); return err })
	step("delete k", func() error { return st.Delete(ctx, "k") })
	step("put k=2", func() (err error) { v, err = st.Put(ctx, "k", []byte("2")); return err })
	step("put k=", func() error { return st.DeleteVersion(ctx, "k", v) })
	step("purge k", func() error { return st.Purge(ctx, "k") })
	step("put e=", func() error { _, err := st.Put(ctx, "e", nil); return err })
	r.quiet(quietFor)
}

func (s *suite) testWatchEmptyScope(t *testing.T) {
	st := s.open(t, kvcore.StoreConfig{})
	ctx := s.ctx(t)
	_, err := st.Watch(ctx, kvcore.Scope{}, kvcore.Cursor{})
	wantErr(t, "watch of the zero scope", err, kvcore.ErrEmptyScope)
	_, err = st.Watch(ctx, kvcore.Prefixes(), kvcore.RevisionCursor(1))
	wantErr(t, "watch of no prefixes", err, kvcore.ErrEmptyScope)
}

func (s *suite) testWatchStop(t *testing.T) {
	st := s.open(t, kvcore.StoreConfig{})
	s.put(t, st, "a", "1")
	w, err := st.Watch(s.ctx(t), kvcore.AllKeys(), kvcore.Cursor{})
	noErr(t, "watch", err)
	w.Stop()
	w.Stop()
	for range w.Events() { // drains what was buffered, then ends
	}
	noErr(t, "Err after Stop", w.Err())
}

func (s *suite) testWatchContext(t *testing.T) {
	st := s.open(t, kvcore.StoreConfig{})
	ctx, cancel := context.WithCancel(s.ctx(t))
	w, err := st.Watch(ctx, kvcore.AllKeys(), kvcore.Cursor{})
	noErr(t, "watch", err)
	defer w.Stop()
	cancel()
	deadline := time.After(s.h.Wait)
	for {
		select {
		case _, ok := <-w.Events():
			if !ok {
				noErr(t, "Err after the context ended", w.Err())
				return
			}
		case <-deadline:
			t.Fatal("watch did not end with its context")
		}
	}
}

func (s *suite) testWatchRevisionZero(t *testing.T) {
	st := s.open(t, kvcore.StoreConfig{})
	if _, ok := s.put(t, st, "a", "1").Revision(); !ok {
		t.Skip("backend versions are not revisions")
	}
	r := s.watch(t, st, kvcore.AllKeys(), kvcore.RevisionCursor(0))
	want(t, r.untilSynced(), "put a=1")
}

func (s *suite) testWatchMaxCursor(t *testing.T) {
	st := s.open(t, kvcore.StoreConfig{})
	if _, ok := s.put(t, st, "a", "1").Revision(); !ok {
		t.Skip("backend versions are not revisions")
	}
	_, err := st.Watch(s.ctx(t), kvcore.AllKeys(), kvcore.RevisionCursor(math.MaxUint64))
	wantErr(t, "watch from the largest revision", err, kvcore.ErrWatchFailed)
}

// A cursor past the bucket's last revision comes from another incarnation
// of the bucket: resuming from it would wait for revisions that passed.
func (s *suite) testWatchCursorAhead(t *testing.T) {
	src := s.open(t, kvcore.StoreConfig{})
	var ahead kvcore.Version
	for range 5 {
		ahead = s.put(t, src, "a", "1")
	}
	st := s.open(t, kvcore.StoreConfig{})
	s.put(t, st, "a", "1")
	_, err := st.Watch(s.ctx(t), kvcore.AllKeys(), kvcore.CursorAt(ahead))
	wantErr(t, "watch from a revision the bucket never had", err, kvcore.ErrCursorExpired)
	_, err = st.Watch(s.ctx(t), kvcore.Prefixes("a"), kvcore.CursorAt(ahead))
	wantErr(t, "prefix watch from a revision the bucket never had", err, kvcore.ErrCursorExpired)
}

// Updates written while nobody reads all arrive later, in order.
func (s *suite) testWatchSlowReader(t *testing.T) {
	st := s.open(t, kvcore.StoreConfig{})
	r := s.watch(t, st, kvcore.Prefixes("k."), kvcore.Cursor{})
	want(t, r.untilSynced())
	const n = 700 // more than any event buffer this module uses
	for i := range n {
		s.put(t, st, fmt.Sprintf("k.%04d", i), "v")
	}
	got := r.updates(n)
	for i, u := range got {
		if u.Key != fmt.Sprintf("k.%04d", i) {
			t.Fatalf("update %d is %s", i, u.Key)
		}
	}
}
