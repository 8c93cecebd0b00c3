package natskv

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// scanAttempts bounds how often a scan restarts after its consumer skipped a
// delivery (the subscription overflowed); each restart starts over.
const scanAttempts = 3

var errScanGap = errors.New("natskv: scan consumer skipped a delivery")

// Keys lists the live keys under prefix with one headers-only consumer.
func (s *store) Keys(ctx context.Context, prefix string) ([]string, error) {
	return scan(ctx, s, "keys", prefix, true, false, func(u kvcore.Update, _ *nats.Msg) string { return u.Key })
}

var _ kvcore.KeyVersionLister = (*store)(nil)

// KeyVersions lists the keys under prefix whose latest record is a put,
// empty values included, with the revision and the value size of that
// record, from the same headers-only consumer as Keys.
func (s *store) KeyVersions(ctx context.Context, prefix string) ([]kvcore.KeyVersion, error) {
	return scan(ctx, s, "keys", prefix, true, true, func(u kvcore.Update, m *nats.Msg) kvcore.KeyVersion {
		size, err := strconv.Atoi(m.Header.Get(hdrMsgSize))
		if err != nil {
			size = -1
		}
		return kvcore.KeyVersion{Key: u.Key, Version: u.Version, Size: size}
	})
}

// Scan returns the live entries under prefix with one consumer.
func (s *store) Scan(ctx context.Context, prefix string) ([]kvcore.Entry, error) {
	return scan(ctx, s, "scan", prefix, false, false, func(u kvcore.Update, _ *nats.Msg) kvcore.Entry { return u.Entry() })
}

// scan reads the last record of every key under prefix through one
// ephemeral consumer (deliver last per subject, no acks, so buckets of any
// size are read whole) and returns conv of each live one, once per key:
// delete and purge markers are skipped, and so are empty values unless
// keepEmpty. A key written or removed during the scan is delivered again
// after its last record: the newest delivery stands (a removal drops it).
func scan[T any](ctx context.Context, s *store, op, prefix string, headersOnly, keepEmpty bool, conv func(kvcore.Update, *nats.Msg) T) ([]T, error) {
	fail := func(err error) error { return &kvcore.OpError{Op: op, Bucket: s.bucket, Key: prefix, Err: err} }
	if !s.sess.live() {
		return nil, fail(kvcore.ErrNotConnected)
	}
	if !kvcore.ValidPrefix(prefix) {
		return nil, fail(kvcore.ErrInvalidKey)
	}
	filters, widened := filterSubjects(s.pre, kvcore.Prefixes(prefix))
	spec := consumerSpec{filters: filters, headersOnly: headersOnly}
	var err error
	for range scanAttempts {
		// Records up to the stream's last one before the consumer exists
		// are one per key; a later one may repeat a key.
		var before streamState
		if before, err = s.streamState(ctx); err != nil {
			break
		}
		var found []T
		var keys []string
		var dead map[int]bool // late removals, at their index in found
		late := false
		reserve := func(pending uint64) { found = slices.Grow(found, int(min(pending, maxReserve))) }
		err = s.scanOnce(ctx, spec, before, reserve, func(u kvcore.Update, m *nats.Msg) {
			if widened && !strings.HasPrefix(u.Key, prefix) {
				return
			}
			rev, _ := u.Version.Revision()
			late = late || rev > before.last
			live := u.Op == kvcore.OpPut &&
				(keepEmpty || !(headersOnly && m.Header.Get(hdrMsgSize) == "0" || !headersOnly && len(u.Value) == 0))
			switch {
			case live:
				found = append(found, conv(u, m))
			case rev > before.last: // it may remove a key listed already
				if dead == nil {
					dead = map[int]bool{}
				}
				dead[len(found)] = true
				var none T
				found = append(found, none)
			default:
				return
			}
			keys = append(keys, u.Key)
		})
		if err == nil && late {
			found = newestPerKey(found, keys, dead)
		}
		if err == nil {
			return found, nil
		}
		if !errors.Is(err, errScanGap) {
			break
		}
		s.log.Debug("scan restarts", "err", err)
	}
	return nil, fail(mapErr(err))
}

