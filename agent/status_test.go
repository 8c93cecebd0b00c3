package agent

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// fakeClock is a settable now func for status tests.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestStatus(staleAfter time.Duration) (*watchStatus, *fakeClock) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	w := &WatchConf{Name: "w", Bucket: "b", Plugin: "p", StaleAfter: staleAfter}
	return newWatchStatus(w, make(chan struct{}, 1), clock.now), clock
}

func at(rev uint64) kvcore.Cursor { return kvcore.RevisionCursor(rev) }

func TestStatusStaleAfterNotCaughtUpForLong(t *testing.T) {
	st, clock := newTestStatus(time.Minute)
	st.progress(kvcore.Progress{})
	if s := st.get(); s.State != stateSyncing || s.Ready || !s.Healthy() {
		t.Fatalf("initial sync: %+v", s)
	}
	clock.advance(2 * time.Minute)
	if s := st.get(); s.State != stateStale || s.Ready || s.Healthy() || !strings.Contains(s.Reason, "stale_after") {
		t.Fatalf("a sync lasting past stale_after: %+v, want stale", s)
	}
	st.progress(kvcore.Progress{Cursor: at(5), Synced: true})
	if s := st.get(); s.State != stateReady || !s.Ready || !s.BehindSince.IsZero() {
		t.Fatalf("caught up: %+v", s)
	}
	// A resync (Synced turns false) starts the clock again.
	st.progress(kvcore.Progress{Cursor: at(5)})
	clock.advance(30 * time.Second)
	if s := st.get(); s.State != stateSyncing || s.Ready {
		t.Fatalf("resyncing within stale_after: %+v", s)
	}
	clock.advance(time.Minute)
	if s := st.get(); s.State != stateStale {
		t.Fatalf("resyncing past stale_after: %+v", s)
	}
}

func TestStatusStaleAfterZeroNeverStale(t *testing.T) {
	st, clock := newTestStatus(0)
	st.progress(kvcore.Progress{})
	clock.advance(24 * time.Hour)
	if s := st.get(); s.State != stateSyncing || !s.Healthy() {
		t.Fatalf("stale_after = 0: %+v", s)
	}
}

func TestStatusDetachedUntilReattached(t *testing.T) {
	st, clock := newTestStatus(time.Minute)
	st.progress(kvcore.Progress{Cursor: at(3), Synced: true})
	// The backend cannot re-create the watch's consumer; the loop hears
	// nothing and still thinks it is caught up.
	clock.advance(time.Second)
	st.attached(errors.New("maximum consumers limit reached"), false)
	s := st.get()
	if s.State != stateDetached || s.Ready || s.Healthy() || !strings.Contains(s.Reason, "maximum consumers limit reached") {
		t.Fatalf("detached: %+v", s)
	}
	if s.LastFailure == "" || !s.LastFailureAt.Equal(clock.t) {
		t.Errorf("last failure not kept: %+v", s)
	}
	st.attached(nil, false)
	s = st.get()
	if s.State != stateReady || !s.Ready || s.LastError != "" {
		t.Fatalf("re-attached: %+v", s)
	}
	if !strings.Contains(s.LastFailure, "maximum consumers") {
		t.Errorf("last_failure lost after recovery: %+v", s)
	}
}

func TestStatusLastErrorClearsOnRecovery(t *testing.T) {
	st, clock := newTestStatus(time.Minute)
	st.progress(kvcore.Progress{Cursor: at(3), Synced: true})
	clock.advance(time.Second)
	failedAt := clock.t
	st.progress(kvcore.Progress{Cursor: at(3), Synced: true, Err: errors.New("watch: connection lost"), Failures: 1})
	if s := st.get(); s.State != stateFailing || s.LastError == "" {
		t.Fatalf("failing: %+v", s)
	}
	// The loop opens a new watch: the session that failed is over, even if
	// the loop reports the old error again before anything else happens.
	st.attached(nil, true)
	st.progress(kvcore.Progress{Cursor: at(3), Synced: true, Err: errors.New("watch: connection lost"), Failures: 1})
	s := st.get()
	if s.State != stateReady || s.LastError != "" {
		t.Fatalf("after a new watch attached: %+v, want ready with no last_error", s)
	}
	if s.LastFailure != "watch: connection lost" || !s.LastFailureAt.Equal(failedAt) {
		t.Errorf("last_failure = %q at %v", s.LastFailure, s.LastFailureAt)
	}
	// A new failure after that counts again.
	st.progress(kvcore.Progress{Cursor: at(3), Synced: true, Err: errors.New("apply: plugin trapped"), Failures: 2})
	if s := st.get(); s.State != stateFailing || s.LastError != "apply: plugin trapped" {
		t.Fatalf("a new failure: %+v", s)
	}
	st.progress(kvcore.Progress{Cursor: at(4), Synced: true})
	if s := st.get(); s.State != stateReady || s.LastError != "" {
		t.Fatalf("recovered: %+v", s)
	}
}

