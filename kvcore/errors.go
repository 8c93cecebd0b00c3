package kvcore

import (
	"errors"
	"strings"
)

// Sentinel errors. Backends wrap them (with %w) so callers branch with
// errors.Is; messages start with "kvcore:".
var (
	// ErrNotConnected: the connection was never established or was closed.
	ErrNotConnected = errors.New("kvcore: store not connected")
	// ErrConnectionFailed: dialing, authenticating or creating a bucket failed.
	ErrConnectionFailed = errors.New("kvcore: connection failed")
	// ErrBucketNotFound: Open named a bucket that does not exist.
	ErrBucketNotFound = errors.New("kvcore: bucket not found")
	// ErrNotFound: the key has no live value.
	ErrNotFound = errors.New("kvcore: key not found")
	// ErrAlreadyExists: Create on a key whose latest record is a put
	// (including an empty-value tombstone written by DeleteVersion).
	ErrAlreadyExists = errors.New("kvcore: key already exists")
	// ErrRevisionMismatch: a compare-and-swap saw a different (or no) current version.
	ErrRevisionMismatch = errors.New("kvcore: revision mismatch")
	// ErrCursorExpired: the backend no longer retains the changes after the
	// cursor; resuming would silently skip some. Callers must re-sync.
	ErrCursorExpired = errors.New("kvcore: watch cursor expired (compacted)")
	// ErrOutOfStep: the bucket lost records a watch or fold had already
	// handled (its server's store was restored from an older copy, or lost
	// an unsynced tail in a crash) and numbered new records with revisions
	// it had passed, which a cursor alone cannot tell apart. It comes
	// wrapped in [ErrCursorExpired]: callers re-sync, and acknowledged
	// writes were lost, which is worth an operator's look.
	ErrOutOfStep = errors.New("kvcore: the bucket went back in time")
	// ErrWatchFailed: a watch could not be set up or ended with an error.
	ErrWatchFailed = errors.New("kvcore: watch failed")
	// ErrBucketFull: the bucket reached its byte limit and rejects writes
	// (NATS JetStream error 10077 with discard policy "new").
	ErrBucketFull = errors.New("kvcore: bucket full")
	// ErrTimeout: an operation did not complete within its deadline.
	ErrTimeout = errors.New("kvcore: operation timed out")
	// ErrInvalidKey: the key is empty or has characters the backend refuses.
	ErrInvalidKey = errors.New("kvcore: invalid key")
	// ErrInvalidBucket: the bucket name is empty or has characters the backend refuses.
	ErrInvalidBucket = errors.New("kvcore: invalid bucket name")
	// ErrInvalidConfig: a [StoreConfig] setting out of range (see
	// [StoreConfig.Validate]).
	ErrInvalidConfig = errors.New("kvcore: invalid store config")
	// ErrInvalidVersion: a version token the backend cannot use (e.g. not 8
	// bytes for NATS compare-and-swap).
	ErrInvalidVersion = errors.New("kvcore: invalid version token")
	// ErrVersionTooLong: more than MaxVersionLen bytes.
	ErrVersionTooLong = errors.New("kvcore: version token exceeds 10 bytes")
	// ErrEmptyScope: a watch scope with no prefixes. An empty prefix list
	// never means "the whole bucket"; use [AllKeys] for that.
	ErrEmptyScope = errors.New("kvcore: empty watch scope")
	// ErrFoldFailed: [WatchApplied] gave up after the fold failed
	// [AppliedConfig.MaxFoldFailures] times in a row.
	ErrFoldFailed = errors.New("kvcore: fold keeps failing")
	// ErrUnsupported: the backend does not offer this operation; see [Capabilities].
	ErrUnsupported = errors.New("kvcore: operation not supported by this backend")
)

// OpError records the operation, bucket and key of a failed call and wraps its
// cause, which is usually one of the sentinels above. Its message says
// "kvcore:" once: "kvcore: get app k: key not found".
type OpError struct {
	Op     string // "get", "put", "watch", ...
	Bucket string
	Key    string // empty for bucket-wide operations
	Err    error
}

func (e *OpError) Error() string {
	s := "kvcore: " + e.Op
	if e.Bucket != "" {
		s += " " + e.Bucket
	}
	if e.Key != "" {
		s += " " + e.Key
	}
	return s + ": " + strings.TrimPrefix(e.Err.Error(), "kvcore: ")
}

func (e *OpError) Unwrap() error { return e.Err }
