package kvcore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
)

// sameRevisionProbes is how many of the fold's keys a reconciliation reads
// back from the bucket to compare values (see sameRevision).
const sameRevisionProbes = 4

// sameRevision finds a revision reused by a record of the same key and
// value size, which a versioned listing cannot tell from the one the fold
// applied: a server that lost acknowledged records numbers the next writes
// with their revisions, and a write of the same key with a value of the
// same size (replicas=3, then replicas=4) takes the lost one's place. The
// revisions reused are the bucket's latest ones, and the records the
// session's watch delivered are the bucket's as it is now; so the fold's
// keys at the highest revisions up to where the session resumed that the
// bucket lists at the same revision and size are read back and their
// values compared. When a session before it failed without reconciling,
// those up to where that one resumed are read back too: the records it
// delivered take the top revisions, and may all agree.
type sameRevision struct {
	top []sameRevisionEntry // highest revision first, at most sameRevisionProbes
}

type sameRevisionEntry struct {
	key   string
	rev   uint64
	value []byte
}

// offer considers e, which the fold and the bucket's listing hold at
// revision rev with values of the same size.
func (s *sameRevision) offer(e Entry, rev uint64) {
	if len(s.top) == sameRevisionProbes && rev <= s.top[len(s.top)-1].rev {
		return
	}
	i, _ := slices.BinarySearchFunc(s.top, rev, func(t sameRevisionEntry, rev uint64) int {
		switch {
		case t.rev > rev:
			return -1
		case t.rev < rev:
			return 1
		}
		return 0
	})
	s.top = slices.Insert(s.top, i, sameRevisionEntry{key: e.Key, rev: rev, value: bytes.Clone(e.Value)})
	if len(s.top) > sameRevisionProbes {
		s.top = s.top[:sameRevisionProbes]
	}
}

// check reads the offered keys from src and fails when one is still at its
// revision with another value. A key changed or deleted since the listing
// says nothing: the watch delivers that change.
func (s *sameRevision) check(ctx context.Context, src Source) error {
	for _, t := range s.top {
		e, err := src.Entry(ctx, t.key)
		switch {
		case errors.Is(err, ErrNotFound), errors.Is(err, ErrUnsupported):
			continue
		case err != nil:
			return fmt.Errorf("kvcore: reconcile: reading %q to compare it with the fold: %w", t.key, err)
		}
		if rev, ok := e.Version.Revision(); ok && rev == t.rev && !bytes.Equal(e.Value, t.value) {
			return fmt.Errorf("%w: %w: key %q is at revision %d in the fold and in the bucket, with values of the same size that differ", ErrCursorExpired, ErrOutOfStep, t.key, t.rev)
		}
	}
	return nil
}