func TestStatusResyncShowsNoStaleCursor(t *testing.T) {
	st, _ := newTestStatus(time.Minute)
	st.progress(kvcore.Progress{Cursor: at(900), Synced: true})
	// The bucket was re-created: the loop resyncs, its fold keeps the old
	// cursor until the full batch is applied.
	st.progress(kvcore.Progress{Cursor: at(900)})
	if s := st.get(); s.Revision != 0 || s.Cursor != "none" || s.Synced {
		t.Fatalf("resyncing: %+v, want no revision from the old bucket", s)
	}
	// Its sync of an empty bucket commits no cursor.
	st.progress(kvcore.Progress{Cursor: kvcore.Cursor{}, Synced: true})
	if s := st.get(); s.Revision != 0 || s.Cursor != "none" || s.State != stateReady {
		t.Fatalf("resynced an empty bucket: %+v", s)
	}
	st.progress(kvcore.Progress{Cursor: at(1), Synced: true})
	if s := st.get(); s.Revision != 1 {
		t.Fatalf("first change in the new bucket: %+v", s)
	}
}

// A resync that ends on the revision the fold was at before (a bucket that
// went back in time and reached it again: the sync's commit leaves the
// cursor as it was) shows that revision once it is done, not none.
func TestStatusResyncEndingOnTheOldRevisionShowsIt(t *testing.T) {
	st, _ := newTestStatus(time.Minute)
	st.progress(kvcore.Progress{Cursor: at(16), Synced: true})
	st.syncing()
	st.progress(kvcore.Progress{Cursor: at(16)})
	if s := st.get(); s.Revision != 0 || s.Cursor != "none" {
		t.Fatalf("resyncing: %+v, want no revision from before the resync", s)
	}
	st.progress(kvcore.Progress{Cursor: at(16), Synced: true})
	if s := st.get(); s.Revision != 16 || s.Cursor != "rev 16" || s.State != stateReady {
		t.Fatalf("resynced onto revision 16: %+v, want revision 16", s)
	}
}

func TestStatusHeld(t *testing.T) {
	st, clock := newTestStatus(0)
	st.progress(kvcore.Progress{Cursor: at(3), Synced: true})
	st.hold(&HoldStatus{KeysBefore: 20, Removals: 20, Since: clock.t})
	s := st.get()
	if s.State != stateHeld || s.Ready || s.Healthy() || !strings.Contains(s.Reason, "resync --confirm w") {
		t.Fatalf("held: %+v", s)
	}
	// The reason goes beside the state (once's error, fleet records,
	// slipagent status): it does not say "held" again.
	if msg := (&WatchesError{Watches: []WatchStatus{s}}).Error(); strings.Count(msg, "held") != 1 {
		t.Errorf("once's error says held more than once: %q", msg)
	}
	st.hold(nil)
	if s := st.get(); s.State != stateReady {
		t.Fatalf("released: %+v", s)
	}
}

func TestSummaryNamesUnhealthyWatches(t *testing.T) {
	got := summary([]WatchStatus{
		{Name: "a", State: stateReady, Synced: true},
		{Name: "b", State: stateHeld, Synced: true},
		{Name: "c", State: stateDetached, Synced: true},
		{Name: "d", State: stateStale},
	})
	want := "3/4 watches caught up, detached: c, stale: d, held: b"
	if got != want {
		t.Errorf("summary = %q, want %q", got, want)
	}
}

