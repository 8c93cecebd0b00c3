package kvcore

import (
	"context"
	"log/slog"
	"time"
)

// AppliedConfig configures [WatchApplied]. Only Scope is required.
type AppliedConfig struct {
	Scope Scope
	// Window is how long a batch stays open after its first update
	// (default 10ms). [NoWindow] (any negative value) applies the first
	// update of an idle watch at once: nothing waits, and what arrives while
	// a batch is being applied forms the next batch. Catching up (the Synced
	// event) closes a batch at once. Whatever closes a batch, the updates
	// already delivered are taken into it first (up to MaxBatch), so a
	// backlog never splits into tiny batches, however short the window.
	// With NoWindow, a resumed watch's backlog (the updates before its
	// Synced event) waits for Synced or MaxBatch, and for no longer than
	// 50 ms without an update, or 1 s after the batch's first (Synced can be
	// a heartbeat late).
	Window time.Duration
	// Quiet, when its Min is set, replaces Window with consul-template's
	// quiescence: a batch closes once no update arrived for Min, and at the
	// latest Max after its first update.
	Quiet Quiescence
	// MaxBatch closes a batch early at this many updates (default 100).
	MaxBatch int
	// ChannelCapacity, when positive, puts a buffer of that many events
	// between the watch and the loop (the Rust crate's channel_capacity):
	// the watch is read ahead while a batch is applied, and back-pressured
	// once the buffer is full. A source that implements [BufferedWatcher]
	// (natskv, memkv) gets a watch with that buffer; any other gets a relay
	// goroutine in front of its watch. 0 relies on the watch's own
	// buffering (a natskv or memkv watch buffers 256 events).
	ChannelCapacity int
	// FullRender makes the loop hand apply one full batch after it first
	// catches up, even when resuming from a cursor (e.g. because the
	// plugin or its configuration changed since the cursor was written).
	FullRender bool
	// Reconcile is how often, besides right after catching up from a
	// cursor, the loop lists the bucket's live keys and deletes from the
	// fold the ones the bucket no longer has. That catches a deletion whose
	// marker the bucket dropped before the loop saw it (NATS purges old
	// delete markers, by default after 30 minutes), which no change stream
	// can deliver. 0 reconciles only after catching up.
	Reconcile time.Duration
	// Filter, if set, decides which updates apply sees (the Rust crate's
	// parse): an update it rejects is still folded and still advances the
	// cursor, but is left out of the batch handed to apply, and a batch
	// left empty is not handed to apply at all (full batches always are).
	// It runs on the loop's goroutine and must not block.
	Filter func(Update) bool
	// Exports, if set, receives requests for exports of the fold (see
	// [ExportRequest]).
	Exports <-chan ExportRequest
	// MaxFoldFailures makes WatchApplied give up, returning an error that
	// wraps [ErrFoldFailed], once the fold has failed this many times in a
	// row: its Apply, or a read of it (Range) that a step needs. 0 retries
	// for ever.
	MaxFoldFailures int
	// MinBackoff and MaxBackoff bound the jittered exponential backoff
	// between retries of a failed step (defaults 100ms and 30s).
	MinBackoff, MaxBackoff time.Duration
	// NoRetry makes WatchApplied return the error of the first step that
	// fails (its apply, the fold, the watch, a callback), without logging
	// or reporting it, instead of retrying the step: for a caller that runs
	// once and reports failures itself. A cursor that expired still
	// resyncs.
	NoRetry bool
	// BucketID is the identity of the bucket incarnation the fold's cursor
	// was taken from, as [BucketIdentifier] reported it and OnBucketID
	// persisted it; "" when unknown.
	BucketID string
	// OnBucketID, if set and the source implements [BucketIdentifier],
	// arms the bucket identity check: at every session start the loop
	// reads the bucket's identity before and after its watch attaches. If
	// the two differ (the bucket was re-created meanwhile), or the identity
	// differs from the one the fold's cursor was taken from (or that one is
	// unknown while the fold has a cursor), it treats the cursor as
	// expired: it resyncs from the bucket's current state, as after
	// [ErrCursorExpired], and logs both identities at WARN. A bucket
	// deleted and created again starts its revisions over, so resuming from
	// its old cursor would skip changes.
	//
	// OnBucketID persists a new identity. It is called only after a
	// checkpoint taken under that identity is committed, so a crash in
	// between causes a redundant resync at worst, never a skip. A failure
	// is retried with backoff.
	OnBucketID func(ctx context.Context, id string) error
	// Folding is what OnFolding last persisted: the loop was folding
	// records at or before its cursor (a sync, a reconciliation's fixes),
	// or removals past it, whose commit it had not seen. The loop then
	// syncs from the bucket's current state first: no watch may deliver
	// such records again, and the cursor cannot tell (a bucket that went
	// back in time reuses its revisions).
	Folding bool
	// OnFolding, if set, persists that the loop starts (true) or ended
	// (false) such a fold; the loop calls it before the first record is
	// folded and after the commit, and retries a failure with backoff.
	OnFolding func(ctx context.Context, folding bool) error
	// Unreconciled is what OnUnreconciled last persisted: the cursor from
	// which the earliest session not known to be reconciled with the bucket
	// resumed (it may be older: a reconciliation does not persist it
	// again); none when unknown or after a sync.
	Unreconciled Cursor
	// OnUnreconciled, if set, persists that cursor whenever a session
	// resumes with another one, before it folds a record, and none once a
	// sync committed (a failure is retried with backoff). A reconciliation
	// reads back the fold's latest keys up to where its own session
	// resumed, and up to where the earliest session not reconciled did (a
	// session whose watch failed first leaves what the fold held before it
	// unchecked; see sameRevision): Unreconciled lets a loop started after
	// such a session check that too.
	OnUnreconciled func(ctx context.Context, c Cursor) error
	// Mark is the bucket's mark ([BucketMarker]) that OnMark last
	// persisted; "" when unknown.
	Mark string
	// OnMark, if set and the source implements [BucketMarker], lets the
	// loop skip the key listing of a reconciliation (the one after
	// resuming from a cursor, and the periodic ones) when the bucket's mark
	// equals Mark and names the fold's cursor: the bucket then holds
	// exactly what it held when the fold last matched it, so nothing can
	// have vanished from it unseen. OnMark persists a new mark, taken
	// when a sync or a listing showed that the fold matches the bucket and
	// the bucket did not change meanwhile (a failure is only logged: the
	// next reconciliation lists the keys), and "" to forget the mark
	// before the fold takes records it does not cover (a failure then
	// fails the step, which is retried).
	OnMark func(ctx context.Context, mark string) error
	// OnProgress, if set, is called from the loop's goroutine when it
	// starts, after every batch applied (one that leaves the cursor where
	// it was too), when it catches up, after every failure and when one is
	// over; not after a batch or a catch-up whose watch failed meanwhile,
	// whose failure it reports next. It must not block.
	OnProgress func(Progress)
	// Logger receives the loop's logs (default slog.Default()).
	Logger *slog.Logger
}

