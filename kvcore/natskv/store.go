package natskv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// store is one bucket on one session.
type store struct {
	sess   *session
	opts   Options
	log    *slog.Logger
	bucket string
	stream string
	pre    string // subject prefix of the bucket's keys: "$KV.<bucket>."
	kv     jetstream.KeyValue

	// noDirect: the server refused this user's direct gets on the stream
	// (see bridge.go).
	noDirect atomic.Bool

	// tuneWatch, when set, adjusts every new watch before its first
	// consumer is created: the seam tests use to shorten intervals and
	// inject faults.
	tuneWatch func(*watch)
}

var _ kvcore.Store = (*store)(nil)

func newStore(sess *session, opts Options, bucket string, kv jetstream.KeyValue) *store {
	return &store{
		sess:   sess,
		opts:   opts,
		log:    opts.Logger.With("bucket", bucket),
		bucket: bucket,
		stream: streamName(bucket),
		pre:    subjectPrefix(bucket),
		kv:     kv,
	}
}

func (s *store) Bucket() string { return s.bucket }

// do runs one operation on key, bounded by the timeout, and wraps its
// error. While nothing answers — a replicated bucket between leaders, or
// just created — it tries again: a request nobody received changed nothing.
// Once nobody has answered for bucketGoneAfter, it asks whether the bucket
// still exists: a bucket two lookups in a row do not find fails with
// kvcore.ErrBucketNotFound rather than at the timeout.
func (s *store) do(ctx context.Context, op, key string, fn func(ctx context.Context) error) error {
	if err := s.check(key); err != nil {
		return &kvcore.OpError{Op: op, Bucket: s.bucket, Key: key, Err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	pause := noResponderPause
	var unanswered time.Time
	notFound := 0 // lookups in a row that did not find the bucket
	for {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if !noResponders(err) {
			return &kvcore.OpError{Op: op, Bucket: s.bucket, Key: key, Err: mapErr(err)}
		}
		switch {
		case unanswered.IsZero():
			unanswered = time.Now()
		case time.Since(unanswered) < bucketGoneAfter:
		case !s.gone(ctx):
			notFound = 0
		default:
			// One answer could come from a meta leader just elected.
			if notFound++; notFound == 2 {
				return &kvcore.OpError{Op: op, Bucket: s.bucket, Key: key, Err: kvcore.ErrBucketNotFound}
			}
		}
		select {
		case <-ctx.Done():
			return &kvcore.OpError{Op: op, Bucket: s.bucket, Key: key, Err: mapErr(fmt.Errorf("%w (last: %v)", ctx.Err(), err))}
		case <-time.After(pause):
			pause = min(2*pause, time.Second)
		}
	}
}

// noResponderPause is the first pause before retrying a request nobody answered.
const noResponderPause = 50 * time.Millisecond

// bucketGoneAfter is how long requests go unanswered before do asks whether
// the bucket was deleted; a leader election is usually over by then.
const bucketGoneAfter = 500 * time.Millisecond

// gone reports whether the bucket's stream no longer exists. A lookup that
// fails otherwise (no permission, no answer within goneLookup) says
// nothing: the operation goes on retrying.
func (s *store) gone(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, goneLookup)
	defer cancel()
	_, err := s.streamState(ctx)
	return errors.Is(err, jetstream.ErrStreamNotFound)
}

// goneLookup bounds gone's lookup, so that a silent meta leader does not
// use up the operation's time.
const goneLookup = 250 * time.Millisecond

func noResponders(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse)
}

func (s *store) check(key string) error {
	if !s.sess.live() {
		return kvcore.ErrNotConnected
	}
	if !kvcore.ValidKey(key) {
		return kvcore.ErrInvalidKey
	}
	return nil
}