func TestStatusSyncAfterRestartShowsNoOldCursor(t *testing.T) {
	st, _ := newTestStatus(time.Minute)
	// A restarted agent's fold holds a cursor of the bucket as it was; the
	// loop finds it expired and opens a watch from no cursor.
	st.progress(kvcore.Progress{Cursor: at(900)})
	if s := st.get(); s.Revision != 900 {
		t.Fatalf("resuming: %+v", s)
	}
	st.syncing()
	if s := st.get(); s.Revision != 0 || s.Cursor != "none" {
		t.Fatalf("syncing from scratch: %+v, want no revision from the old bucket", s)
	}
	// The sync of an empty bucket commits no cursor.
	st.progress(kvcore.Progress{Cursor: kvcore.Cursor{}, Synced: true})
	if s := st.get(); s.Revision != 0 {
		t.Fatalf("synced an empty bucket: %+v", s)
	}
	st.progress(kvcore.Progress{Cursor: at(3), Synced: true})
	if s := st.get(); s.Revision != 3 || s.Cursor != at(3).String() {
		t.Fatalf("first position in the new bucket: %+v", s)
	}
}

// A failed drift repair makes the watch failing like a failed batch; a batch
// applied meanwhile does not end it (its files alone do not repair the
// rest), a failing batch shows first, and a repair that succeeds ends it.
func TestStatusFailedDriftRepair(t *testing.T) {
	st, _ := newTestStatus(0)
	st.progress(kvcore.Progress{Cursor: at(5), Synced: true})
	st.repairFailed(errors.New("repairing drift: in the way"))
	st.repairFailed(errors.New("repairing drift: still in the way"))
	if s := st.get(); s.State != stateFailing || s.Ready || s.Healthy() || s.Failures != 2 || s.LastError != "repairing drift: still in the way" || s.BehindSince.IsZero() {
		t.Fatalf("after two failed repairs: %+v", s)
	}
	st.progress(kvcore.Progress{Cursor: at(6), Synced: true})
	if s := st.get(); s.State != stateFailing || s.Failures != 2 {
		t.Fatalf("a batch applied while the repair fails: %+v, want still failing", s)
	}
	st.progress(kvcore.Progress{Cursor: at(6), Synced: true, Err: errors.New("apply: hook"), Failures: 1})
	if s := st.get(); s.State != stateFailing || s.LastError != "apply: hook" || s.Failures != 1 {
		t.Fatalf("a failing batch too: %+v, want the batch's failure", s)
	}
	st.progress(kvcore.Progress{Cursor: at(7), Synced: true})
	if s := st.get(); s.State != stateFailing || s.LastError != "repairing drift: still in the way" {
		t.Fatalf("the batch recovered, the repair did not: %+v", s)
	}
	st.repaired()
	if s := st.get(); s.State != stateReady || !s.Ready || s.Failures != 0 || s.LastError != "" || s.LastFailure != "apply: hook" || !s.BehindSince.IsZero() {
		t.Fatalf("after a repair: %+v", s)
	}
}

// A session that ended because its plugin did not load leaves the watch
// failing while the next session attaches to the bucket and its loop
// starts (both used to end a session's failure, so a broken module's watch
// looked healthy at every restart), until a load succeeds.
func TestStatusKeepsAPluginLoadFailureUntilALoad(t *testing.T) {
	st, _ := newTestStatus(0)
	st.loadFailed(&loadError{errors.New("module m.wasm: invalid WebAssembly module")})
	st.attached(nil, true)
	st.progress(kvcore.Progress{})
	if s := st.get(); s.State != stateFailing || !strings.Contains(s.LastError, "invalid WebAssembly module") {
		t.Fatalf("after the next session started: state %s, error %q; want failing with the load error", s.State, s.LastError)
	}
	st.loaded()
	if s := st.get(); !s.Healthy() {
		t.Fatalf("after a load: state %s (%s), want healthy", s.State, s.LastError)
	}
}

// With drift checks on, a watch caught up is not ready before its first
// drift check is over: outputs changed while the agent was stopped are
// repaired by then, so ready means the files equal the bucket.
func TestStatusNotReadyBeforeTheFirstDriftCheck(t *testing.T) {
	st := newWatchStatus(&WatchConf{Name: "w", Bucket: "b", DriftCheck: time.Minute}, make(chan struct{}, 1), time.Now)
	st.progress(kvcore.Progress{Cursor: at(3), Synced: true})
	if s := st.get(); s.Ready || s.State != stateSyncing || !strings.Contains(s.Reason, "drift") {
		t.Fatalf("caught up, first drift check not over: %+v, want syncing (checking for drift)", s)
	}
	// systemd hears READY=1 once it is over, not before (and the agent
	// does not then warn of a watch that is not ready).
	if st.get().Settled() {
		t.Fatal("settled before its first drift check is over")
	}
	st.driftChecked()
	if s := st.get(); !s.Ready || !s.Settled() {
		t.Fatalf("after the first drift check: %+v, want ready and settled", s)
	}
}

