package natskv

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
)

// seenRecord is the last record a watch handled: its revision, subject and
// value size. A server that went back in time (its store restored from an
// older copy, or an unsynced tail lost in a crash) keeps the stream's
// identity and numbers new records with revisions the watch already
// handled; once they reach the watch's position again, a resume after it
// would skip them without a sign. The record at the seen revision tells:
// when it is still there but another one, the watch's position means
// nothing on this stream.
type seenRecord struct {
	seq     uint64
	subject string
	size    int
}

// see records m, a record at revision seq the watch handled. mu held.
func (w *watch) see(seq uint64, m *nats.Msg, subject string) {
	w.seen = seenRecord{seq: seq, subject: subject, size: len(m.Data)}
}

// checkSeen reads the record at the seen revision, between first and last
// (the stream's): it fails with errCursorExpired when another record holds
// that revision now. A record gone since (superseded, deleted, expired)
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
	if subject != seen.subject || len(r.msg.Data) != seen.size {
		return fmt.Errorf("%w: revision %d is another record now (%s, %d bytes; the watch handled %s, %d bytes): the server lost records it had acknowledged and reused their revisions (a store restored from an older copy, or an unsynced tail lost in a crash)",
			errCursorExpired, seen.seq, subject, len(r.msg.Data), seen.subject, seen.size)
	}
	return nil
}
