package natskv

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// Recovery tuning.
const (
	// backoffBase and backoffCap bound the jittered exponential pause
	// between attempts to re-create a watch's consumer.
	backoffBase = 100 * time.Millisecond
	backoffCap  = 5 * time.Second
	// notFoundFor is how long the bucket's stream must be missing, attempt
	// after attempt, before a watch gives up on it: a cluster recovering a
	// stream, or one being restored, answers "stream not found" meanwhile.
	notFoundFor = 30 * time.Second
	// floorProbeInterval is how often a floor-guarded watch that delivered
	// nothing checks the stream's first sequence anyway.
	floorProbeInterval = 30 * time.Second
	// attemptTimeout bounds the requests of the first attempts to
	// re-create a consumer (or Options.Timeout, if shorter): they take
	// milliseconds when the cluster has its leaders, and a request sent
	// during an election is dropped, not answered once it is over, so
	// waiting out a longer timeout only delays the next attempt. Every
	// attemptsPerStep attempts the bound doubles (up to Options.Timeout),
	// so a server merely slow to answer is still waited for.
	attemptTimeout  = time.Second
	attemptsPerStep = 3

	// inFlightPoll is how often slowButAlive looks whether the deliveries
	// the server counted have been handled.
	inFlightPoll = 10 * time.Millisecond
)

// run is the watch's goroutine: it replaces the consumer when it breaks,
// and ends the watch.
func (w *watch) run() {
	defer close(w.done)
	defer close(w.events)
	defer w.s.sess.nc.RemoveStatusListener(w.status)
	defer w.detach()
	if w.leaderSub != nil {
		defer w.leaderSub.Unsubscribe()
	}

	// Checked twice per heartbeat: a consumer silent for two is noticed
	// within two and a half.
	hb := time.NewTicker(w.hbEvery / 2)
	defer hb.Stop()
	var probe <-chan time.Time
	if w.guard {
		t := time.NewTicker(w.probeEvery)
		defer t.Stop()
		probe = t.C
	}
	for {
		select {
		case <-w.ctx.Done():
			return
		case <-w.s.sess.done:
			w.fail(kvcore.ErrNotConnected)
		case st := <-w.status:
			switch st {
			case nats.CLOSED:
				w.fail(kvcore.ErrNotConnected)
			case nats.CONNECTED:
				// The server may have restarted (and lost the consumer)
				// or not (and kept sending into the void): start over,
				// at a random moment so a fleet does not all at once,
				// unless the consumer was made since (by the attempts of
				// an outage, one of which the reconnect let through).
				if w.jitter() && !w.attachedSinceReconnect() {
					w.reattach("reconnected")
				}
			}
		case <-w.resets:
			if w.broken() {
				w.reattach("delivery gap")
			}
		case <-hb.C:
			if w.silent() && !w.slowButAlive() {
				w.reattach("missed heartbeats")
			}
		case e := <-w.elected:
			a, prev := w.cur.Load(), w.leader
			w.leader = e.Leader
			if a != nil && e.lost(a.host, prev) {
				w.reattach("stream leader changed to " + e.Leader + ", consumer host " + a.host + " is gone")
			}
		case <-probe:
			w.probe()
		}
	}
}

// attachedSinceReconnect reports whether the current consumer was made on
// the connection as it is since its latest reconnect (nats.go counts a
// reconnect before it reports the connection CONNECTED).
func (w *watch) attachedSinceReconnect() bool {
	a := w.cur.Load()
	return a != nil && a.reconnects == w.s.sess.nc.Stats().Reconnects
}

