package kvcore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
)

// errBucketReplaced reports a bucket whose identity is not the one the
// fold's cursor was taken from. It is handled as [ErrCursorExpired].
var errBucketReplaced = errors.New("kvcore: the bucket is not the one the fold's cursor was taken from")

// checkBucket reads the bucket's identity once the session's watch is
// attached (so a re-creation before the attach is seen) and, when the
// session resumes from a cursor taken on another incarnation, or on an
// unrecorded one, fails it as expired.
func (l *appliedLoop) checkBucket(ctx context.Context, from Cursor) error {
	if l.ident == nil {
		return nil
	}
	id, err := l.ident.BucketID(ctx)
	if err != nil {
		return fmt.Errorf("kvcore: reading the bucket's identity: %w", err)
	}
	l.sessionID = id
	if from.IsNone() || id == l.knownID {
		return nil
	}
	known := strconv.Quote(l.knownID)
	if l.knownID == "" {
		known = "an unrecorded one"
	}
	return fmt.Errorf("%w: %w: the bucket is %q, the cursor %v was taken from %s", ErrCursorExpired, errBucketReplaced, id, from, known)
}

// adoptBucket persists the identity of the session's bucket once the fold
// holds a checkpoint taken on it.
func (l *appliedLoop) adoptBucket(ctx context.Context) error {
	if l.ident == nil || l.sessionID == l.knownID {
		return nil
	}
	id := l.sessionID
	err := l.retry(ctx, func() error {
		if err := l.cfg.OnBucketID(ctx, id); err != nil {
			return fmt.Errorf("persisting the bucket identity %q: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	l.cfg.Logger.Info("recorded the bucket's identity", "scope", l.cfg.Scope.String(), "bucket_id", id, "previous", l.knownID)
	l.knownID = id
	return nil
}
