package kvcore

import (
	"context"
	"fmt"
	"time"
)

// Conn is a connection to a KV backend: lifecycle, health and a store factory.
// Implementations are safe for concurrent use.
type Conn interface {
	// Connect establishes the connection. It is a no-op when already connected
	// and may be called again after Close to reconnect.
	Connect(ctx context.Context) error
	// Close drops the connection. Stores it vended fail with ErrNotConnected.
	Close() error
	// Healthy reports, without blocking, whether the connection is up.
	Healthy() bool
	// Capabilities describes what the backend offers (advisory).
	Capabilities() Capabilities
	// Store returns the bucket named by cfg.Bucket, creating it with cfg when
	// it does not exist. An existing bucket is returned unchanged: cfg is never
	// reconciled against it.
	Store(ctx context.Context, cfg StoreConfig) (Store, error)
	// Open returns the existing bucket named bucket and never creates one:
	// a missing bucket fails with [ErrBucketNotFound]. Readers use it, so a
	// misspelt name cannot create an empty bucket that others then read.
	Open(ctx context.Context, bucket string) (Store, error)
}

// Store is one bucket. Implementations are safe for concurrent use.
// Backends that lack a role return errors wrapping [ErrUnsupported] from its
// methods and say so in [Capabilities].
type Store interface {
	Bucket() string
	Reader
	Writer
	Purger
	Watcher
}

// BucketIdentifier is implemented by stores that can tell incarnations of a
// bucket apart. A cursor is only meaningful for the incarnation it was taken
// from: a bucket deleted and created again under the same name starts its
// versions over, so an old cursor may name a position the new bucket has
// already passed, and resuming there would silently skip its first changes.
//
// BucketID returns an opaque string that is the same for the same bucket
// for as long as it exists (across reconnects, server restarts and store
// handles) and differs for every incarnation. Callers keep it next to
// their cursor and compare; [WatchApplied] does so when
// [AppliedConfig.OnBucketID] is set. A missing bucket fails with
// [ErrBucketNotFound].
type BucketIdentifier interface {
	BucketID(ctx context.Context) (string, error)
}

// BucketMarker is implemented by stores that can tell cheaply that a bucket
// did not change at all. BucketMark returns an opaque mark of the bucket's
// whole content and the cursor of its latest record: two equal marks mean
// that no record was added to or removed from the bucket between the two
// calls, and that it is the same incarnation. [WatchApplied] uses it to
// skip the key listing of a reconciliation when the bucket is exactly as
// it was when the fold last matched it (see [AppliedConfig.OnMark]).
type BucketMarker interface {
	BucketMark(ctx context.Context) (mark string, at Cursor, err error)
}

// KeyVersionLister is implemented by sources that list live keys with the
// version of each one's latest record, in one pass like Keys. [WatchApplied]
// uses it when it reconciles a fold with its bucket, to find a fold out of
// step with a bucket that went back in time: a server that lost records it
// had acknowledged (its store restored from an older copy, or an unsynced
// tail lost in a crash) numbers new records with revisions the fold already
// applied, so the cursor alone no longer tells what the fold missed.
type KeyVersionLister interface {
	// KeyVersions lists the keys starting with prefix whose latest record
	// is a put, empty values included (unlike Keys), each with the
	// version and value size of that record. [ErrUnsupported] (a wrapper
	// over a store that lacks it) makes the caller list with Keys.
	KeyVersions(ctx context.Context, prefix string) ([]KeyVersion, error)
}

// KeyVersion is a live key and the version of its latest record.
type KeyVersion struct {
	Key     string
	Version Version
	// Size is the length of the record's value, -1 when unknown.
	Size int
}

// HistoryReader is implemented by stores that can list the records a
// bucket still holds for one key: up to [StoreConfig.History] of them, fewer
// once a purge, an age or a size limit removed some.
type HistoryReader interface {
	// History returns the retained records of key, oldest first: puts
	// (empty values included) and delete/purge markers, each with its
	// version and time. A key without any fails with [ErrNotFound].
	History(ctx context.Context, key string) ([]Update, error)
}

