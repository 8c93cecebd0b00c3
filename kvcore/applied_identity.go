package kvcore

import (
	"context"
	"errors"
	"fmt"
)

// errBucketReplaced reports a bucket whose identity is not the one the
// fold's cursor was taken from, or changed while a watch attached. It is
// handled as [ErrCursorExpired].
var errBucketReplaced = errors.New("kvcore: the bucket was replaced")

// errBucketUnrecorded reports a fold's cursor with no identity recorded
// (state from before identities were kept): the bucket may have been
// replaced since, and it is handled as [ErrCursorExpired].
var errBucketUnrecorded = errors.New("kvcore: no bucket identity was recorded with the fold's cursor")

// attach opens the session's watch from cursor from. With the identity
// check armed it reads the bucket's identity before and after: only when
// both agree is the watch known to run on that incarnation (a re-creation
// before the attach changes the second read, one after it the watch
// sees). The session then fails as expired if it resumes from a cursor
// taken on another incarnation, or on an unrecorded one.
func (l *appliedLoop) attach(ctx context.Context, from Cursor) (Watch, error) {
	var before string
	if l.ident != nil {
		var err error
		if before, err = l.bucketID(ctx); err != nil {
			return nil, err
		}
	}
	wa, err := l.watch(ctx, from)
	if err != nil || l.ident == nil {
		return wa, err
	}
	after, err := l.bucketID(ctx)
	if err == nil {
		err = l.checkBucket(from, before, after)
	}
	if err != nil {
		wa.Stop()
		return nil, err
	}
	l.sessionID = after
	return wa, nil
}

// bucketID reads the bucket's identity.
func (l *appliedLoop) bucketID(ctx context.Context) (string, error) {
	id, err := l.ident.BucketID(ctx)
	if err != nil {
		return "", fmt.Errorf("kvcore: reading the bucket's identity: %w", err)
	}
	return id, nil
}

// checkBucket judges the identities read before and after a watch from
// cursor from attached.
func (l *appliedLoop) checkBucket(from Cursor, before, after string) error {
	if before != after {
		return fmt.Errorf("%w: %w: it changed from %q to %q while the watch attached", ErrCursorExpired, errBucketReplaced, before, after)
	}
	if from.IsNone() || after == l.knownID {
		return nil
	}
	if l.knownID == "" {
		return fmt.Errorf("%w: %w: the bucket is %q, the cursor is %v", ErrCursorExpired, errBucketUnrecorded, after, from)
	}
	return fmt.Errorf("%w: %w: the bucket is %q, the cursor %v was taken from %q", ErrCursorExpired, errBucketReplaced, after, from, l.knownID)
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
