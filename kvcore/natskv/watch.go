package natskv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// eventBuffer is the capacity of a watch's Events channel, unless
// WatchBuffered asks for more.
const eventBuffer = 256

var _ kvcore.BufferedWatcher = (*store)(nil)

var (
	errRefuseWrap    = errors.New("resume revision is the largest uint64; refusing to wrap to 0")
	errCursorExpired = errors.New("the stream no longer holds every revision after the cursor")
)

// Watch streams the keys of scope; see [kvcore.Watcher]. Revision 0 is no
// position, as NATS revisions start at 1.
//
// The watch owns its consumer: an ephemeral, ordered push consumer (one for
// all prefixes of the scope) that it re-creates after a delivery gap, two
// missed heartbeats, a reconnect, or a stream leader change that took the
// server hosting it (see leader.go), resuming after the last revision it
// handled. Only a bucket that is gone or was re-created, a closed
// connection, or retention that overran the watch end it (see Err).
func (s *store) Watch(ctx context.Context, scope kvcore.Scope, from kvcore.Cursor) (kvcore.Watch, error) {
	return s.WatchBuffered(ctx, scope, from, eventBuffer)
}

// WatchBuffered is Watch with an Events channel of capacity events, and at
// least the default 256; see [kvcore.BufferedWatcher]. The delivery handler
// blocks (and the consumer's flow control holds the server back) once that
// many wait.
func (s *store) WatchBuffered(ctx context.Context, scope kvcore.Scope, from kvcore.Cursor, capacity int) (kvcore.Watch, error) {
	fail := func(err error) (kvcore.Watch, error) {
		return nil, &kvcore.OpError{Op: "watch", Bucket: s.bucket, Err: err}
	}
	if err := scope.Validate(); err != nil {
		return fail(err)
	}
	if !s.sess.live() {
		return fail(kvcore.ErrNotConnected)
	}
	var pos uint64
	if !from.IsNone() {
		rev, ok := from.Revision()
		if !ok {
			return fail(kvcore.ErrInvalidVersion)
		}
		pos = rev
	}
	if _, ok := resumeStartSequence(pos); !ok {
		return fail(fmt.Errorf("%w: %w", kvcore.ErrWatchFailed, errRefuseWrap))
	}
	w := s.newWatch(ctx, scope, pos, max(capacity, eventBuffer))
	if err := w.attach(s.opts.Timeout); err != nil {
		w.cancel()
		s.sess.nc.RemoveStatusListener(w.status)
		return fail(watchErr(err))
	}
	w.leaderSub = w.listenLeader()
	go w.run()
	return w, nil
}

// watch is one running Watch. The delivery handler of the current
// consumer runs on nats.go's subscription goroutine and sends to events;
// the watch's own goroutine (run) replaces consumers and ends the watch.
type watch struct {
	s       *store
	scope   kvcore.Scope
	filters []string
	widened bool      // filters may match keys outside scope
	guard   bool      // a whole-bucket watch: the live retention floor guard applies (see guarding)
	resumed bool      // started from a cursor
	lossy   bool      // the stream's limits drop records nothing supersedes (set by attach)
	created time.Time // when the stream the watch started on was created
	log     *slog.Logger
	status  chan nats.Status

	ctx    context.Context
	cancel context.CancelFunc
	events chan kvcore.Event
	done   chan struct{}
	resets chan struct{} // a handler marked the current consumer broken

	// The stream's leader changes (see leader.go): elected holds the latest
	// advisory, attempt the consumer creation it cancels, and leader the
	// stream's leader as last known by run.
	leaderSub *nats.Subscription
	elected   chan leaderElected
	attempt   atomic.Pointer[attempt]
	leader    string

	activity atomic.Int64 // UnixNano of the latest message of the current consumer
	busy     atomic.Int32 // handlers running now

	// Fixed at construction; tests shorten them.
	hbEvery     time.Duration // the consumer's expected heartbeat: silent for two, it is checked
	probeEvery  time.Duration
	notFoundFor time.Duration
	backoffBase time.Duration
	backoffCap  time.Duration
	afterCreate func()        // test seam: runs right after a consumer is created
	pauseNext   time.Duration // test seam: the next consumer starts paused this long

	errMu sync.Mutex
	err   error

	// cur is the current attachment, nil between two. It is written
	// under mu (so no handler of the old one runs past the switch) and
	// read without it.
	cur atomic.Pointer[attachment]

	// mu is held by the handler while it handles a message (and sends
	// it), and by attach while a new consumer is set up, so the two never
	// interleave.
	mu        sync.Mutex
	pos       uint64 // every revision ≤ pos in scope was delivered or superseded
	started   bool   // resume after pos rather than re-sync from scratch
	synced    bool   // the Synced event was sent
	delivered bool   // an update was delivered since the last floor probe
	seen      seenRecord
}

