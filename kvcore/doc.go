// Package kvcore is a small, backend-neutral key-value contract for
// configuration buckets, plus the durable fold interface that keeps a local
// copy of a bucket in sync.
//
// A [Conn] vends [Store]s (buckets). A Store reads ([Reader]), writes
// ([Writer]), purges ([Purger]) and streams changes ([Watcher]). Versions and
// cursors are opaque tokens ([Version], [Cursor]); NATS JetStream uses the
// key's revision as an 8-byte big-endian number. Errors wrap sentinels such as
// [ErrNotFound], [ErrRevisionMismatch] and [ErrCursorExpired] so callers
// branch with errors.Is.
//
// A cursor is only meaningful for the incarnation of the bucket it was
// taken from: a bucket deleted and created again starts its versions over.
// Stores that can tell incarnations apart implement [BucketIdentifier], and
// [WatchApplied] resyncs when the identity next to its fold's cursor is not
// the bucket's. Stores that can list the versions they still hold of a key
// implement [HistoryReader].
//
// The NATS JetStream implementation lives in kvcore/natskv, an in-memory one
// with the same semantics (for tests) in kvcore/memkv, and kvcore/kvtest is
// the conformance suite every backend passes. Keys, prefixes and bucket
// names follow one portable syntax, that of NATS KV ([ValidKey],
// [ValidPrefix], [ValidBucket]).
//
// # Empty values
//
// A put of an empty value is a live key whose value is empty: watches
// deliver it as an [OpPut], a [Fold] holds it as an entry, and
// [WatchApplied] keeps it along its whole path (sync, follow, reconcile,
// full batches) and hands it to apply as a put. Only the [Reader] methods
// that mirror NATS KV's own — Get, Keys and Scan — hide empty values (a
// DeleteVersion tombstone is one); [Reader.Entry] shows them. So a key
// missing from Keys is gone only if Entry says so, which is how
// WatchApplied's reconciliation confirms a deletion.
//
// All types in this package are safe for concurrent use unless noted.
package kvcore
