package natskv

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstreamkv/slipstream/kvcore"
)

var _ kvcore.HistoryReader = (*store)(nil)

// errHistoryEnded: the watcher reading a key's history stopped before the
// end of it (its subscription closed, e.g. with the connection).
var errHistoryEnded = errors.New("natskv: history watcher stopped early")

// History returns the records the bucket still holds for key, oldest first,
// read with an ordered consumer as nats.go's KeyValue.History does (so it
// needs a watch's permissions). Unlike that call it gives up when ctx or
// [Options.Timeout] ends. See [kvcore.HistoryReader].
func (s *store) History(ctx context.Context, key string) ([]kvcore.Update, error) {
	var us []kvcore.Update
	err := s.do(ctx, "history", key, func(ctx context.Context) error {
		w, err := s.kv.Watch(ctx, key, jetstream.IncludeHistory())
		if err != nil {
			return err
		}
		defer w.Stop()
		us = us[:0]
		for {
			select {
			case e, ok := <-w.Updates():
				switch {
				case !ok:
					return errHistoryEnded
				case e == nil: // the records present at the start are in
					if len(us) == 0 {
						return jetstream.ErrKeyNotFound
					}
					return nil
				}
				us = append(us, historyUpdate(e))
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	})
	return us, err
}

// historyUpdate converts one record of a key's history.
func historyUpdate(e jetstream.KeyValueEntry) kvcore.Update {
	u := kvcore.Update{Key: e.Key(), Version: kvcore.RevisionVersion(e.Revision()), Created: e.Created()}
	switch e.Operation() {
	case jetstream.KeyValueDelete:
		u.Op = kvcore.OpDelete
	case jetstream.KeyValuePurge:
		u.Op = kvcore.OpPurge
	default:
		u.Op, u.Value = kvcore.OpPut, e.Value()
		if u.Value == nil {
			u.Value = []byte{}
		}
	}
	return u
}
