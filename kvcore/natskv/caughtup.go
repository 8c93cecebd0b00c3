package natskv

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// When has a consumer delivered everything there was? A listing (Keys,
// Scan) stops then, and a watch sends Synced. Every delivery carries the
// consumer's num_pending, but that is a running count the server adjusts
// as records come and go, and it reads 0 too early in two ways:
//
//   - removing a record ahead of the consumer subtracts it at once, while
//     the record that replaced it is added only when the stream's signal
//     goroutine gets to it; a delivery in between says 0 although the key
//     updated (history 1) is still to come;
//   - deliver-last-per-subject on history > 1 counts the last record of each
//     key, yet every record removed ahead of the consumer is subtracted,
//     older revisions included (max age, discard old): the count runs out
//     while the initial state is still being delivered.
//
// So a delivery that says 0 only prompts a question, and so does an idle
// heartbeat (the server sends one whenever it has sent nothing for a
// while, also while paused or while it waits on a record removed under
// it): the consumer's own info, read a round trip later, must still say 0
// pending — by then the server has counted what it was about to count, or
// delivered it, and the info's delivery sequence includes that delivery.
// On history > 1 the consumer must also have reached the last record its
// filters matched when it was created (see syncFloor): only then is its
// list of last records done.
//
// A key that exists throughout then has its last record delivered: the
// consumer delivers the records it passes, and a key's record is removed
// only once its successor is stored, which the consumer reaches in turn.

// syncFloor returns how far in the stream a consumer with filters, just
// created on the stream st describes, must have looked before it can have
// delivered everything: on history > 1, the last record its filters match
// now, else nothing.
func (s *store) syncFloor(ctx context.Context, st streamState, filters []string) (uint64, error) {
	if st.history <= 1 {
		return 0, nil
	}
	return s.lastMatching(ctx, filters)
}

// lastMatching returns the sequence of the last record one of filters
// matches, or 0 if none does. It reads it off a throwaway consumer that
// starts there (deliver last), which needs no permission a watch does not.
func (s *store) lastMatching(ctx context.Context, filters []string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	cfg := jetstream.ConsumerConfig{
		Name:              newConsumerName(),
		Description:       "slipstream probe",
		DeliverPolicy:     jetstream.DeliverLastPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: 5 * time.Second,
		Replicas:          1,
		MemoryStorage:     true,
	}
	if len(filters) == 1 {
		cfg.FilterSubject = filters[0]
	} else {
		cfg.FilterSubjects = filters
	}
	c, err := s.sess.js.CreateConsumer(ctx, s.stream, cfg)
	if err != nil {
		return 0, err
	}
	s.drop(cfg.Name)
	info := c.CachedInfo()
	if info.NumPending == 0 {
		return 0, nil
	}
	return info.Delivered.Stream + 1, nil
}

// caughtUp asks the server about consumer name. done reports whether the
// consumer has nothing left to deliver and has looked at the stream up to
// floor; upTo is the last delivery it made, which the caller must have
// handled before acting on done.
func (s *store) caughtUp(ctx context.Context, name string, floor uint64) (upTo uint64, done bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	c, err := s.sess.js.PushConsumer(ctx, s.stream, name)
	if err != nil {
		return 0, false, err
	}
	info := c.CachedInfo()
	return info.Delivered.Consumer, info.NumPending == 0 && info.Delivered.Stream >= floor, nil
}