// Entry reads key from the bucket's stream through its leader, which a
// watch's reconciliation relies on to tell whether a key missing from a
// listing is gone. A direct get would be answered by any mirror of the
// bucket as well (a regional copy, a backup), which may lag it or hold
// keys of the bucket from before it was re-created: a reconciliation that
// asked one kept a deleted key's output for good. It needs permission to
// publish to $JS.API.STREAM.MSG.GET.<stream>.
func (s *store) Entry(ctx context.Context, key string) (kvcore.Entry, error) {
	var e kvcore.Entry
	err := s.do(ctx, "entry", key, func(ctx context.Context) error {
		m, err := s.sess.leader.GetLastMsg(s.stream, s.pre+key, nats.Context(ctx))
		switch {
		case errors.Is(err, nats.ErrMsgNotFound):
			return jetstream.ErrKeyNotFound
		case err != nil:
			return err
		case opOf(m.Header) != kvcore.OpPut:
			return jetstream.ErrKeyDeleted
		}
		e = kvcore.Entry{Key: key, Value: m.Data, Version: kvcore.RevisionVersion(m.Sequence), Created: m.Time}
		return nil
	})
	return e, err
}

// Get reads key as nats.go's KeyValue does: with a direct get when the
// stream allows them, which any replica answers (a mirror too; see Entry).
func (s *store) Get(ctx context.Context, key string) (kvcore.Entry, error) {
	var e kvcore.Entry
	err := s.do(ctx, "get", key, func(ctx context.Context) error {
		kve, err := s.kv.Get(ctx, key)
		if err != nil {
			return err
		}
		if len(kve.Value()) == 0 {
			return jetstream.ErrKeyNotFound
		}
		e = kvcore.Entry{Key: key, Value: kve.Value(), Version: kvcore.RevisionVersion(kve.Revision()), Created: kve.Created()}
		return nil
	})
	return e, err
}

func (s *store) Put(ctx context.Context, key string, value []byte) (kvcore.Version, error) {
	var v kvcore.Version
	err := s.do(ctx, "put", key, func(ctx context.Context) error {
		rev, err := s.kv.Put(ctx, key, value)
		v = kvcore.RevisionVersion(rev)
		return err
	})
	return v, err
}

func (s *store) Create(ctx context.Context, key string, value []byte) (kvcore.Version, error) {
	var v kvcore.Version
	err := s.do(ctx, "create", key, func(ctx context.Context) error {
		rev, err := s.kv.Create(ctx, key, value)
		if isWrongLastSequence(err) || errors.Is(err, jetstream.ErrKeyExists) {
			// nats.go retries over a delete or purge marker itself, so a
			// conflict here means the latest record is a put.
			return fmt.Errorf("%w: %v", kvcore.ErrAlreadyExists, oncePrefixed(err))
		}
		v = kvcore.RevisionVersion(rev)
		return err
	})
	return v, err
}

func (s *store) Update(ctx context.Context, key string, value []byte, expected kvcore.Version) (kvcore.Version, error) {
	rev, ok := expected.Revision()
	if !ok {
		return kvcore.Version{}, &kvcore.OpError{Op: "update", Bucket: s.bucket, Key: key, Err: kvcore.ErrInvalidVersion}
	}
	var v kvcore.Version
	err := s.do(ctx, "update", key, func(ctx context.Context) error {
		nrev, err := s.kv.Update(ctx, key, value, rev)
		v = kvcore.RevisionVersion(nrev)
		return err
	})
	return v, err
}

func (s *store) Delete(ctx context.Context, key string) error {
	return s.do(ctx, "delete", key, func(ctx context.Context) error { return s.kv.Delete(ctx, key) })
}

func (s *store) DeleteVersion(ctx context.Context, key string, expected kvcore.Version) error {
	rev, ok := expected.Revision()
	if !ok {
		return &kvcore.OpError{Op: "delete-version", Bucket: s.bucket, Key: key, Err: kvcore.ErrInvalidVersion}
	}
	return s.do(ctx, "delete-version", key, func(ctx context.Context) error {
		_, err := s.kv.Update(ctx, key, nil, rev)
		return err
	})
}

func (s *store) Purge(ctx context.Context, key string) error {
	return s.do(ctx, "purge", key, func(ctx context.Context) error { return s.kv.Purge(ctx, key) })
}
