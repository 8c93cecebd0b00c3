package natskv

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// While a watch that has synced re-creates its consumer, a bridge reads
// what is written meanwhile with direct gets and delivers it. Creating a
// consumer needs the cluster's meta leader; when the server that died led
// both the stream and the meta group, the stream has a new leader (and
// takes writes) seconds before a consumer can be created again. A direct
// get needs neither: any replica of the stream answers it. Before it
// delivers what it read, the bridge checks with the stream's leader that
// the stream is the one the watch started on and, for a guarded watch,
// that retention dropped nothing after pos. The new consumer starts after
// the pos it was created for, and skips what the bridge delivered since.

// Bridge tuning.
const (
	// bridgeEvery is the pause between two rounds of direct gets that
	// found nothing new (up to half of it jittered away, so a fleet does
	// not poll in step).
	bridgeEvery = 250 * time.Millisecond
	// bridgeBatch bounds the records read in one round before they are
	// checked and delivered.
	bridgeBatch = 256
	// bridgeTimeout bounds one direct get. A failed one is tried again
	// after a pause: during an election the replicas stop answering for a
	// moment ("no responders"). Only a user not allowed direct gets ends
	// the bridge, and every later one of its store (see directDenied).
	bridgeTimeout = 500 * time.Millisecond
)

// Headers of a direct get's answer.
const (
	hdrDirectStream    = "Nats-Stream"
	hdrDirectSubject   = "Nats-Subject"
	hdrDirectSequence  = "Nats-Sequence"
	hdrDirectTimeStamp = "Nats-Time-Stamp"
	statusNotFound     = "404"
)

// bridge is one running bridge; stop ends it.
type bridge struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (b *bridge) stop() {
	if b == nil {
		return
	}
	b.cancel()
	<-b.done
}

// startBridge starts a bridge for a watch that has synced (before that
// its initial state comes from a consumer only), or returns nil.
func (w *watch) startBridge() *bridge {
	w.mu.Lock()
	synced := w.synced
	w.mu.Unlock()
	if !synced || w.s.noDirect.Load() {
		return nil
	}
	ctx, cancel := context.WithCancel(w.ctx)
	b := &bridge{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(b.done)
		w.runBridge(ctx)
	}()
	return b
}

// directRecord is one record read with a direct get.
type directRecord struct {
	seq uint64
	msg *nats.Msg
}

func (w *watch) runBridge(ctx context.Context) {
	subject := w.s.pre + ">"
	if len(w.filters) == 1 {
		subject = w.filters[0]
	}
	for {
		w.mu.Lock()
		pos := w.pos
		w.mu.Unlock()
		recs, err := w.readAfter(ctx, subject, pos)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, errRefuseWrap):
			return
		case err != nil && w.directDenied():
			return
		case err != nil:
			w.log.Debug("direct get failed; trying again", "err", err)
		}
		if len(recs) > 0 {
			more, err := w.bridgeDeliver(ctx, recs)
			if !more {
				w.log.Debug("bridge ended", "err", err)
				return
			}
			if err == nil {
				continue // read on at once
			}
		}
		t := time.NewTimer(bridgeEvery/2 + rand.N(bridgeEvery/2))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// directDenied reports whether the server refused the store's direct gets
// for want of permission (it answers nothing and tells the connection
// instead), and if so notes it for good, once.
func (w *watch) directDenied() bool {
	err := w.s.sess.nc.LastError()
	if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), w.directSubject()) {
		return false
	}
	if w.s.noDirect.CompareAndSwap(false, true) {
		w.log.Info("this user may not read the stream with direct gets: a watch re-creating its consumer waits for it; allow publishing to " + w.directSubject() + " to read on meanwhile")
	}
	return true
}

func (w *watch) directSubject() string { return w.s.sess.api + "DIRECT.GET." + w.s.stream }

