package kvcore

import (
	"context"
	"sync"
)

// BufferedWatcher is implemented by a [Watcher] whose watches can buffer a
// given number of events themselves. [WatchApplied] uses it for
// [AppliedConfig.ChannelCapacity]: a watch that holds the events read ahead
// needs no relay goroutine in front of the loop, so a change reaches the
// loop with one goroutine hand-off less (the only one left is the backend's
// own, from its delivery to the Events channel).
//
// WatchBuffered is [Watcher.Watch] with an Events channel of at least
// capacity events.
type BufferedWatcher interface {
	WatchBuffered(ctx context.Context, scope Scope, from Cursor, capacity int) (Watch, error)
}

// WatchWithBuffer opens a watch of w whose Events channel buffers capacity
// events when w can ([BufferedWatcher]), and an ordinary one of w
// otherwise. A wrapper around a Watcher implements BufferedWatcher with it.
func WatchWithBuffer(ctx context.Context, w Watcher, scope Scope, from Cursor, capacity int) (Watch, error) {
	if bw, ok := w.(BufferedWatcher); ok && capacity > 0 {
		return bw.WatchBuffered(ctx, scope, from, capacity)
	}
	return w.Watch(ctx, scope, from)
}

// watch opens the session's watch of the scope from cursor from, with
// ChannelCapacity events buffered between it and the loop: in the watch
// itself when it buffers that many, in a relay otherwise.
func (l *appliedLoop) watch(ctx context.Context, from Cursor) (Watch, error) {
	n := l.cfg.ChannelCapacity
	wa, err := WatchWithBuffer(ctx, l.src, l.cfg.Scope, from, n)
	if err != nil || n <= 0 || cap(wa.Events()) >= n {
		return wa, err
	}
	return newRelay(wa, n), nil
}

// relay puts a buffer of capacity events between a watch and the loop
// ([AppliedConfig.ChannelCapacity]) when the watch cannot buffer them
// itself: a goroutine of its own reads the watch ahead while the loop
// applies, and back-pressures it once the buffer is full. Stop stops the
// watch and waits for that goroutine.
type relay struct {
	Watch
	events chan Event
	quit   chan struct{}
	done   chan struct{}
	once   sync.Once
}

func newRelay(wa Watch, capacity int) *relay {
	r := &relay{Watch: wa, events: make(chan Event, capacity), quit: make(chan struct{}), done: make(chan struct{})}
	go r.run()
	return r
}

func (r *relay) run() {
	defer close(r.done)
	defer close(r.events)
	in := r.Watch.Events()
	for {
		select {
		case ev, ok := <-in:
			if !ok {
				return
			}
			select {
			case r.events <- ev:
			case <-r.quit:
				return
			}
		case <-r.quit:
			return
		}
	}
}

func (r *relay) Events() <-chan Event { return r.events }

// Stop ends the relay, then the watch.
func (r *relay) Stop() {
	r.once.Do(func() { close(r.quit) })
	<-r.done
	r.Watch.Stop()
}
