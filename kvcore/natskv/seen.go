package natskv

import (
	"context"
	"fmt"
	"hash/maphash"

	"github.com/nats-io/nats.go"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// seenRecord is the last record a watch handled: its revision, subject,
// value size and a hash of its value. A server that went back in time (its store restored from an
// older copy, or an unsynced tail lost in a crash) keeps the stream's
// identity and numbers new records with revisions the watch already
// handled; once they reach the watch's position again, a resume after it
// would skip them without a sign. The record at the seen revision tells:
// when it is still there but another one, the watch's position means
// nothing on this stream. The value's hash tells a new record of the same
// key and size (replicas=3, then replicas=4) from the one handled.
type seenRecord struct {
	seq     uint64
	subject string
	size    int
	sum     uint64
}

// seenSeed seeds the hashes of seen values, which live in this process only.
var seenSeed = maphash.MakeSeed()

// see records m, a record at revision seq the watch handled. mu held.
func (w *watch) see(seq uint64, m *nats.Msg, subject string) {
	w.seen = seenRecord{seq: seq, subject: subject, size: len(m.Data), sum: maphash.Bytes(seenSeed, m.Data)}
}

// checkSeen reads the record at the seen revision, between first and last
// (the stream's): it fails with errCursorExpired and kvcore.ErrOutOfStep
// when another record holds that revision now. A record gone since (superseded, deleted, expired)
// says nothing either way, nor does a read that fails (a stream without
// direct gets): the watch resumes as it did before the check.
func (w *watch) checkSeen(ctx context.Context, seen seenRecord, first, last uint64) error {
	if seen.seq == 0 || seen.seq < first || seen.seq > last {
		return nil
	}
	r, found, err := w.directGet(ctx, w.s.pre+">", seen.seq)
	if err != nil {
		w.log.Debug("cannot read the record at the last revision handled; resuming without checking it", "revision", seen.seq, "err", err)
		return nil
	}
	if !found || r.seq != seen.seq {
		return nil
	}
	subject := r.msg.Header.Get(hdrDirectSubject)
	size, sum := len(r.msg.Data), maphash.Bytes(seenSeed, r.msg.Data)
	if subject == seen.subject && size == seen.size && sum == seen.sum {
		return nil
	}
	now := fmt.Sprintf("%s, %d bytes", subject, size)
	if subject == seen.subject && size == seen.size {
		now += " of another value"
	}
	return fmt.Errorf("%w: %w: revision %d is another record now (%s; the watch handled %s, %d bytes): the server lost records it had acknowledged and reused their revisions (a store restored from an older copy, or an unsynced tail lost in a crash)",
		errCursorExpired, kvcore.ErrOutOfStep, seen.seq, now, seen.subject, seen.size)
}
