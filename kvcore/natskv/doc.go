// Package natskv implements [kvcore.Conn] and [kvcore.Store] on NATS
// JetStream key-value buckets, with nats.go's jetstream package.
//
//	conn := natskv.New(natskv.Options{Servers: []string{"nats://127.0.0.1:4222"}})
//	if err := conn.Connect(ctx); err != nil { … }
//	defer conn.Close()
//	store, err := conn.Store(ctx, kvcore.StoreConfig{Bucket: "config"})
//
// A [Conn] and the stores and watches it vends are safe for concurrent use.
//
// # Connecting
//
// [Options] name the servers (several URLs fail over), the credentials —
// the first of: the base64 content of a .creds file, a .creds file, a user
// and password in a URL, nothing — and TLS (a tls:// URL, a CA file, a
// client certificate or a whole *tls.Config). The connection reconnects by
// itself, forever. [FromConn] wraps a *nats.Conn the caller owns instead.
//
// Every operation is bounded by [Options.Timeout] (30 s by default) and
// fails with [kvcore.ErrTimeout] rather than waiting on a connection that
// neither delivers nor fails. Within that bound, a request that no server
// answered (a replicated bucket between two leaders) is sent again: it
// reached no stream, so it cannot be stored twice.
//
// # Buckets
//
// [Conn.Store] opens bucket B (stream KV_B, subjects $KV.B.>) and creates it
// when it does not exist. An existing bucket is used as it is: the
// [kvcore.StoreConfig] applies at creation only and is never reconciled.
// At creation, MaxBytes 0 means 10 MiB ([DefaultMaxBytes]; hosted NATS
// accounts refuse streams without a limit) and -1 unlimited; history
// defaults to 1 and may be up to 64. The bucket is created through
// nats.go's KV API, or, for discard "old" (which that API cannot set) and
// whenever that API fails, by sending the stream configuration to
// $JS.API.STREAM.CREATE directly; either way it is looked up again
// afterwards.
//
// With discard "new" (the default) a full bucket refuses writes with
// [kvcore.ErrBucketFull] (JetStream error 10077). With discard "old" it
// evicts its oldest records without a trace; a watch that resumes from
// before them fails with [kvcore.ErrCursorExpired].
//
// # Expiry
//
// A bucket created with a MaxAge gets delete-marker TTLs (JetStream's
// SubjectDeleteMarkerTTL, nats-server 2.11 or later) as long as the max
// age: when a key expires the server writes a marker that watches deliver
// as a [kvcore.OpPurge] update, and markers leave the stream in revision
// order like everything else, so a resumed watch either sees an expiry or
// fails with ErrCursorExpired.
//
// A bucket created without them (by another tool, an older server, or
// before this package) expires keys silently: Get, Keys and Scan stop
// showing them, but a running watch delivers nothing, so a fold fed by it
// keeps expired keys until its next re-sync. A watch resumed from before
// an expiry fails with ErrCursorExpired (the expired records were the
// oldest), which makes the caller re-sync and drop them. [Conn.Store] logs
// a warning when it opens such a bucket.
//
// # Reading
//
// Get hides delete and purge markers and empty values (the tombstones
// DeleteVersion writes); Entry shows empty values. Keys and Scan read the
// last record of every key under a prefix through one ephemeral consumer
// without acknowledgements, so buckets of any size are read whole. A key
// that exists for the whole call is listed however busy the bucket is;
// one written or removed meanwhile may be listed or not. (The pending
// count the server sends with each record can reach 0 early — an update
// takes its old record away before it counts the new one, and on history
// > 1 removed older revisions are counted off too — so the end is
// confirmed by asking the server for the consumer's state, and on history
// > 1 by finding where the last matching record is, with a throwaway
// consumer.)
//
// # Watching
//
// A watch runs one ephemeral, ordered push consumer for its whole scope,
// however many prefixes it has (JetStream filter subjects). Prefixes are
// plain string prefixes: "node" matches "node", "node.a" and "nodes". A
// subject filter only matches whole tokens, so a prefix that does not end
// with a dot is served by the filter of its last complete token and the
// keys outside the scope are dropped before delivery; overlapping prefixes
// are merged. Either way the caller sees exactly the keys of the scope.
//
// The Synced event of a state sync follows the last record of every key
// that existed throughout; its end is confirmed the same way as that of
// Keys and Scan.
//
// A watch from a cursor checks, before and after creating its consumer,
// that the stream still holds every revision after the cursor — the
// server silently starts at its first retained record when asked for an
// older one — and fails with ErrCursorExpired otherwise. The check is
// conservative: per-key history eviction raises the stream's first
// sequence too. A cursor past the stream's last revision fails the same
// way: it comes from an earlier incarnation of the bucket (deleted and
// re-created, revisions starting over), and the server would silently
// wait for revisions that already passed. A cursor at the largest uint64
// is refused, and revision 0 is no position (a state sync).
//
// A running watch remembers when the bucket's stream was created and fails
// with ErrCursorExpired when, re-creating its consumer, it finds a stream
// created since: the bucket was deleted and created again, and its
// revisions started over. A persisted cursor cannot tell: it is only a
// revision (8 bytes, like every version), so a cursor from an earlier
// incarnation that the new one has already passed resumes there, skipping
// the new incarnation's first records. Stores implement
// [kvcore.BucketIdentifier]: BucketID names the incarnation (stream name
// and creation time, "KV_app@2026-12-05T01:02:03.123456789Z"), and callers
// keep it next to the cursor; [kvcore.WatchApplied] checks it at every
// session start when [kvcore.AppliedConfig.OnBucketID] is set.
//
// Stores also implement [kvcore.BucketMarker]: BucketMark reads, in one
// stream info request, the incarnation, first and last sequences and
// record count, which change whenever a record comes or goes. With
// [kvcore.AppliedConfig.OnMark] set, a watch resumed over a fold that
// matched an unchanged bucket skips listing its keys. They implement
// [kvcore.HistoryReader] too: History reads a key's retained records with
// an ordered consumer, like nats.go's KeyValue.History, within the
// operation timeout.
//
// A whole-bucket watch from a cursor also guards the stream's retention
// floor while it runs: when the revisions it receives jump, or every 30 s
// when it receives nothing, it checks the stream's first sequence and
// fails with ErrCursorExpired if records it has not delivered are gone.
// So does a whole-bucket state sync from Synced on, on a bucket whose
// limits drop records nothing superseded (a max age, or discard "old"
// with a size limit). On other buckets only superseded records go, which
// a watch that falls behind may skip (it still sees the last record of
// every key); the guard cannot tell those from lost ones once the oldest
// record is past them, and would end a watch lagging behind a few busy
// keys for nothing. Prefix watches cannot tell gaps from the keys of other
// prefixes and have no guard.
//
// A watch survives its connection: after a reconnect, a server restart, a
// cluster leader change, a delivery gap or two missed heartbeats
// ([Options.Heartbeat]) it deletes its consumer and creates a new one that
// resumes after the last revision it handled, retrying with jittered,
// capped backoff. In a cluster the consumer lives on one server: when the
// stream's new leader announces itself and that server was the old leader
// or is offline, the watch replaces the consumer at once; attempts during
// an election are bounded by 1 s at first (a request the cluster receives
// without a leader is dropped) and one in flight is retried the moment a
// leader is elected. Creating a consumer needs the cluster's meta leader,
// which may still be missing when the stream's new leader already takes
// writes (the lost server led both): meanwhile a watch that has synced
// reads what is written with direct gets, answered by any of the stream's
// replicas, every 125–250 ms, and delivers it once the stream's leader
// confirms the stream is the one the watch started on (and, for a guarded
// watch, that retention dropped nothing); the new consumer skips what was
// delivered so. So a watch follows a leader loss within a fraction of a
// second of the first write the new leader accepts. Nothing is lost,
// replayed or re-synced, and no consumer
// is left behind: consumers a watch or scan is done with are deleted in
// the background (so Stop and a re-attach never wait on a server that does
// not answer), and a delete that fails (the connection or the consumer's
// server is down) is tried again every heartbeat, ten times; the server
// reaps an idle consumer by itself anyway once its host is up. Closing the
// Conn abandons the deletes still pending to the server. (nats.go's own
// KV watcher needs 10–20 s to notice a
// restart and gives up for good on errors such as a missing stream,
// nats.go issue 1777.) Only failures that retrying cannot fix end a watch:
// the bucket is gone (its stream missing for 30 s on end: a cluster
// recovering or restoring it says "not found" meanwhile), it was
// re-created, the connection was closed, or retention passed the watch
// during an outage; [kvcore.Watch.Err] then wraps [kvcore.ErrWatchFailed]
// or [kvcore.ErrCursorExpired].
//
// nats-server 2.15 allows 1,000 consumers per stream unless configured
// otherwise (jetstream.limits.default_max_consumers); every watch and
// every running Keys or Scan holds one.
package natskv