// Reader reads current values.
type Reader interface {
	// Get returns the live value of key. A key whose latest record is a
	// delete/purge marker or an empty value (e.g. a tombstone written by
	// DeleteVersion) is reported as [ErrNotFound].
	Get(ctx context.Context, key string) (Entry, error)
	// Entry is Get without hiding empty values: it returns empty-value puts
	// with their version (what a compare-and-swap needs). Absent keys and
	// delete/purge markers give [ErrNotFound].
	Entry(ctx context.Context, key string) (Entry, error)
	// Keys lists the live keys starting with prefix ("" = all), with the same
	// filtering as Get. Order is unspecified. A key that is live for the
	// whole call is listed; one written or removed meanwhile may be or not.
	Keys(ctx context.Context, prefix string) ([]string, error)
	// Scan returns the live entries under prefix, with the same filtering as
	// Get and versions equal to the keys' current versions. Order is
	// unspecified. A key that is live for the whole call is listed (with a
	// value it had during the call); one written or removed meanwhile may be
	// or not.
	Scan(ctx context.Context, prefix string) ([]Entry, error)
}

// Writer changes values.
type Writer interface {
	// Put stores value under key and returns its new version.
	Put(ctx context.Context, key string, value []byte) (Version, error)
	// Create stores value only if key is absent or its latest record is a
	// delete/purge marker; otherwise it fails with [ErrAlreadyExists].
	Create(ctx context.Context, key string, value []byte) (Version, error)
	// Update stores value only if key's current version is expected;
	// otherwise it fails with [ErrRevisionMismatch].
	Update(ctx context.Context, key string, value []byte, expected Version) (Version, error)
	// Delete writes a delete marker. It succeeds whether or not key existed.
	Delete(ctx context.Context, key string) error
	// DeleteVersion is a compare-and-swap logical delete: it writes an empty
	// value (a tombstone) only if key's current version is expected, so
	// concurrent CAS writers still conflict. A mismatch or an absent key fails
	// with [ErrRevisionMismatch]. Afterwards Get reports ErrNotFound, Entry
	// shows the empty value, watches deliver a put of an empty value and
	// Create fails with ErrAlreadyExists.
	DeleteVersion(ctx context.Context, key string, expected Version) error
}

// Purger removes a key together with its history, reclaiming its bytes.
type Purger interface {
	// Purge removes key and all its previous versions. Purging an absent key
	// is not an error.
	Purge(ctx context.Context, key string) error
}

// Watcher opens change streams.
type Watcher interface {
	// Watch streams changes of the keys in scope.
	//
	// With a none cursor it is a state-sync watch: first the latest record of
	// every key in scope (puts, and delete/purge markers still retained), in
	// version order, then one event with Synced set, then live updates. There
	// is no gap between the initial state and the live updates. A key that
	// exists from the call until Synced has a record before Synced, however
	// busy the bucket.
	//
	// With a cursor it is a delta watch: only updates strictly after the
	// cursor, the Synced event once the backlog present at start has been
	// delivered, then live updates. If the backend no longer retains every
	// update after the cursor, Watch fails with [ErrCursorExpired] rather than
	// silently skipping them.
	//
	// An empty scope fails with [ErrEmptyScope]. The watch ends when ctx is
	// done, Stop is called, or it fails for good (see [Watch.Err]).
	Watch(ctx context.Context, scope Scope, from Cursor) (Watch, error)
}

// Watch is a running change stream. Its methods are safe for concurrent use.
type Watch interface {
	// Events delivers the stream. It is closed by the watch's own goroutine
	// when the watch ends; Err then tells why.
	Events() <-chan Event
	// Err is nil while the watch runs and after it was stopped by Stop or by
	// its context. After a terminal failure it wraps [ErrWatchFailed], or
	// [ErrCursorExpired] when the backend dropped changes the watch had not
	// delivered yet (the caller must re-sync).
	Err() error
	// Stop ends the watch and waits until Events is closed. It is idempotent.
	Stop()
}