// newestPerKey keeps, of the results found for the same key, the last one
// unless it is a removal (dead), in their order otherwise; keys[i] is
// found[i]'s key.
func newestPerKey[T any](found []T, keys []string, dead map[int]bool) []T {
	last := make(map[string]int, len(keys))
	for i, k := range keys {
		last[k] = i
	}
	out := found[:0]
	for i, k := range keys {
		if last[k] == i && !dead[i] {
			out = append(out, found[i])
		}
	}
	return out
}

// maxReserve caps how many results a scan allocates room for up front.
const maxReserve = 1 << 20

// scanOnce runs one consumer until it has delivered everything (see
// caughtUp), telling reserve how many records it had pending when it was
// created and fn each of them; st is the stream's state, read before. A
// key that exists for the whole scan is delivered; one written or removed
// meanwhile may be or not.
func (s *store) scanOnce(ctx context.Context, spec consumerSpec, st streamState, reserve func(uint64), fn func(kvcore.Update, *nats.Msg)) error {
	nc := s.sess.nc
	msgs := make(chan *nats.Msg, 256)
	done := make(chan struct{})
	defer close(done)
	sub, err := nc.Subscribe(nc.NewInbox(), func(m *nats.Msg) {
		select {
		case msgs <- m:
		case <-done:
		}
	})
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()

	name := newConsumerName()
	defer s.drop(name)
	// The count at creation is exact: with nothing pending, no key exists.
	info, err := s.createConsumer(ctx, spec, name, sub.Subject)
	if err != nil || info.NumPending == 0 {
		return err
	}
	reserve(info.NumPending)
	floor, err := s.syncFloor(ctx, st, spec.filters)
	if err != nil {
		return err
	}

	// Each wait for the next message is bounded by the operation timeout:
	// the ticker fails the scan after a full period without progress.
	tick := time.NewTicker(s.opts.Timeout)
	defer tick.Stop()
	// dseq is the delivery sequence of the last message handled, askedAt
	// the last delivery the server's latest answer covers (no delivery up
	// to it asks again), and caughtUp what that answer said: the scan is
	// complete once it has handled askedAt.
	var dseq, askedAt uint64
	var caughtUp bool
	ask := func() (bool, error) {
		var err error
		if askedAt, caughtUp, err = s.caughtUp(ctx, name, floor); err != nil {
			return false, fmt.Errorf("asking whether the scan is complete: %w", err)
		}
		return caughtUp && dseq >= askedAt, nil
	}
	// handle reports whether the scan is complete.
	handle := func(m *nats.Msg) (bool, error) {
		switch controlOf(m) {
		case ctrlFlowControl:
			_ = nc.Publish(m.Reply, nil)
			return false, nil
		case ctrlHeartbeat:
			if n, err := strconv.ParseUint(m.Header.Get(hdrLastConsumer), 10, 64); err == nil && n > dseq {
				return false, errScanGap
			}
			if r := m.Header.Get(hdrStalled); r != "" {
				_ = nc.Publish(r, nil)
				return false, nil
			}
			return ask() // idle, whatever the last delivery's count said
		case ctrlConsumerGone:
			return false, errScanGap
		case ctrlOther:
			return false, nil
		}
		u, meta, ok := decodeMsg(s.pre, m)
		if meta.consumer == 0 {
			return false, nil // not a delivery
		}
		if meta.consumer != dseq+1 {
			return false, errScanGap
		}
		dseq = meta.consumer
		if ok {
			fn(u, m)
		}
		switch {
		case caughtUp:
			return dseq >= askedAt, nil
		case meta.pending > 0 || dseq <= askedAt:
			return false, nil
		}
		return ask()
	}
	progress := false
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			if !progress {
				return fmt.Errorf("no message for %v: %w", s.opts.Timeout, context.DeadlineExceeded)
			}
			progress = false
		case m := <-msgs:
			progress = true
			// Take what is already queued without going back to select.
			for n := len(msgs); ; n-- {
				if done, err := handle(m); done || err != nil {
					return err
				}
				if n == 0 {
					break
				}
				m = <-msgs
			}
		}
	}
}