// A watch trailing its bucket (records pending after the last it applied,
// as under a burst) is behind: it stays ready, its behind_since shows how
// long, and past stale_after it is stale; applying the last record ends it.
func TestStatusTrailingTheBucketIsBehind(t *testing.T) {
	st, clock := newTestStatus(time.Minute)
	st.progress(kvcore.Progress{Cursor: at(5), Synced: true})
	start := clock.now()
	st.progress(kvcore.Progress{Cursor: at(6), Synced: true, Pending: 18000})
	if s := st.get(); s.State != stateReady || !s.BehindSince.Equal(start) || s.Pending != 18000 {
		t.Fatalf("trailing the bucket: %+v, want ready, behind since %v, 18000 pending", s, start)
	}
	clock.advance(2 * time.Minute)
	st.progress(kvcore.Progress{Cursor: at(9000), Synced: true, Pending: 9000})
	if s := st.get(); s.State != stateStale || s.Ready || !s.BehindSince.Equal(start) {
		t.Fatalf("trailing for longer than stale_after: %+v, want stale", s)
	}
	st.progress(kvcore.Progress{Cursor: at(18006), Synced: true})
	if s := st.get(); s.State != stateReady || !s.BehindSince.IsZero() || s.Pending != 0 {
		t.Fatalf("caught up again: %+v", s)
	}
}

// A batch whose plugin logged several error lines keeps them all in its
// AppliedError (one key's line does not hide another's), up to a bound
// past which the lines left out are counted; the next batch starts over.
func TestAppliedErrorJoinsTheBatchsLines(t *testing.T) {
	st, clock := newTestStatus(0)
	batch := func(lines ...string) string {
		st.batchStarted(clock.now())
		for _, l := range lines {
			st.pluginLogged(slog.LevelError, l)
		}
		st.pluginLogged(slog.LevelWarn, "a warning is not an error")
		st.applied(kvcore.Batch{}, clock.now())
		st.batchEnded()
		return st.get().PluginLog.AppliedError
	}
	if got, want := batch(`skipping key "a"`, `skipping key "b"`), `skipping key "a"; skipping key "b"`; got != want {
		t.Errorf("two lines: applied_error %q, want %q", got, want)
	}
	long := strings.Repeat("x", 100)
	got := batch(long, long, long, long, long, long, "short")
	if want := strings.Repeat(long+"; ", 3) + long + " (and 3 more)"; got != want {
		t.Errorf("six long lines and a short one: applied_error %q, want %q", got, want)
	}
	if len(got) > maxPluginError {
		t.Errorf("applied_error of %d bytes, past a record's %d: its count would be cut", len(got), maxPluginError)
	}
	if got := batch(); got != "" {
		t.Errorf("a batch with no error line: applied_error %q", got)
	}
	// A plugin's line may be 4096 bytes: the first is cut, leaving room
	// for the count within a fleet record's plugin_error.
	got = batch(strings.Repeat("y", 4096), "second")
	if !strings.HasSuffix(got, "… (and 1 more)") || len(got) > maxPluginError {
		t.Errorf("a 4096-byte line and another: applied_error of %d bytes ending %q", len(got), got[max(0, len(got)-20):])
	}
}

// A watch applying a batch is behind from the batch's start, and once that
// lasts past stale_after its reason says what it is doing.
func TestStatusBusyIsBehind(t *testing.T) {
	st, clock := newTestStatus(time.Minute)
	st.progress(kvcore.Progress{Cursor: at(5), Synced: true})
	started := clock.now()
	st.batchStarted(started)
	if s := st.get(); s.State != stateReady || !s.BehindSince.Equal(started) {
		t.Fatalf("a batch just started: state %s, behind since %v; want ready, behind since %v", s.State, s.BehindSince, started)
	}
	clock.advance(2 * time.Minute)
	if s := st.get(); s.State != stateStale || !strings.Contains(s.Reason, "applying a batch since") {
		t.Fatalf("a batch past stale_after: state %s, reason %q", s.State, s.Reason)
	}
	st.batchEnded()
	st.progress(kvcore.Progress{Cursor: at(6), Synced: true})
	if s := st.get(); s.State != stateReady || !s.BehindSince.IsZero() {
		t.Fatalf("the batch done: state %s, behind since %v", s.State, s.BehindSince)
	}
}