// attachment is one consumer of a watch and its subscription.
type attachment struct {
	name   string
	host   string // the server hosting the consumer in a cluster, else ""
	sub    *nats.Subscription
	quit   chan struct{} // closed when the attachment is replaced
	ready  chan struct{} // closed once it is current: its messages wait for it
	floor  uint64        // the stream's last sequence just before the consumer was created
	dseq   uint64        // delivery sequence of the last message handled
	broken bool          // a gap or error was seen: the rest is ignored
	// reconnects is the connection's reconnect count once the server
	// answered the consumer's creation: a consumer made on the connection
	// as it is since its latest reconnect needs no re-creation for it (see
	// watch.run). A reconnect just after the answer is counted too, and a
	// consumer it lost is found by the heartbeat check instead.
	reconnects uint64
	// resumed: the consumer starts after a position, so a record at or
	// before pos (delivered meanwhile by the bridge) is one seen already.
	resumed bool

	// Until Synced (see caughtUp): how far the consumer must look, the
	// last delivery the server's latest answer covers (no delivery up to it
	// asks again), and whether that answer said the consumer caught up:
	// Synced then follows that delivery.
	syncFloor, askedAt uint64
	caughtUp           bool
	askFailures        int // in a row
}

// askFailuresWarned is how many questions in a row (one per heartbeat)
// must fail before a watch that cannot tell it caught up says so above
// debug level.
const askFailuresWarned = 3

func (s *store) newWatch(ctx context.Context, scope kvcore.Scope, pos uint64, buffer int) *watch {
	filters, widened := filterSubjects(s.pre, scope)
	w := &watch{
		s:           s,
		scope:       scope,
		filters:     filters,
		widened:     widened,
		guard:       scope.All(),
		resumed:     pos > 0,
		log:         s.log.With("scope", scope.String()).With(logAttrs(ctx)...),
		status:      s.sess.nc.StatusChanged(nats.CONNECTED, nats.CLOSED),
		events:      make(chan kvcore.Event, buffer),
		done:        make(chan struct{}),
		resets:      make(chan struct{}, 1),
		elected:     make(chan leaderElected, 1),
		hbEvery:     s.opts.Heartbeat,
		probeEvery:  floorProbeInterval,
		notFoundFor: notFoundFor,
		backoffBase: backoffBase,
		backoffCap:  backoffCap,
		pos:         pos,
		started:     pos > 0,
	}
	w.ctx, w.cancel = context.WithCancel(ctx)
	if s.tuneWatch != nil {
		s.tuneWatch(w)
	}
	return w
}

func (w *watch) Events() <-chan kvcore.Event { return w.events }

func (w *watch) Stop() {
	w.cancel()
	<-w.done
}

func (w *watch) Err() error {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	if w.err == nil {
		return nil
	}
	return &kvcore.OpError{Op: "watch", Bucket: w.s.bucket, Err: w.err}
}

// fail ends the watch with err (the first failure wins).
func (w *watch) fail(err error) {
	w.errMu.Lock()
	if w.err == nil {
		w.err = watchErr(err)
	}
	w.errMu.Unlock()
	w.cancel()
}

// watchErr makes err say ErrCursorExpired or ErrWatchFailed.
func watchErr(err error) error {
	switch {
	case errors.Is(err, kvcore.ErrCursorExpired), errors.Is(err, kvcore.ErrWatchFailed):
		return err
	case errors.Is(err, errCursorExpired):
		return fmt.Errorf("%w: %w", kvcore.ErrCursorExpired, err)
	}
	return fmt.Errorf("%w: %w", kvcore.ErrWatchFailed, mapErr(err))
}