// jitter waits a random part of Options.ReconnectJitter; false when the
// watch ended meanwhile.
func (w *watch) jitter() bool {
	if w.s.opts.ReconnectJitter <= 0 {
		return true
	}
	t := time.NewTimer(rand.N(w.s.opts.ReconnectJitter))
	defer t.Stop()
	select {
	case <-w.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (w *watch) broken() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	a := w.cur.Load()
	return a == nil || a.broken
}

// silent reports whether the current consumer has gone quiet for two
// heartbeats while nothing waits to be handled.
func (w *watch) silent() bool {
	if w.busy.Load() > 0 {
		return false
	}
	if time.Since(time.Unix(0, w.activity.Load())) < 2*w.hbEvery {
		return false
	}
	if a := w.cur.Load(); a != nil {
		if n, _, err := a.sub.Pending(); err == nil && n > 0 {
			return false
		}
	}
	return true
}

// slowButAlive asks the server about the consumer of a watch gone silent.
// A server that is merely slow (a loaded host) still has it, bound to the
// watch's inbox, with nothing delivered that the watch does not handle
// within the check: the watch keeps it, rather than resume elsewhere, which
// fails a state sync that busy keys left behind (its resume window is gone)
// and makes its caller resync the whole bucket. A consumer gone, a server
// that does not answer within a heartbeat, or deliveries that do not
// arrive within one, and it is replaced.
func (w *watch) slowButAlive() bool {
	a := w.cur.Load()
	if a == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(w.ctx, min(w.hbEvery, w.s.opts.Timeout))
	defer cancel()
	c, err := w.s.sess.js.PushConsumer(ctx, w.s.stream, a.name)
	if err != nil {
		return false
	}
	info := c.CachedInfo()
	if !info.PushBound {
		return false
	}
	// A put can land while the watch asks: the server counts its delivery
	// before the watch has handled it. Wait for it as long as the check
	// may last.
	tick := time.NewTicker(inFlightPoll)
	defer tick.Stop()
	for {
		if !w.mu.TryLock() {
			return true // a handler runs: the consumer delivers
		}
		handled := a.dseq
		w.mu.Unlock()
		if handled >= info.Delivered.Consumer {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

// reattachKey is the context key of WithReattach's function.
type reattachKey struct{}

// WithReattach returns a copy of ctx whose watches (a Store's Watch on it,
// or on a context derived from it) report each attempt to re-create their
// consumer to f, as Options.OnReattach hears every watch's: err is the
// attempt's failure, nil once it succeeded. Options.OnReattach names only
// the bucket and scope, which several watches may share; f hears one watch,
// so a caller keeping health per watch does not take one watch's failure
// for another's. f is called from the watch's goroutine and must not block.
func WithReattach(ctx context.Context, f func(err error)) context.Context {
	return context.WithValue(ctx, reattachKey{}, f)
}

// logAttrsKey is the context key of WithLogAttrs's attributes.
type logAttrsKey struct{}

// WithLogAttrs returns a copy of ctx whose watches add attrs (slog's
// key-value pairs) to the lines they log, such as the name a caller knows
// the watch by: several watches may share a bucket and scope.
func WithLogAttrs(ctx context.Context, attrs ...any) context.Context {
	return context.WithValue(ctx, logAttrsKey{}, attrs)
}

// logAttrs are the attributes WithLogAttrs put in ctx, if any.
func logAttrs(ctx context.Context) []any {
	attrs, _ := ctx.Value(logAttrsKey{}).([]any)
	return attrs
}

// reattached reports an attempt to re-create the consumer to
// Options.OnReattach and to the watch's own WithReattach function.
func (w *watch) reattached(err error) {
	if f := w.s.opts.OnReattach; f != nil {
		f(w.s.bucket, w.scope, err)
	}
	if f, _ := w.ctx.Value(reattachKey{}).(func(error)); f != nil {
		f(err)
	}
}

// reattach replaces the current consumer, retrying with jittered, capped
// exponential backoff until it succeeds, the watch ends, or the failure is
// one that retrying cannot fix.
func (w *watch) reattach(reason string) {
	w.detach()
	w.log.Info("re-creating watch consumer", "reason", reason)
	defer w.startBridge().stop()
	var missingSince time.Time // when the attempts began to find no stream
	// n counts the attempts since the start or the latest leader election:
	// it sets their timeout and backoff.
	for attempt, n := 0, 0; ; attempt, n = attempt+1, n+1 {
		err := w.attach(w.attemptBound(n))
		if err == nil {
			w.log.Info("watch consumer re-created", "attempts", attempt+1)
			w.reattached(nil)
			return
		}
		if w.ctx.Err() != nil {
			return
		}
		if errors.Is(err, errLeaderElected) {
			w.log.Debug("a new stream leader was elected during an attempt; retrying at once")
			n = -1
			continue
		}
		w.reattached(err)
		switch {
		case !isStreamNotFound(err):
			missingSince = time.Time{}
		case missingSince.IsZero():
			missingSince = time.Now()
		}
		if terminal := w.terminal(err, missingSince); terminal != nil {
			w.fail(terminal)
			return
		}
		if attempt&(attempt+1) == 0 { // 0, 1, 3, 7, …: log less as it drags on
			w.log.Warn("re-creating watch consumer failed; retrying", "attempt", attempt+1, "err", err)
		}
		t := time.NewTimer(w.backoff(n))
		select {
		case <-w.ctx.Done():
			t.Stop()
			return
		case st := <-w.status:
			t.Stop()
			if st == nats.CLOSED {
				w.fail(kvcore.ErrNotConnected)
				return
			}
		case e := <-w.elected: // the stream has a leader again: retry now
			t.Stop()
			w.leader = e.Leader
			n = -1
		case <-t.C:
		}
	}
}

// terminal returns the error that ends the watch, or nil to retry.
// missingSince is when the attempts began to find the stream missing.
func (w *watch) terminal(err error, missingSince time.Time) error {
	switch {
	case errors.Is(err, errCursorExpired), errors.Is(err, errRefuseWrap):
		return err
	case !missingSince.IsZero() && time.Since(missingSince) >= w.notFoundFor:
		return fmt.Errorf("bucket %s is gone (missing for %v): %w", w.s.bucket, w.notFoundFor, err)
	case !w.s.sess.live():
		return fmt.Errorf("%w: %v", kvcore.ErrNotConnected, err)
	}
	return nil
}

func isStreamNotFound(err error) bool {
	return errors.Is(err, jetstream.ErrStreamNotFound) || apiCode(err) == codeStreamNotFound
}

// attemptBound bounds attempt n: attemptTimeout, doubled every
// attemptsPerStep attempts, at most Options.Timeout.
func (w *watch) attemptBound(n int) time.Duration {
	return min(w.s.opts.Timeout, attemptTimeout<<min(n/attemptsPerStep, 5))
}

// backoff is the pause before attempt+1: exponential from backoffBase,
// capped at backoffCap, with up to half of it jittered away.
func (w *watch) backoff(attempt int) time.Duration {
	d := w.backoffCap
	if attempt < 30 {
		d = min(w.backoffBase<<attempt, w.backoffCap)
	}
	return d/2 + rand.N(d/2+1)
}

// probe is the floor guard's backstop for a watch that delivered nothing
// since the last probe.
func (w *watch) probe() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.delivered {
		w.delivered = false
		return
	}
	if a := w.cur.Load(); a != nil && !a.broken && w.guarding() {
		w.checkFloor(a)
	}
}

// checkFloor is the live retention floor guard of a whole-bucket watch
// (see guarding): before it moves past a gap in the revisions, the
// stream's first sequence must still be at most pos+1, else records after
// pos were dropped before the watch saw them (expiry without markers,
// discard-old eviction, a purge of the stream) and the watch fails with
// kvcore.ErrCursorExpired. A gap with the floor still low is benign: the
// records in it were superseded by later revisions of their keys.
func (w *watch) checkFloor(a *attachment) bool {
	st, err := w.s.streamState(w.ctx)
	if err != nil {
		// Nothing is delivered past the gap until a new consumer has
		// checked the resume window.
		w.log.Warn("floor guard stream lookup failed", "err", err)
		w.reset(a)
		return false
	}
	if !resumeWindowOK(w.pos, st.first) {
		a.broken = true
		w.fail(fmt.Errorf("%w: stream retention overran live watch (first sequence %d > delivered frontier %d + 1); restart will resync",
			errCursorExpired, st.first, w.pos))
		return false
	}
	return true
}