// Event is one element of a watch stream: an update, or the Synced marker.
type Event struct {
	Update
	// Synced marks the end of the initial state (state-sync watch) or of the
	// backlog present when the watch started (delta watch). Its Update is zero.
	Synced bool
	// Pending is how many records after this one the watch had yet to
	// deliver when the server sent it: more than 0 while the watch trails
	// the bucket (0 also when the backend does not tell).
	Pending uint64
}

// StoreConfig configures a bucket at creation. Only Bucket is required; the
// zero value of every other field picks the backend's default.
type StoreConfig struct {
	Bucket string
	// Storage selects file (default) or memory storage.
	Storage Storage
	// History is how many versions of each key are kept (default 1).
	History int
	// MaxAge expires values older than this (0 = never).
	MaxAge time.Duration
	// MaxBytes caps the bucket's size (0 = backend default; NATS: 10 MiB,
	// which hosted NATS accounts require; -1 = unlimited).
	MaxBytes int64
	// Replicas is the number of copies in a cluster (default 1).
	Replicas int
	// Discard selects what happens when the bucket is full (default DiscardNew).
	Discard DiscardPolicy
}

// MaxHistory is the most versions of a key a bucket keeps
// ([StoreConfig.History]), JetStream KV's limit.
const MaxHistory = 64

// Validate reports a setting no backend can create a bucket with, in an
// error wrapping [ErrInvalidConfig] (or [ErrInvalidBucket]) that names it:
// a count or age below zero, MaxBytes below -1, or History over
// [MaxHistory]. Store calls it; a setting a backend rejects on its own
// terms fails there.
func (c StoreConfig) Validate() error {
	switch {
	case !ValidBucket(c.Bucket):
		return fmt.Errorf("%w %q", ErrInvalidBucket, c.Bucket)
	case c.History < 0 || c.History > MaxHistory:
		return fmt.Errorf("%w: History %d is outside 0 (the default, 1) to %d", ErrInvalidConfig, c.History, MaxHistory)
	case c.MaxAge < 0:
		return fmt.Errorf("%w: MaxAge %v is below 0 (0 keeps values for ever)", ErrInvalidConfig, c.MaxAge)
	case c.MaxBytes < -1:
		return fmt.Errorf("%w: MaxBytes %d is below -1 (-1 is unlimited, 0 the backend's default)", ErrInvalidConfig, c.MaxBytes)
	case c.Replicas < 0:
		return fmt.Errorf("%w: Replicas %d is below 0 (0 is the default, 1)", ErrInvalidConfig, c.Replicas)
	case c.Storage > StorageMemory:
		return fmt.Errorf("%w: Storage %d is neither StorageFile nor StorageMemory", ErrInvalidConfig, c.Storage)
	case c.Discard > DiscardOld:
		return fmt.Errorf("%w: Discard %d is neither DiscardNew nor DiscardOld", ErrInvalidConfig, c.Discard)
	}
	return nil
}

// Storage is where a bucket keeps its data.
type Storage uint8

// Storage kinds.
const (
	StorageFile Storage = iota
	StorageMemory
)

// DiscardPolicy decides what a full bucket does with a new write.
type DiscardPolicy uint8

// Discard policies.
const (
	// DiscardNew rejects writes to a full bucket with [ErrBucketFull],
	// preserving existing data. The right choice for configuration.
	DiscardNew DiscardPolicy = iota
	// DiscardOld evicts the oldest records to make room; never rejects.
	DiscardOld
)

// String returns "new" or "old", the JetStream wire names.
func (d DiscardPolicy) String() string {
	if d == DiscardOld {
		return "old"
	}
	return "new"
}

// Capabilities describes a backend. It is advisory: callers use it to pick
// code paths, backends still refuse what they cannot do.
type Capabilities struct {
	StreamingWatch bool // Watch pushes changes
	PrefixWatch    bool // Watch filters by prefix on the server
	TTL            bool // per-key time to live
	Purge          bool // Purge reclaims bytes
	CAS            bool // Create, Update and DeleteVersion are atomic
	Transactions   bool // multi-key atomic writes
	// MaxValueSize is the largest value accepted, 0 when the backend imposes
	// none of its own (a NATS server still enforces its payload limit).
	MaxValueSize   int
	GlobalOrdering bool // versions are totally ordered across keys and servers
}
