package agent

import (
	"context"
	"errors"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/plugins/host"
)

// foldView is the view a plugin reads during a call: the watch's fold, which
// WatchApplied has already brought to the state after the batch being applied.
type foldView struct{ fold kvcore.Fold }

var _ host.View = foldView{}

func (v foldView) Get(_ context.Context, key string) (host.Entry, bool, error) {
	e, err := v.fold.Get(key)
	if errors.Is(err, kvcore.ErrNotFound) {
		return host.Entry{}, false, nil
	}
	if err != nil {
		return host.Entry{}, false, err
	}
	return hostEntry(e), true, nil
}

// errPageFull stops a Range once the plugin's page is full.
var errPageFull = errors.New("page full")

// Scan implements [host.View]. Every entry's Version shares one buffer, as
// the View contract allows: a full render of 100k keys then costs no
// allocation per key.
func (v foldView) Scan(ctx context.Context, prefix, after string, fn func(host.Entry) bool) error {
	var version []byte
	err := v.fold.Range(ctx, prefix, after, func(e kvcore.Entry) error {
		rev, _ := e.Version.Revision()
		version = e.Version.AppendBytes(version[:0])
		if !fn(host.Entry{Key: e.Key, Value: e.Value, Revision: rev, Version: version}) {
			return errPageFull
		}
		return nil
	})
	if errors.Is(err, errPageFull) {
		return nil
	}
	return err
}

func hostEntry(e kvcore.Entry) host.Entry {
	rev, _ := e.Version.Revision()
	return host.Entry{Key: e.Key, Value: e.Value, Revision: rev, Version: e.Version.Bytes()}
}

func hostCursor(c kvcore.Cursor) host.Cursor {
	rev, _ := c.Revision()
	return host.Cursor{Revision: rev, Version: c.Bytes()}
}

func hostBatch(b kvcore.Batch) host.Batch {
	hb := host.Batch{Cursor: hostCursor(b.Cursor), Updates: make([]host.Update, len(b.Updates))}
	for i, u := range b.Updates {
		rev, _ := u.Version.Revision()
		op := host.OpPut
		switch u.Op {
		case kvcore.OpDelete:
			op = host.OpDelete
		case kvcore.OpPurge:
			op = host.OpPurge
		}
		hb.Updates[i] = host.Update{Op: op, Key: u.Key, Value: u.Value, Revision: rev, Version: u.Version.Bytes()}
	}
	return hb
}