// NoWindow is the [AppliedConfig.Window] that applies an idle watch's
// first update at once.
const NoWindow time.Duration = -1

// Quiescence is consul-template's wait { min max }: see [AppliedConfig.Quiet].
type Quiescence struct {
	// Min is the quiet period that closes a batch; each update restarts it.
	Min time.Duration
	// Max caps how long a batch waits after its first update (default 4×Min).
	Max time.Duration
}

func (c AppliedConfig) withDefaults() AppliedConfig {
	if c.Window == 0 {
		c.Window = 10 * time.Millisecond
	}
	if c.Quiet.Min > 0 && c.Quiet.Max < c.Quiet.Min {
		c.Quiet.Max = 4 * c.Quiet.Min
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 100
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 100 * time.Millisecond
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = max(30*time.Second, c.MinBackoff)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

const (
	// syncChunk is how many updates of an initial sync are folded per Apply.
	syncChunk = 4096
	// maxRetryGrowth (in multiples of MaxBatch) and maxRetryBytes bound
	// what a failing batch absorbs while it is retried; past them the watch
	// is left to back-pressure.
	maxRetryGrowth = 16
	maxRetryBytes  = 8 << 20
	// expiriesBeforeBackoff is how many resyncs in a row may start at once
	// after ErrCursorExpired before the loop backs off between them; a
	// session that lasted stableSession breaks the row.
	expiriesBeforeBackoff = 2
	stableSession         = time.Minute
)
