// Package memkv is an in-memory [kvcore.Conn] that behaves like a NATS
// JetStream KV server — one revision sequence per bucket, history per key,
// delete and purge markers, max age with expiry markers, max bytes with
// either discard policy, a resume window — without a server. It passes the
// same conformance suite as kvcore/natskv, which makes it a cheap stand-in
// for tests of code built on kvcore.
//
//	conn := memkv.New()
//	store, err := conn.Store(ctx, kvcore.StoreConfig{Bucket: "config"})
//
// Buckets live as long as their Conn, across Close and Connect, or until
// [Conn.DeleteBucket]. A store addresses its bucket by name, as on NATS,
// and implements [kvcore.BucketIdentifier], whose identity changes when
// the bucket is deleted and created again, and [kvcore.HistoryReader]. A
// Conn and
// its stores and watches are safe for concurrent use.
//
// Sizes follow NATS only roughly: a record costs its key and value plus a
// fixed overhead of [RecordOverhead] bytes. StoreConfig.Storage and
// Replicas mean nothing here and are ignored. There is no connection to
// lose: Close ends watches with kvcore.ErrNotConnected, like a closed
// NATS connection.
package memkv