// attach creates the next consumer and makes it current: the last record
// of every key when nothing was handled yet, else everything after pos once
// the stream is known to still hold it. Its requests are bounded by
// timeout, and cut short by the election of a new stream leader
// (errLeaderElected). It holds mu only to read the watch's position and to
// make the consumer current: meanwhile the bridge (see bridge.go) may
// deliver what was written, and the new consumer's first messages wait for
// it to be current (see attachment.ready).
func (w *watch) attach(timeout time.Duration) error {
	actx, kick := context.WithCancelCause(w.ctx)
	defer kick(nil)
	w.attempt.Store(&attempt{cancel: kick})
	defer w.attempt.Store(nil)
	ctx, cancel := context.WithTimeout(actx, timeout)
	defer cancel()
	err := w.attachCtx(ctx)
	if err != nil && w.ctx.Err() == nil && errors.Is(context.Cause(actx), errLeaderElected) {
		return errLeaderElected
	}
	return err
}

func (w *watch) attachCtx(ctx context.Context) error {
	w.mu.Lock()
	pos, started, synced, seen := w.pos, w.started, w.synced, w.seen
	w.mu.Unlock()

	st, err := w.s.streamState(ctx)
	if err != nil {
		return err
	}
	first, last := st.first, st.last
	known := !w.created.IsZero() // the watch attached to this incarnation before
	if !known {
		w.created = st.created
		// A watch never sees a key go that expires without a delete
		// marker; a bucket only written to (the agent's report bucket)
		// is no concern, so this is said as a watch starts.
		if st.maxAge > 0 && st.markerTTL == 0 {
			w.log.Warn("bucket has a max age but no delete-marker TTL: expired keys vanish without an update on watches until their next re-sync",
				"max_age", st.maxAge)
		}
	} else if !st.created.Equal(w.created) {
		// Its revisions started over: whatever pos is, it means nothing here.
		return fmt.Errorf("%w: the bucket was re-created (it is %s now, the watch started on %s)",
			errCursorExpired, w.s.incarnation(st.created), w.s.incarnation(w.created))
	}
	spec := consumerSpec{filters: w.filters}
	if started {
		start, ok := resumeStartSequence(pos)
		if !ok {
			return errRefuseWrap
		}
		if !resumeWindowOK(pos, first) {
			return expiredAt(pos, first)
		}
		if pos > last && known {
			// The bucket this watch attached to before, with fewer
			// revisions: it lost records it had acknowledged.
			return fmt.Errorf("%w: %w: revision %d is past the stream's last %d: the server lost records it had acknowledged (a store restored from an older copy, or an unsynced tail lost in a crash)",
				errCursorExpired, kvcore.ErrOutOfStep, pos, last)
		}
		if pos > last {
			// Revisions the stream never had: the bucket was re-created
			// (revisions start over) or lost records it had acknowledged.
			return fmt.Errorf("%w: revision %d is past the stream's last %d (was the bucket re-created?)", errCursorExpired, pos, last)
		}
		if err := w.checkSeen(ctx, seen, first, last); err != nil {
			return err
		}
		spec.startSeq = start
	}

	if w.pauseNext > 0 {
		spec.pauseUntil = time.Now().Add(w.pauseNext)
		w.pauseNext = 0
	}
	a := &attachment{
		name:    newConsumerName(),
		quit:    make(chan struct{}),
		ready:   make(chan struct{}),
		floor:   last,
		resumed: started,
	}
	nc := w.s.sess.nc
	a.sub, err = nc.Subscribe(nc.NewInbox(), func(m *nats.Msg) { w.handle(a, m) })
	if err != nil {
		return err
	}
	info, err := w.s.createConsumer(ctx, spec, a.name, a.sub.Subject)
	if err != nil {
		w.discard(a)
		if looksExpired(err.Error()) {
			return fmt.Errorf("%w: %v", errCursorExpired, err)
		}
		return err
	}
	// A request sent while the connection was down waits in its buffer
	// and goes out once it is back: count the reconnect it waited for.
	a.reconnects = nc.Stats().Reconnects
	if w.afterCreate != nil {
		w.afterCreate()
	}
	var now streamState
	if started {
		// The server silently starts at its first sequence when asked for
		// an older one: check again (below) now that the consumer exists.
		if now, err = w.s.streamState(ctx); err != nil {
			w.discard(a)
			return err
		}
	}
	if !synced {
		if a.syncFloor, err = w.s.syncFloor(ctx, st, w.filters); err != nil {
			w.discard(a)
			return err
		}
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	// pos may have moved meanwhile (the bridge delivered records): what
	// the consumer skipped must be at most what was delivered, and what
	// it delivers again is skipped (see handle).
	if started && !resumeWindowOK(w.pos, now.first) {
		w.discard(a)
		return expiredAt(w.pos, now.first)
	}
	w.lossy = st.lossy
	a.host = clusterLeader(info.Cluster)
	w.leader = st.leader
	w.cur.Store(a)
	close(a.ready)
	w.activity.Store(time.Now().UnixNano())
	if !w.synced && info.NumPending == 0 {
		w.markSynced(a)
	}
	return nil
}

func expiredAt(pos, first uint64) error {
	return fmt.Errorf("%w: first sequence %d > revision %d + 1", errCursorExpired, first, pos)
}

// discard drops an attachment that never became current.
func (w *watch) discard(a *attachment) {
	close(a.quit)
	_ = a.sub.Unsubscribe()
	w.s.drop(a.name)
}

// detach drops the current attachment. Once it returns no handler of it
// runs or sends anymore.
func (w *watch) detach() {
	a := w.cur.Load()
	if a == nil {
		return
	}
	close(a.quit) // unblocks a handler waiting to send
	_ = a.sub.Unsubscribe()
	w.mu.Lock()
	w.cur.Store(nil)
	w.mu.Unlock()
	w.s.drop(a.name)
}

// handle handles one message of attachment a, in delivery order.
func (w *watch) handle(a *attachment, m *nats.Msg) {
	w.activity.Store(time.Now().UnixNano())
	w.busy.Add(1)
	defer w.busy.Add(-1)
	select {
	case <-a.ready:
	case <-a.quit:
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cur.Load() != a || a.broken {
		return
	}
	switch controlOf(m) {
	case notControl:
	case ctrlFlowControl:
		_ = w.s.sess.nc.Publish(m.Reply, nil)
		return
	case ctrlHeartbeat:
		w.heartbeat(a, m)
		return
	case ctrlConsumerGone:
		w.reset(a)
		return
	default:
		return
	}

	u, meta, inKeyspace := decodeMsg(w.s.pre, m)
	if meta.consumer == 0 {
		return // not a delivery
	}
	if meta.consumer != a.dseq+1 {
		w.reset(a)
		return
	}
	a.dseq = meta.consumer
	if a.resumed && meta.stream <= w.pos {
		return // the bridge delivered it
	}
	if w.guarding() && !resumeWindowOK(w.pos, meta.stream) && !w.checkFloor(a) {
		return
	}
	if inKeyspace && (!w.widened || w.scope.Match(u.Key)) {
		if !w.send(a, kvcore.Event{Update: u, Pending: max(meta.pending, queuedAfter(a.sub))}) {
			a.broken = true
			return
		}
		w.delivered = true
		w.see(meta.stream, m, m.Subject)
	}
	w.pos = max(w.pos, meta.stream)
	w.started = true
	if !w.synced {
		if meta.pending == 0 && a.dseq > a.askedAt {
			w.askCaughtUp(a)
		}
		w.syncIfDue(a)
	}
}

// heartbeat checks an idle heartbeat against what a handled: the server
// reports the last delivery sequence it sent (a higher one means lost
// deliveries) and how far in the stream the consumer has looked.
func (w *watch) heartbeat(a *attachment, m *nats.Msg) {
	nc := w.s.sess.nc
	if r := m.Header.Get(hdrStalled); r != "" {
		_ = nc.Publish(r, nil)
	}
	if n, err := strconv.ParseUint(m.Header.Get(hdrLastConsumer), 10, 64); err == nil && n > a.dseq {
		w.reset(a)
		return
	}
	if !w.synced {
		if m.Header.Get(hdrStalled) == "" {
			w.askCaughtUp(a) // idle, whatever the last delivery's count said
			w.syncIfDue(a)
		}
		return
	}
	// A filtered consumer skips the records of other keys without a word;
	// its position is only known from heartbeats. Moving pos over them
	// keeps a later resume from reading them as expired.
	ls, err := strconv.ParseUint(m.Header.Get(hdrLastStream), 10, 64)
	if err != nil || ls <= w.pos {
		return
	}
	if w.guarding() && !w.checkFloor(a) {
		return
	}
	w.pos = ls
}

// askCaughtUp asks the server whether the consumer has delivered
// everything it had to (see caughtUp), and if so notes after which delivery
// Synced is due.
func (w *watch) askCaughtUp(a *attachment) {
	if a.caughtUp {
		return
	}
	upTo, done, err := w.s.caughtUp(w.ctx, a.name, a.syncFloor)
	if err != nil {
		a.askFailures++
		level := slog.LevelDebug
		if a.askFailures == askFailuresWarned {
			// A user without $JS.API.CONSUMER.INFO would otherwise stay
			// "syncing" for ever without a word.
			level = slog.LevelWarn
		}
		w.log.Log(w.ctx, level, "cannot ask the server whether the watch caught up (it needs "+w.s.sess.api+"CONSUMER.INFO."+w.s.stream+".>); it stays syncing, and the next heartbeat asks again",
			"failures", a.askFailures, "err", err)
		return
	}
	a.askFailures = 0
	a.askedAt, a.caughtUp = upTo, done
}

// syncIfDue sends Synced once a has handled the delivery it is due after.
func (w *watch) syncIfDue(a *attachment) {
	if !w.synced && a.caughtUp && a.dseq >= a.askedAt {
		w.markSynced(a)
	}
}

// markSynced sends the Synced event. After it a resume starts after pos,
// which covers everything up to a.floor, unless the floor guard holds pos
// to what a whole-bucket watch from a cursor really handled.
func (w *watch) markSynced(a *attachment) {
	if !w.send(a, kvcore.Event{Synced: true}) {
		return
	}
	w.synced = true
	if !w.guard || !w.resumed {
		w.pos = max(w.pos, a.floor)
	}
	w.started = true
}

// guarding reports whether the live retention floor guard is on. A
// whole-bucket watch from a cursor has it from the start. A state sync has
// it from Synced on (its initial state skips superseded records by
// design), if the bucket's limits can drop records nothing superseded: on
// other buckets only superseded records go (or an operator's purge, which
// a watch that keeps up misses as well), and the guard, which cannot tell
// them apart once the oldest record is gone, would fail a watch that lags
// behind a few busy keys for nothing.
func (w *watch) guarding() bool { return w.guard && (w.resumed || w.synced && w.lossy) }

// send delivers ev unless a is being replaced or the watch is ending.
func (w *watch) send(a *attachment, ev kvcore.Event) bool { return w.sendOr(a.quit, ev) }

// sendOr delivers ev unless stop is closed or the watch is ending first.
func (w *watch) sendOr(stop <-chan struct{}, ev kvcore.Event) bool {
	select {
	case w.events <- ev:
		return true
	default:
	}
	select {
	case w.events <- ev:
		return true
	case <-stop:
		return false
	case <-w.ctx.Done():
		return false
	}
}

// reset marks a broken and asks run to replace it.
func (w *watch) reset(a *attachment) {
	a.broken = true
	select {
	case w.resets <- struct{}{}:
	default:
	}
}

// queuedAfter is how many messages sub holds behind the one its handler
// runs for (which the count includes). What a watch trails its bucket by
// is at least those, and at least what the server had yet to send when it
// sent this one: a push consumer sends ahead of what the watch delivers,
// so the server's count alone stays near 0 while the watch lags.
func queuedAfter(sub *nats.Subscription) uint64 {
	n, _, err := sub.Pending()
	if err != nil || n < 1 {
		return 0
	}
	return uint64(n - 1)
}