// readAfter reads up to bridgeBatch records matching subject after pos,
// in order. It returns what it read before an error along with it.
func (w *watch) readAfter(ctx context.Context, subject string, pos uint64) ([]directRecord, error) {
	var recs []directRecord
	for len(recs) < bridgeBatch {
		seq, ok := resumeStartSequence(pos)
		if !ok {
			return recs, errRefuseWrap
		}
		r, found, err := w.directGet(ctx, subject, seq)
		if err != nil || !found {
			return recs, err
		}
		recs = append(recs, r)
		pos = r.seq
	}
	return recs, nil
}

// directGet reads the first record at or after seq that matches subject.
func (w *watch) directGet(ctx context.Context, subject string, seq uint64) (directRecord, bool, error) {
	body, err := json.Marshal(struct {
		Seq  uint64 `json:"seq"`
		Next string `json:"next_by_subj"`
	}{seq, subject})
	if err != nil {
		return directRecord{}, false, err
	}
	ctx, cancel := context.WithTimeout(ctx, bridgeTimeout)
	defer cancel()
	m, err := w.s.sess.nc.RequestWithContext(ctx, w.directSubject(), body)
	if err != nil {
		return directRecord{}, false, err
	}
	switch st := m.Header.Get(hdrStatus); st {
	case "":
	case statusNotFound:
		return directRecord{}, false, nil
	default:
		return directRecord{}, false, errors.New("direct get answered " + st + " " + m.Header.Get(hdrDescription))
	}
	// A mirror of the bucket answers direct gets sent to its stream too,
	// and may hold records of the bucket before it was re-created.
	if from := m.Header.Get(hdrDirectStream); from != w.s.stream {
		return directRecord{}, false, errors.New("direct get answered by stream " + from + ", a mirror of " + w.s.stream)
	}
	n, err := strconv.ParseUint(m.Header.Get(hdrDirectSequence), 10, 64)
	if err != nil || n < seq {
		return directRecord{}, false, errors.New("direct get answered without a valid " + hdrDirectSequence)
	}
	return directRecord{seq: n, msg: m}, true, nil
}

// bridgeDeliver checks recs with the stream's leader and delivers those
// after pos. It reports false when the bridge must end (the stream is not
// the watch's, retention dropped records after pos, the watch ends), and
// an error when the check could not be made (no stream leader yet).
func (w *watch) bridgeDeliver(ctx context.Context, recs []directRecord) (bool, error) {
	st, err := w.s.streamState(ctx)
	if err != nil {
		return ctx.Err() == nil, err
	}
	if !st.created.Equal(w.created) {
		return false, errors.New("the bucket was re-created")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.guarding() && !resumeWindowOK(w.pos, st.first) {
		// Retention dropped records after pos: the new consumer's
		// resume check fails the watch.
		return false, expiredAt(w.pos, st.first)
	}
	for _, r := range recs {
		if r.seq <= w.pos {
			continue // a new consumer delivered it
		}
		if u, ok := directUpdate(w.s.pre, r); ok && w.scope.Match(u.Key) {
			if !w.sendOr(ctx.Done(), kvcore.Event{Update: u}) {
				return false, ctx.Err()
			}
			w.delivered = true
			w.see(r.seq, r.msg, r.msg.Header.Get(hdrDirectSubject))
		}
		w.pos = r.seq
	}
	return true, nil
}

// directUpdate turns a record read with a direct get into an update; false
// for a subject outside the bucket's keyspace pre.
func directUpdate(pre string, r directRecord) (kvcore.Update, bool) {
	m := r.msg
	key, ok := keyOf(pre, m.Header.Get(hdrDirectSubject))
	if !ok {
		return kvcore.Update{}, false
	}
	u := kvcore.Update{Op: opOf(m.Header), Key: key, Version: kvcore.RevisionVersion(r.seq)}
	if u.Op == kvcore.OpPut {
		u.Value = m.Data
	}
	if t, err := time.Parse(time.RFC3339Nano, m.Header.Get(hdrDirectTimeStamp)); err == nil {
		u.Created = t
	}
	return u, true
}
