package kvcore_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// memFold is an in-memory kvcore.Fold for the loop's unit tests. Its state
// after a successful Apply is what a durable fold would hold after a crash.
// fail, when set, is consulted before every Apply and can refuse it.
type memFold struct {
	mu      sync.Mutex
	entries map[string]kvcore.Entry
	cursor  kvcore.Cursor
	calls   int
	fail    func(call int, updates []kvcore.Update, c kvcore.Cursor) error
}

var _ kvcore.Fold = (*memFold)(nil)

func newMemFold() *memFold { return &memFold{entries: map[string]kvcore.Entry{}} }

func (f *memFold) Cursor() kvcore.Cursor {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cursor
}

func (f *memFold) Apply(_ context.Context, updates []kvcore.Update, c kvcore.Cursor) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.fail != nil {
		if err := f.fail(f.calls, updates, c); err != nil {
			return err
		}
	}
	for _, u := range updates {
		if u.IsRemoval() {
			delete(f.entries, u.Key)
		} else {
			f.entries[u.Key] = u.Entry()
		}
	}
	f.cursor = c
	return nil
}

func (f *memFold) Get(key string) (kvcore.Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.entries[key]
	if !ok {
		return kvcore.Entry{}, kvcore.ErrNotFound
	}
	return e, nil
}

