package memkv

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/slipstreamkv/slipstream/kvcore"
)

const (
	eventBuffer = 256 // capacity of a watch's Events channel, unless WatchBuffered asks for more
	readBatch   = 256 // records a watch copies out of the bucket at a time
)

var _ kvcore.BufferedWatcher = (*store)(nil)

var errRefuseWrap = errors.New("resume revision is the largest uint64; refusing to wrap to 0")

// Watch streams the keys of scope; see [kvcore.Watcher]. As on NATS,
// revision 0 is no position, a cursor the bucket no longer covers fails
// with ErrCursorExpired, a lagging watch skips records removed before it
// read them (it sees the latest value of every key), and a whole-bucket
// watch from a cursor fails with ErrCursorExpired instead when the records
// it skipped may not have been superseded (the oldest record left is past
// them). So does a whole-bucket state sync past its initial state, on a
// bucket whose limits drop records (max age, discard old).
func (s *store) Watch(ctx context.Context, scope kvcore.Scope, from kvcore.Cursor) (kvcore.Watch, error) {
	return s.WatchBuffered(ctx, scope, from, eventBuffer)
}

// WatchBuffered is Watch with an Events channel of capacity events, and at
// least the default 256; see [kvcore.BufferedWatcher].
func (s *store) WatchBuffered(ctx context.Context, scope kvcore.Scope, from kvcore.Cursor, capacity int) (kvcore.Watch, error) {
	fail := func(err error) (kvcore.Watch, error) { return nil, s.fail("watch", "", err) }
	if err := scope.Validate(); err != nil {
		return fail(err)
	}
	b, err := s.bucket("watch", "")
	if err != nil {
		return nil, err
	}
	var pos uint64
	if !from.IsNone() {
		rev, ok := from.Revision()
		if !ok {
			return fail(kvcore.ErrInvalidVersion)
		}
		pos = rev
	}
	if pos == math.MaxUint64 {
		return fail(fmt.Errorf("%w: %w", kvcore.ErrWatchFailed, errRefuseWrap))
	}

	w := &watch{s: s, b: b, scope: scope, pos: pos, guard: scope.All() && (pos > 0 || b.lossy()),
		events: make(chan kvcore.Event, max(capacity, eventBuffer)), done: make(chan struct{})}
	b.mu.Lock()
	if pos > 0 {
		if first := b.first(); first > pos+1 || pos > b.last {
			b.mu.Unlock()
			return fail(fmt.Errorf("%w: the bucket holds revisions %d to %d", kvcore.ErrCursorExpired, first, b.last))
		}
		w.next, w.backlog = pos+1, b.last
	} else {
		for _, rs := range b.keys {
			if r := rs[len(rs)-1]; scope.Match(r.key) {
				w.initial = append(w.initial, r)
			}
		}
		slices.SortFunc(w.initial, func(a, b *record) int { return int(a.seq - b.seq) })
		// The initial state stands for every revision so far.
		w.next, w.backlog, w.pos = b.last+1, b.last, b.last
	}
	b.mu.Unlock()
	w.ctx, w.cancel = context.WithCancel(ctx)
	go w.run()
	return w, nil
}

type watch struct {
	s      *store
	b      *bucket // the incarnation the watch started on
	scope  kvcore.Scope
	guard  bool // fail rather than skip records that are gone
	ctx    context.Context
	cancel context.CancelFunc
	events chan kvcore.Event
	done   chan struct{}

	// Owned by run.
	initial []*record // the state to sync, in revision order
	next    uint64    // revision to read from
	backlog uint64    // Synced follows the records up to this revision
	pos     uint64    // revision of the last record handled
	synced  bool

	errMu sync.Mutex
	err   error
}

func (w *watch) Events() <-chan kvcore.Event { return w.events }

func (w *watch) Stop() {
	w.cancel()
	<-w.done
}

func (w *watch) Err() error {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	return w.err
}

func (w *watch) fail(err error) {
	w.errMu.Lock()
	w.err = w.s.fail("watch", "", err)
	w.errMu.Unlock()
}

func (w *watch) send(ev kvcore.Event) bool {
	select {
	case w.events <- ev:
		return true
	case <-w.ctx.Done():
		return false
	case <-w.s.session:
		w.fail(fmt.Errorf("%w: %w", kvcore.ErrWatchFailed, kvcore.ErrNotConnected))
		return false
	case <-w.b.deleted:
		w.failDeleted()
		return false
	}
}

// failDeleted ends the watch of a deleted bucket.
func (w *watch) failDeleted() {
	w.fail(fmt.Errorf("%w: %w: the bucket was deleted", kvcore.ErrWatchFailed, kvcore.ErrBucketNotFound))
}

// sync sends Synced once everything up to the backlog was handled.
func (w *watch) sync(before uint64) bool {
	if w.synced || before <= w.backlog {
		return true
	}
	w.synced = true
	return w.send(kvcore.Event{Synced: true})
}

func (w *watch) run() {
	defer close(w.done)
	defer close(w.events)
	for _, r := range w.initial {
		if !w.send(kvcore.Event{Update: r.update()}) {
			return
		}
	}
	w.initial = nil
	b := w.b
	for {
		b.mu.Lock()
		recs := b.since(w.next, readBatch)
		first, changed := b.first(), b.changed
		b.mu.Unlock()
		for _, r := range recs {
			if w.guard && r.seq > w.pos+1 && first > w.pos+1 {
				w.fail(fmt.Errorf("%w: retention overran the watch (first revision %d > %d + 1)", kvcore.ErrCursorExpired, first, w.pos))
				return
			}
			if !w.sync(r.seq) {
				return
			}
			w.next = r.seq + 1
			if w.scope.Match(r.key) && !w.send(kvcore.Event{Update: r.update()}) {
				return
			}
			w.pos = r.seq
		}
		if len(recs) == readBatch {
			continue
		}
		if !w.sync(math.MaxUint64) {
			return
		}
		select {
		case <-changed:
		case <-w.ctx.Done():
			return
		case <-w.s.session:
			w.fail(fmt.Errorf("%w: %w", kvcore.ErrWatchFailed, kvcore.ErrNotConnected))
			return
		case <-b.deleted:
			w.failDeleted()
			return
		}
	}
}
