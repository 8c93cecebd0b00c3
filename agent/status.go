package agent

import (
	"cmp"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// Watch states, as /status and metrics report them. Only "ready" is ready;
// "failing", "detached", "stale" and "held" are also unhealthy.
const (
	stateStarting = "starting" // setting up: plugin, fold, bucket
	stateSyncing  = "syncing"  // running, not caught up yet (or resyncing)
	stateReady    = "ready"    // caught up; following live changes
	stateFailing  = "failing"  // a step keeps failing and is being retried
	stateDetached = "detached" // the watch on the bucket cannot be (re-)created
	stateStale    = "stale"    // not caught up for longer than stale_after
	stateHeld     = "held"     // a mass deletion waits for confirmation
)

var watchStates = []string{stateStarting, stateSyncing, stateReady, stateFailing, stateDetached, stateStale, stateHeld}

// WatchStatus describes one watch at a point in time.
type WatchStatus struct {
	Name   string `json:"name"`
	Bucket string `json:"bucket"`
	Plugin string `json:"plugin"`
	State  string `json:"state"`
	// Ready is true when the watch's outputs follow its bucket: it is caught
	// up and nothing fails, lags or is held. Reason says why not.
	Ready  bool   `json:"ready"`
	Reason string `json:"reason,omitempty"`
	// Synced is true while the watch is caught up with its bucket; it turns
	// false while a resync rebuilds the fold.
	Synced bool `json:"synced"`
	// Cursor and Revision are where the watch's fold is checkpointed in the
	// bucket it reads now: "none" and 0 while a resync has not yet reached
	// a position in it.
	Cursor   string `json:"cursor"`
	Revision uint64 `json:"revision"`
	// Failures counts consecutive failures; LastError is the failure going
	// on, empty once the watch recovered. LastFailure and LastFailureAt keep
	// the latest failure after recovery.
	Failures      int       `json:"consecutive_failures"`
	LastError     string    `json:"last_error,omitempty"`
	LastFailure   string    `json:"last_failure,omitempty"`
	LastFailureAt time.Time `json:"last_failure_at,omitzero"`
	// BehindSince is since when the watch has not been caught up (zero
	// while it is): syncing, failing, detached, held, trailing the bucket
	// (Pending), or applying a batch (BusySince), which a hook's splay or
	// min_interval can make last.
	BehindSince time.Time `json:"behind_since,omitzero"`
	// Pending is how many records the watch trailed the bucket by when it
	// applied its last batch: those the server had yet to send, or those
	// that came while the batch was applied, whichever is more. Above 0
	// while it trails the bucket, as under a burst of writes or after a
	// batch whose hooks waited.
	Pending uint64 `json:"pending,omitempty"`
	// Held describes the batch held for confirmation, if any.
	Held        *HoldStatus `json:"held,omitempty"`
	LastApplied time.Time   `json:"last_applied,omitzero"`
	Batches     uint64      `json:"batches"`
	Updates     uint64      `json:"updates"`
	// BusySince is when the batch being applied was handed over (it may
	// wait for a drift repair to end), or when the drift repair going on
	// started, whichever is earlier; zero when idle.
	BusySince time.Time `json:"busy_since,omitzero"`
	// Quarantined lists the latest local state (fold, hook journal, state
	// file, record of committed outputs, placement) that did not load and
	// was moved aside, oldest first.
	Quarantined []QuarantinedState `json:"quarantined,omitempty"`
	// PluginLog counts what the watch's plugin logged at warn and error
	// level since the watch started (a reload that changes the watch
	// restarts it); nil while it logged neither.
	PluginLog *PluginLogStatus `json:"plugin_log,omitempty"`
}

// PluginLogStatus counts the lines a watch's plugin logged at warn level
// (its stderr included) and at error level, with its last error line. A
// plugin logs an error for what it leaves out of its outputs while the
// batch succeeds (the example plugins: a key that is not a valid path or
// upstream), so the watch can be ready with outputs short of the bucket:
// this is where that shows.
type PluginLogStatus struct {
	Warnings    uint64    `json:"warnings"`
	Errors      uint64    `json:"errors"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// AppliedError is the error lines the plugin logged applying the batch
	// that brought the watch to its revision, joined by "; " ("" when that
	// batch logged none); lines that would take it past about 500 bytes
	// are left out and counted, "(and N more)". Lines of a batch that
	// failed, or of a drift repair's render, leave it as it is. The fleet
	// report carries it.
	AppliedError string `json:"applied_error,omitempty"`
}

// QuarantinedState is damaged local state a watch moved aside and rebuilt.
type QuarantinedState struct {
	Kind   string    `json:"kind"`   // fold, journal, state, record or placement
	Path   string    `json:"path"`   // where it is now
	Reason string    `json:"reason"` // why it did not load
	At     time.Time `json:"at"`
}

// HoldStatus describes a batch the deletion guard holds: it would remove
// Removals of the KeysBefore keys the watch held. Checked is when this run
// of the agent last found the batch held, not confirmed (zero before it
// first looked: a hold an earlier run left may be confirmed already).
type HoldStatus struct {
	KeysBefore int `json:"keys_before"`
	Removals   int `json:"removals"`
	// Outputs: the hold counts output files (a plugin result would remove
	// them), not keys.
	Outputs bool      `json:"outputs,omitempty"`
	Since   time.Time `json:"since"`
	Checked time.Time `json:"checked,omitzero"`
}

// Unit is what the hold counts: "keys", or "output files".
func (h HoldStatus) Unit() string { return holdUnit(h.Outputs) }

// Healthy reports whether the watch is neither failing, detached, stale nor
// held.
func (s WatchStatus) Healthy() bool {
	switch s.State {
	case stateFailing, stateDetached, stateStale, stateHeld:
		return false
	}
	return true
}

// Settled reports whether the watch's start is over: it caught up and its
// first drift check is over (it is syncing until then), or it got stuck in
// a way that only a change or an operator fixes. systemd gets READY once
// every watch settled, so one broken watch cannot hold the whole agent in
// "activating".
func (s WatchStatus) Settled() bool {
	return s.Synced && s.State != stateSyncing || s.Failures > 0 || !s.Healthy()
}

// watchStatus is a WatchStatus updated by the watch's goroutines (and the
// NATS log tap) and read by the HTTP and systemd reporters. changed is poked
// (without blocking) when something changes, so systemd hears at once.
//
// The state is derived when read, from what the watch reported:
//   - the loop's progress (caught up or not, the failure being retried);
//   - whether its watch on the bucket is attached: a failure to create the
//     watch, or to re-create its consumer after a server restart (which the
//     NATS backend retries internally without telling the loop), makes it
//     detached until an attempt succeeds;
//   - whether its last drift repair failed: that makes it failing as a
//     failed batch does, until a repair or a full render succeeds or a
//     drift check finds the outputs equal to their record;
//   - the deletion guard's hold;
//   - how long it has not been caught up: past stale_after it is stale.
type watchStatus struct {
	mu         sync.Mutex
	s          WatchStatus
	staleAfter time.Duration
	now        func() time.Time
	changed    chan<- struct{}

	started bool // the loop reported at least once
	// unchecked: drift checks are on and the first one after the watch
	// caught up is not over; outputs changed while the agent was stopped
	// may not be repaired yet.
	unchecked bool
	err       string // the failure going on ("" when none)
	attachErr string // why the watch on the bucket cannot be (re-)created
	// repairErr is why the last drift repair failed ("" once one
	// succeeded), repairFailures how many failed in a row.
	repairErr      string
	repairFailures int
	// overFailures: a progress report whose Failures is at most this
	// carries an error of a session that ended, superseded by a watch that
	// attached since.
	overFailures int
	// loadErr is why the plugin did not load in the last session that
	// tried: a new watch on the bucket does not end that failure (the next
	// session loads the same module), a load that succeeds does.
	loadErr string
	// batchErr is the error lines the plugin logged since the batch (or
	// drift repair) being applied started, joined, and batchErrMore the
	// lines left out from the first past maxAppliedErrorLines on; applied
	// makes them the AppliedError.
	batchErr     string
	batchErrMore int
	// batchSince is when the batch being applied was handed over (it may
	// wait for a drift repair's turn), repairSince when the drift repair
	// going on started; zero when none. BusySince is the earlier.
	batchSince, repairSince time.Time
	resyncFrom              *kvcore.Cursor // the old cursor while a resync has not moved it
	cursor                  kvcore.Cursor  // the fold's cursor, as last reported
}

func newWatchStatus(w *WatchConf, changed chan<- struct{}, now func() time.Time) *watchStatus {
	st := &watchStatus{
		s:          WatchStatus{Name: w.Name, Bucket: w.Bucket, Plugin: w.Plugin, Cursor: "none"},
		staleAfter: w.StaleAfter,
		now:        now,
		unchecked:  w.DriftCheck > 0,
		changed:    changed,
	}
	st.s.BehindSince = now()
	return st
}

// pluginLogged counts a line the watch's plugin logged at warn level or
// above (host.InstanceConfig.OnLog).
func (w *watchStatus) pluginLogged(level slog.Level, msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.s.PluginLog == nil {
		w.s.PluginLog = &PluginLogStatus{}
	}
	l := w.s.PluginLog
	if level < slog.LevelError {
		l.Warnings++
		return
	}
	l.Errors++
	l.LastError, l.LastErrorAt = msg, w.now()
	switch {
	case w.batchErr == "":
		w.batchErr = clip(msg, maxAppliedErrorLines)
	case w.batchErrMore == 0 && len(w.batchErr)+len("; ")+len(msg) <= maxAppliedErrorLines:
		w.batchErr += "; " + msg
	default:
		w.batchErrMore++
	}
}

// maxAppliedErrorLines bounds the lines joined in an AppliedError, leaving
// room for "(and N more)" within a fleet record's plugin_error.
const maxAppliedErrorLines = maxPluginError - len(" (and 999999 more)")

// driftChecked records that the watch's first drift check is over.
func (w *watchStatus) driftChecked() {
	w.mu.Lock()
	changed := w.unchecked
	w.unchecked = false
	w.mu.Unlock()
	if changed {
		w.poke()
	}
}

// poke tells the reporter something changed; a pending poke is enough.
func (w *watchStatus) poke() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

func (w *watchStatus) get() WatchStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.s
	if l := s.PluginLog; l != nil { // pluginLogged changes it in place
		copied := *l
		s.PluginLog = &copied
	}
	s.LastError = w.err
	if s.LastError == "" {
		s.LastError = w.loadErr
	}
	if s.LastError == "" && w.repairErr != "" {
		s.LastError, s.Failures = w.repairErr, w.repairFailures
	}
	stale := w.staleAfter > 0 && !s.BehindSince.IsZero() && w.now().Sub(s.BehindSince) > w.staleAfter
	switch {
	case s.Held != nil:
		s.State = stateHeld
		s.Reason = fmt.Sprintf("a batch would remove %d of the watch's %d %s; check the bucket, then run `slipagent resync --confirm %s` to apply it", s.Held.Removals, s.Held.KeysBefore, holdUnit(s.Held.Outputs), s.Name)
	case w.attachErr != "":
		s.State, s.Reason = stateDetached, "cannot watch bucket "+s.Bucket+": "+w.attachErr
	case s.LastError != "":
		s.State, s.Reason = stateFailing, s.LastError
	case stale:
		s.State = stateStale
		s.Reason = fmt.Sprintf("not caught up with bucket %s for more than stale_after (%v)", s.Bucket, w.staleAfter)
		if !s.BusySince.IsZero() {
			s.Reason += fmt.Sprintf(": applying a batch since %s (its hooks may be waiting for their splay or min_interval)", s.BusySince.UTC().Format(time.RFC3339))
		}
	case !w.started:
		s.State, s.Reason = stateStarting, "starting"
	case !s.Synced:
		s.State, s.Reason = stateSyncing, "not caught up with bucket "+s.Bucket+" yet"
	case w.unchecked:
		s.State, s.Reason = stateSyncing, "checking its outputs for drift since the watch started"
	default:
		s.State = stateReady
	}
	if stale && s.State != stateStale {
		s.Reason += fmt.Sprintf(" (not caught up for more than stale_after, %v)", w.staleAfter)
	}
	s.Ready = s.State == stateReady
	return s
}

// behind keeps BehindSince: set when the watch stops being caught up and
// current, cleared when it is again.
func (w *watchStatus) behind() {
	current := w.started && w.s.Synced && w.s.Pending == 0 && w.s.BusySince.IsZero() && w.err == "" && w.repairErr == "" && w.attachErr == "" && w.s.Held == nil
	switch {
	case current:
		w.s.BehindSince = time.Time{}
	case w.s.BehindSince.IsZero():
		w.s.BehindSince = cmp.Or(w.s.BusySince, w.now())
	}
	w.poke()
}

func (w *watchStatus) fail(msg string) {
	w.err = msg
	w.s.LastFailure, w.s.LastFailureAt = msg, w.now()
}

// progress records what WatchApplied reports.
func (w *watchStatus) progress(p kvcore.Progress) {
	w.mu.Lock()
	defer w.mu.Unlock()
	defer w.behind()
	w.started = true
	w.cursor = p.Cursor
	switch {
	case w.s.Synced && !p.Synced:
		w.resyncing()
	case !w.s.Synced && p.Synced:
		// The resync committed: its cursor is the bucket's, even one
		// equal to the old (a bucket that went back in time and reached
		// that revision again).
		w.resyncFrom = nil
	}
	w.s.Synced, w.s.Pending = p.Synced, p.Pending
	w.showCursor()
	w.s.Failures = p.Failures
	switch {
	case p.Err == nil:
		w.err, w.overFailures = "", 0
	case p.Failures > w.overFailures:
		w.fail(p.Err.Error())
	}
}

// resyncing records that a sync from the bucket's current state starts: the
// fold's cursor names a position in the bucket as it was, which may be gone
// (re-created, purged), so none is shown until the resync moves it or ends.
func (w *watchStatus) resyncing() {
	old := w.cursor
	w.resyncFrom = &old
}

func (w *watchStatus) showCursor() {
	if w.resyncFrom != nil && w.cursor == *w.resyncFrom {
		w.s.Cursor, w.s.Revision = "none", 0
		return
	}
	w.resyncFrom = nil
	w.s.Cursor = w.cursor.String()
	w.s.Revision, _ = w.cursor.Revision()
}

// syncing records that the loop opens a watch from no cursor: a sync from
// the bucket's current state.
func (w *watchStatus) syncing() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.cursor.IsNone() {
		w.resyncing()
		w.showCursor()
		w.poke()
	}
}

// failed records a failure to set the watch up or keep it running.
func (w *watchStatus) failed(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	defer w.behind()
	w.fail(err.Error())
	w.s.Failures++
}

// loadFailed records a session that ended because its plugin did not load.
func (w *watchStatus) loadFailed(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	defer w.behind()
	w.loadErr = err.Error()
	w.fail(w.loadErr)
	w.s.Failures++
}

// loaded records that the watch's plugin loaded.
func (w *watchStatus) loaded() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.loadErr = ""
}

// attached records whether the watch on the bucket could be (re-)created:
// err is nil when it could. A new watch ends the failure of the session
// before it.
func (w *watchStatus) attached(err error, newWatch bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.attachErr = err.Error()
		w.s.LastFailure, w.s.LastFailureAt = w.attachErr, w.now()
		w.behind()
		return
	}
	w.attachErr = ""
	if newWatch && w.err != "" {
		// BehindSince stays: the new session is not caught up before
		// WatchApplied says so (it reports the recovery from the failure
		// that ended the last one once it caught up, or applied a batch).
		w.err, w.overFailures = "", w.s.Failures
		w.poke()
		return
	}
	w.behind()
}

// repairFailed records a drift repair that failed (see driftRepair).
func (w *watchStatus) repairFailed(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	defer w.behind()
	w.repairErr = err.Error()
	w.repairFailures++
	w.s.LastFailure, w.s.LastFailureAt = w.repairErr, w.now()
}

// repaired records that the outputs are known to equal their record again:
// a drift repair or a full render succeeded, or a drift check found no
// drift. It ends a failure repairFailed recorded.
func (w *watchStatus) repaired() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.repairErr == "" {
		return
	}
	w.repairErr, w.repairFailures = "", 0
	w.behind()
}

// hold records the guard's hold (nil when released).
func (w *watchStatus) hold(h *HoldStatus) {
	w.mu.Lock()
	defer w.mu.Unlock()
	defer w.behind()
	w.s.Held = h
}

// holding records that a batch is being held now.
func (w *watchStatus) holding(at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.s.Held != nil {
		h := *w.s.Held // readers may hold the old one
		h.Checked = at
		w.s.Held = &h
	}
}

func (w *watchStatus) applied(b kvcore.Batch, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.s.Batches++
	w.s.Updates += uint64(len(b.Updates))
	w.s.LastApplied = at
	if w.s.PluginLog != nil {
		w.s.PluginLog.AppliedError = w.batchErr
		if w.batchErrMore > 0 {
			w.s.PluginLog.AppliedError += fmt.Sprintf(" (and %d more)", w.batchErrMore)
		}
	}
}

// batchStarted records that WatchApplied handed a batch over, at since.
func (w *watchStatus) batchStarted(since time.Time) { w.busyStarted(&w.batchSince, since) }

// repairStarted records that a drift repair starts, at since.
func (w *watchStatus) repairStarted(since time.Time) { w.busyStarted(&w.repairSince, since) }

// busyStarted sets *start, the batch's or the repair's, to since: the
// plugin's error lines are counted afresh.
func (w *watchStatus) busyStarted(start *time.Time, since time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	defer w.behind()
	*start = since
	w.busyChanged()
	w.batchErr, w.batchErrMore = "", 0
}

// batchEnded records that a batch handed over ended. BehindSince stays as
// it is: WatchApplied reports next where the batch left the watch, with
// the updates that came meanwhile (Progress.Pending), which clears it or
// keeps it. Clearing it here would take a watch with updates waiting for
// current, and count its lag afresh from the next batch's start.
func (w *watchStatus) batchEnded() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.batchSince = time.Time{}
	w.busyChanged()
	w.poke()
}

// repairEnded records that the drift repair ended: the watch is current
// again unless a batch waited for the repair's turn meanwhile (still
// busy), or anything else keeps it behind.
func (w *watchStatus) repairEnded() {
	w.mu.Lock()
	defer w.mu.Unlock()
	defer w.behind()
	w.repairSince = time.Time{}
	w.busyChanged()
}

// busyChanged sets BusySince: the earlier of the batch's and the repair's
// start, zero when neither goes on.
func (w *watchStatus) busyChanged() {
	switch {
	case w.batchSince.IsZero():
		w.s.BusySince = w.repairSince
	case w.repairSince.IsZero() || w.batchSince.Before(w.repairSince):
		w.s.BusySince = w.batchSince
	default:
		w.s.BusySince = w.repairSince
	}
}

// quarantined records damaged local state moved aside (the list is copied,
// never appended to in place: readers may hold the old one).
func (w *watchStatus) quarantined(q QuarantinedState) {
	w.mu.Lock()
	defer w.mu.Unlock()
	list := w.s.Quarantined[max(0, len(w.s.Quarantined)-maxQuarantinedShown+1):]
	w.s.Quarantined = append(slices.Clip(list), q)
	w.poke()
}
