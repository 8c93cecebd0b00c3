package natskv

import (
	"context"
	"errors"
	"fmt"
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
	var keys []string
	err := s.scan(ctx, "keys", prefix, true, func(u kvcore.Update) { keys = append(keys, u.Key) })
	return keys, err
}

// Scan returns the live entries under prefix with one consumer.
func (s *store) Scan(ctx context.Context, prefix string) ([]kvcore.Entry, error) {
	var entries []kvcore.Entry
	err := s.scan(ctx, "scan", prefix, false, func(u kvcore.Update) { entries = append(entries, u.Entry()) })
	return entries, err
}

// scan reads the last record of every key under prefix through one
// ephemeral consumer (deliver last per subject, no acks, so buckets of any
// size are read whole) and calls fn for each live one: delete and purge
// markers and empty values are skipped.
func (s *store) scan(ctx context.Context, op, prefix string, headersOnly bool, fn func(kvcore.Update)) error {
	fail := func(err error) error { return &kvcore.OpError{Op: op, Bucket: s.bucket, Key: prefix, Err: err} }
	if !s.sess.live() {
		return fail(kvcore.ErrNotConnected)
	}
	if !kvcore.ValidPrefix(prefix) {
		return fail(kvcore.ErrInvalidKey)
	}
	filters, widened := filterSubjects(s.pre, kvcore.Prefixes(prefix))
	spec := consumerSpec{filters: filters, headersOnly: headersOnly}
	keep := func(u kvcore.Update, m *nats.Msg) bool {
		if u.Op != kvcore.OpPut || (widened && !strings.HasPrefix(u.Key, prefix)) {
			return false
		}
		if headersOnly {
			return m.Header.Get(hdrMsgSize) != "0"
		}
		return len(u.Value) > 0
	}
	var err error
	for range scanAttempts {
		var found []kvcore.Update
		err = s.scanOnce(ctx, spec, func(u kvcore.Update, m *nats.Msg) {
			if keep(u, m) {
				found = append(found, u)
			}
		})
		if err == nil {
			for _, u := range found {
				fn(u)
			}
			return nil
		}
		if !errors.Is(err, errScanGap) {
			break
		}
		s.log.Debug("scan restarts", "err", err)
	}
	return fail(mapErr(err))
}

// scanOnce runs one consumer to the end of its backlog.
func (s *store) scanOnce(ctx context.Context, spec consumerSpec, fn func(kvcore.Update, *nats.Msg)) error {
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
	defer s.deleteConsumer(name)
	pending, err := s.createConsumer(ctx, spec, name, sub.Subject)
	if err != nil || pending == 0 {
		return err
	}

	// Each wait for the next message is bounded by the operation timeout:
	// the ticker fails the scan after a full period without progress.
	tick := time.NewTicker(s.opts.Timeout)
	defer tick.Stop()
	var dseq, seen uint64
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
			switch controlOf(m) {
			case ctrlFlowControl:
				_ = nc.Publish(m.Reply, nil)
				continue
			case ctrlHeartbeat:
				if r := m.Header.Get(hdrStalled); r != "" {
					_ = nc.Publish(r, nil)
				}
				continue
			case ctrlConsumerGone:
				return errScanGap
			case ctrlOther:
				continue
			}
			u, meta, ok := decodeMsg(s.pre, m)
			if meta.consumer == 0 {
				continue // not a delivery
			}
			if meta.consumer != dseq+1 {
				return errScanGap
			}
			dseq = meta.consumer
			seen++
			if ok {
				fn(u, m)
			}
			if meta.pending == 0 || seen >= pending {
				return nil
			}
		}
	}
}
