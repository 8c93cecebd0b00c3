package agent

import (
	"slices"
	"sync"
	"time"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// Watch states, as /status and metrics report them.
const (
	stateStarting = "starting" // setting up: plugin, fold, bucket
	stateSyncing  = "syncing"  // running, not caught up yet
	stateReady    = "ready"    // caught up; following live changes
	stateFailing  = "failing"  // a step keeps failing and is being retried
)

// WatchStatus describes one watch at a point in time.
type WatchStatus struct {
	Name     string `json:"name"`
	Bucket   string `json:"bucket"`
	Plugin   string `json:"plugin"`
	State    string `json:"state"`
	Synced   bool   `json:"synced"`
	Cursor   string `json:"cursor"`
	Revision uint64 `json:"revision"`
	// Failures counts consecutive failures; LastError is the latest one.
	Failures    int       `json:"consecutive_failures"`
	LastError   string    `json:"last_error,omitempty"`
	LastApplied time.Time `json:"last_applied,omitzero"`
	Batches     uint64    `json:"batches"`
	Updates     uint64    `json:"updates"`
	// BusySince is when the batch being applied started (zero when idle).
	BusySince time.Time `json:"busy_since,omitzero"`
	// Quarantined lists the latest local state (fold, hook journal, state
	// file) that did not load and was moved aside, oldest first.
	Quarantined []QuarantinedState `json:"quarantined,omitempty"`
}

// QuarantinedState is damaged local state a watch moved aside and rebuilt.
type QuarantinedState struct {
	Kind   string    `json:"kind"`   // fold, journal or state
	Path   string    `json:"path"`   // where it is now
	Reason string    `json:"reason"` // why it did not load
	At     time.Time `json:"at"`
}

// Healthy reports whether the watch is not stuck failing.
func (s WatchStatus) Healthy() bool { return s.State != stateFailing }

// Settled reports whether the watch's start is over: it caught up, or it
// failed (and keeps retrying). systemd gets READY once every watch settled,
// so one broken watch cannot hold the whole agent in "activating".
func (s WatchStatus) Settled() bool { return s.Synced || s.Failures > 0 || s.State == stateFailing }

// watchStatus is a WatchStatus updated by the watch's goroutines and read by
// the HTTP and systemd reporters. changed is poked (without blocking) when
// the state, the cursor or the failures change, so systemd hears at once.
type watchStatus struct {
	mu      sync.Mutex
	s       WatchStatus
	changed chan<- struct{}
}

func newWatchStatus(w *WatchConf, changed chan<- struct{}) *watchStatus {
	return &watchStatus{s: WatchStatus{Name: w.Name, Bucket: w.Bucket, Plugin: w.Plugin, State: stateStarting, Cursor: "none"}, changed: changed}
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
	return w.s
}

// progress records what WatchApplied reports.
func (w *watchStatus) progress(p kvcore.Progress) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.s.Cursor = p.Cursor.String()
	w.s.Revision, _ = p.Cursor.Revision()
	w.s.Synced = w.s.Synced || p.Synced
	w.s.Failures = p.Failures
	switch {
	case p.Err != nil:
		w.s.State, w.s.LastError = stateFailing, p.Err.Error()
	case p.Synced:
		w.s.State = stateReady
	default:
		w.s.State = stateSyncing
	}
	w.poke()
}

// failed records a failure to set the watch up or keep it running.
func (w *watchStatus) failed(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.s.State, w.s.LastError = stateFailing, err.Error()
	w.s.Failures++
	w.poke()
}

func (w *watchStatus) applied(b kvcore.Batch, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.s.Batches++
	w.s.Updates += uint64(len(b.Updates))
	w.s.LastApplied = at
}

func (w *watchStatus) busy(since time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.s.BusySince = since
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