func (f *memFold) Range(ctx context.Context, prefix, after string, fn func(kvcore.Entry) error) error {
	f.mu.Lock()
	var es []kvcore.Entry
	for k, e := range f.entries {
		if strings.HasPrefix(k, prefix) && k > after {
			es = append(es, e)
		}
	}
	f.mu.Unlock()
	slices.SortFunc(es, func(a, b kvcore.Entry) int { return strings.Compare(a.Key, b.Key) })
	for _, e := range es {
		if err := fn(e); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func (f *memFold) Export(context.Context, string) (kvcore.Cursor, error) {
	return kvcore.Cursor{}, kvcore.ErrUnsupported
}

func (f *memFold) Close() error { return nil }

// values renders the fold as key=value pairs in key order.
func (f *memFold) values() []string {
	var out []string
	_ = f.Range(context.Background(), "", "", func(e kvcore.Entry) error {
		out = append(out, e.Key+"="+string(e.Value))
		return nil
	})
	return out
}

// session scripts one Watch call of scriptWatcher.
type session struct {
	openErr error          // returned by Watch itself
	events  []kvcore.Event // delivered in order
	endErr  error          // after the events: end the watch with this error
	ended   bool           // after the events: end the watch (with endErr)
	// endAfter, if set, holds the end until it is closed.
	endAfter <-chan struct{}
	// live, if set, feeds more events after the scripted ones until the
	// watch is stopped.
	live chan kvcore.Event
}

// scriptWatcher serves scripted sessions, one per Watch call, and records the
// cursor each call resumed from. When the script runs out, watches stay open
// without events until stopped. Keys lists keys, when set; otherwise the
// source cannot list (ErrUnsupported) and the loop skips reconciling.
type scriptWatcher struct {
	mu       sync.Mutex
	sessions []session
	froms    []kvcore.Cursor
	keys     []string
	present  []string          // exist (Get finds them) but the listing misses them
	revs     map[string]uint64 // the revision Entry gives a key (none when absent)
	keysErr  error
	listings int
	opened   []*scriptWatch // the watches opened, in order
}

// ended waits until the i-th watch opened has ended.
func (w *scriptWatcher) ended(i int) {
	w.mu.Lock()
	sw := w.opened[i]
	w.mu.Unlock()
	<-sw.done
}

var _ kvcore.Source = (*scriptWatcher)(nil)

// Entry answers from keys too (and from present, which lists keys a
// listing misses although they exist).
func (w *scriptWatcher) Entry(_ context.Context, key string) (kvcore.Entry, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.keys == nil {
		return kvcore.Entry{}, kvcore.ErrUnsupported
	}
	if slices.Contains(w.keys, key) || slices.Contains(w.present, key) {
		e := kvcore.Entry{Key: key, Value: []byte("v")}
		if rev, ok := w.revs[key]; ok {
			e.Version = kvcore.RevisionVersion(rev)
		}
		return e, nil
	}
	return kvcore.Entry{}, kvcore.ErrNotFound
}

func (w *scriptWatcher) Keys(_ context.Context, prefix string) ([]string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.listings++
	if w.keysErr != nil {
		return nil, w.keysErr
	}
	if w.keys == nil {
		return nil, kvcore.ErrUnsupported
	}
	var out []string
	for _, k := range w.keys {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	return out, nil
}

func (w *scriptWatcher) Watch(ctx context.Context, scope kvcore.Scope, from kvcore.Cursor) (kvcore.Watch, error) {
	return w.open(ctx, scope, from, 0)
}

// open opens the next scripted session, its Events channel buffering
// buffer events.
func (w *scriptWatcher) open(ctx context.Context, scope kvcore.Scope, from kvcore.Cursor, buffer int) (kvcore.Watch, error) {
	if err := scope.Validate(); err != nil {
		return nil, err
	}
	w.mu.Lock()
	w.froms = append(w.froms, from)
	var s session
	if len(w.sessions) > 0 {
		s, w.sessions = w.sessions[0], w.sessions[1:]
	}
	w.mu.Unlock()
	if s.openErr != nil {
		return nil, s.openErr
	}
	ctx, cancel := context.WithCancel(ctx)
	sw := &scriptWatch{events: make(chan kvcore.Event, buffer), cancel: cancel, done: make(chan struct{})}
	w.mu.Lock()
	w.opened = append(w.opened, sw)
	w.mu.Unlock()
	go sw.run(ctx, s)
	return sw, nil
}

// bufferedScriptWatcher is a scriptWatcher whose watches buffer what the
// caller asks for.
type bufferedScriptWatcher struct{ *scriptWatcher }

var _ kvcore.BufferedWatcher = bufferedScriptWatcher{}

func (w bufferedScriptWatcher) WatchBuffered(ctx context.Context, scope kvcore.Scope, from kvcore.Cursor, capacity int) (kvcore.Watch, error) {
	return w.open(ctx, scope, from, capacity)
}

func (w *scriptWatcher) resumedFrom() []kvcore.Cursor {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.froms)
}

type scriptWatch struct {
	events chan kvcore.Event
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	err    error
}

func (sw *scriptWatch) run(ctx context.Context, s session) {
	defer close(sw.done)
	defer close(sw.events)
	for _, ev := range s.events {
		select {
		case sw.events <- ev:
		case <-ctx.Done():
			return
		}
	}
	if s.ended {
		if s.endAfter != nil {
			select {
			case <-s.endAfter:
			case <-ctx.Done():
				return
			}
		}
		sw.mu.Lock()
		sw.err = s.endErr
		sw.mu.Unlock()
		return
	}
	for {
		select {
		case ev := <-s.live: // a nil channel blocks: no live events
			select {
			case sw.events <- ev:
			case <-ctx.Done():
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

func (sw *scriptWatch) Events() <-chan kvcore.Event { return sw.events }

func (sw *scriptWatch) Err() error {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return sw.err
}

func (sw *scriptWatch) Stop() {
	sw.cancel()
	<-sw.done
}

func put(key, value string, rev uint64) kvcore.Event {
	return kvcore.Event{Update: kvcore.Update{Op: kvcore.OpPut, Key: key, Value: []byte(value), Version: kvcore.RevisionVersion(rev)}}
}

func del(key string, rev uint64) kvcore.Event {
	return kvcore.Event{Update: kvcore.Update{Op: kvcore.OpDelete, Key: key, Version: kvcore.RevisionVersion(rev)}}
}

var synced = kvcore.Event{Synced: true}

var errInjected = errors.New("injected failure")