// A batch handed over while a drift repair goes on waits for the repair's
// turn: the watch stays behind when the repair ends, since the batch's
// start, and current once the batch's report says so.
func TestStatusABatchWaitingForARepairIsBehind(t *testing.T) {
	st, clock := newTestStatus(time.Minute)
	st.progress(kvcore.Progress{Cursor: at(5), Synced: true})
	st.repairStarted(clock.now())
	clock.advance(10 * time.Second)
	handed := clock.now()
	st.batchStarted(handed)
	clock.advance(10 * time.Second)
	st.repairEnded()
	if s := st.get(); s.BehindSince.IsZero() || !s.BusySince.Equal(handed) {
		t.Fatalf("the repair over, the batch waiting: behind since %v, busy since %v; want behind, busy since %v", s.BehindSince, s.BusySince, handed)
	}
	st.batchEnded()
	st.progress(kvcore.Progress{Cursor: at(6), Synced: true})
	if s := st.get(); !s.BehindSince.IsZero() || !s.BusySince.IsZero() {
		t.Fatalf("the batch applied: behind since %v, busy since %v", s.BehindSince, s.BusySince)
	}
	st.repairStarted(clock.now())
	st.repairEnded()
	if s := st.get(); !s.BehindSince.IsZero() {
		t.Fatalf("a repair alone over: behind since %v", s.BehindSince)
	}
}

// The end of a batch leaves behind_since to WatchApplied's report of where
// the batch left the watch: with updates that came meanwhile (Pending) it
// runs on through the next batch, counted from the first one's start.
func TestStatusBehindRunsOnThroughTheNextBatch(t *testing.T) {
	st, clock := newTestStatus(time.Minute)
	st.progress(kvcore.Progress{Cursor: at(5), Synced: true})
	first := clock.now()
	st.batchStarted(first)
	clock.advance(50 * time.Second)
	st.batchEnded()
	st.progress(kvcore.Progress{Cursor: at(6), Synced: true, Pending: 3}) // came meanwhile
	st.batchStarted(clock.now())
	clock.advance(20 * time.Second)
	if s := st.get(); s.State != stateStale || !s.BehindSince.Equal(first) {
		t.Fatalf("the next batch, 70s after the first began: state %s, behind since %v; want stale, behind since %v", s.State, s.BehindSince, first)
	}
	st.batchEnded()
	st.progress(kvcore.Progress{Cursor: at(9), Synced: true})
	if s := st.get(); s.State != stateReady || !s.BehindSince.IsZero() {
		t.Fatalf("caught up: state %s, behind since %v", s.State, s.BehindSince)
	}
}

// A watch whose session failed stays behind once a new one attaches, until
// WatchApplied reports it caught up; a consumer the backend re-created
// within the session leaves it current at once.
func TestStatusAttachKeepsBehindUntilCaughtUp(t *testing.T) {
	st, clock := newTestStatus(time.Minute)
	st.progress(kvcore.Progress{Cursor: at(5), Synced: true})
	failed := clock.now()
	st.progress(kvcore.Progress{Cursor: at(5), Synced: true, Err: errors.New("consumer lost"), Failures: 1})
	clock.advance(time.Second)
	st.attached(nil, true)
	if s := st.get(); s.State != stateReady || !s.BehindSince.Equal(failed) {
		t.Fatalf("a new session attached: state %s, behind since %v; want ready (no error), behind since %v", s.State, s.BehindSince, failed)
	}
	st.progress(kvcore.Progress{Cursor: at(5), Synced: true})
	if s := st.get(); !s.BehindSince.IsZero() {
		t.Fatalf("caught up: behind since %v", s.BehindSince)
	}

	st.attached(errors.New("no responders"), false)
	if s := st.get(); s.State != stateDetached || s.BehindSince.IsZero() {
		t.Fatalf("consumer re-creation failing: state %s, behind since %v", s.State, s.BehindSince)
	}
	st.attached(nil, false)
	if s := st.get(); s.State != stateReady || !s.BehindSince.IsZero() {
		t.Fatalf("consumer re-created: state %s, behind since %v; want ready and current", s.State, s.BehindSince)
	}
}
