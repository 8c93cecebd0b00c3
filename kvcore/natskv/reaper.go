package natskv

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Consumer deletion.
const (
	// deleteTimeout bounds one attempt to delete a consumer (or
	// Options.Timeout, if shorter).
	deleteTimeout = 5 * time.Second
	// reapAttempts is how many times a consumer is tried.
	reapAttempts = 10
	// reapBacklog is how many consumers may wait to be deleted; past it,
	// and after reapAttempts, the server reaps them once they are idle.
	reapBacklog = 1024
)

// reaper deletes the consumers of a session's watches and scans once they
// are done with them, in the background: neither Stop nor re-creating a
// watch's consumer nor returning a scan's result waits on a server that
// does not answer. A delete that fails (no connection, or the server that
// hosts the consumer is down, which also keeps it from reaping the
// consumer when idle) is tried again every tick.
type reaper struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	log     *slog.Logger
	timeout time.Duration
	queue   chan doomed
	cancel  context.CancelFunc
	done    chan struct{}
}

// doomed is a consumer to delete.
type doomed struct {
	stream, name string
	tries        int
}

// startReaper starts a reaper that tries failed deletes again every tick.
// Its goroutine runs until stop.
func startReaper(nc *nats.Conn, js jetstream.JetStream, o Options, tick time.Duration) *reaper {
	ctx, cancel := context.WithCancel(context.Background())
	r := &reaper{
		nc:      nc,
		js:      js,
		log:     o.Logger,
		timeout: min(o.Timeout, deleteTimeout),
		queue:   make(chan doomed, reapBacklog),
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	go r.run(ctx, tick)
	return r
}

// drop queues consumer name of stream for deletion. It never blocks.
func (r *reaper) drop(stream, name string) {
	select {
	case r.queue <- doomed{stream: stream, name: name}:
	default:
		r.log.Debug("too many consumers to delete; the server reaps this one when idle", "stream", stream, "consumer", name)
	}
}

// stop ends the reaper, abandoning an attempt under way; the consumers
// still queued are left to the server.
func (r *reaper) stop() {
	r.cancel()
	<-r.done
}

func (r *reaper) run(ctx context.Context, every time.Duration) {
	defer close(r.done)
	tick := time.NewTicker(every)
	defer tick.Stop()
	var failed []doomed
	for {
		select {
		case <-ctx.Done():
			return
		case d := <-r.queue:
			if !r.delete(ctx, d) {
				failed = r.again(failed, d)
			}
		case <-tick.C:
			retry := failed
			failed = nil
			for _, d := range retry {
				if !r.delete(ctx, d) {
					failed = r.again(failed, d)
				}
			}
		}
	}
}

// again keeps d for the next tick unless it was tried enough.
func (r *reaper) again(failed []doomed, d doomed) []doomed {
	if d.tries++; d.tries >= reapAttempts || len(failed) >= reapBacklog {
		r.log.Debug("giving up deleting a consumer; the server reaps it when idle", "stream", d.stream, "consumer", d.name)
		return failed
	}
	return append(failed, d)
}

// delete deletes d, reporting whether it is gone. While disconnected it
// does not try: a request would only wait for the connection to return.
func (r *reaper) delete(ctx context.Context, d doomed) bool {
	if ctx.Err() != nil || r.nc.Status() != nats.CONNECTED {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	err := r.js.DeleteConsumer(ctx, d.stream, d.name)
	return err == nil || errors.Is(err, jetstream.ErrConsumerNotFound)
}
