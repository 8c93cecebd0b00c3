package kvcore

import "sync"

// relay puts a buffer of capacity events between a watch and the loop
// ([AppliedConfig.ChannelCapacity]): a goroutine of its own reads the watch
// ahead while the loop applies, and back-pressures it once the buffer is
// full. Stop stops the watch and waits for that goroutine.
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
