// Package pebblefold is the on-disk fold backend, for folds larger than RAM:
// a [kvcore.Fold] on Pebble, the pure-Go LSM engine of CockroachDB.
//
//	f, err := pebblefold.Open("/var/lib/slipagent/routes.fold", pebblefold.Options{})
//	resume := f.Cursor() // none for a new fold
//	err = f.Apply(ctx, batch, cursor)
//
// Every Apply is one Pebble batch holding the batch's puts and deletes and
// the cursor, committed atomically: after a crash the fold is exactly at one
// of the cursors it was given, with exactly that cursor's data. By default
// the batch is fsynced to the write-ahead log before Apply returns;
// [Options.NoSync] trades that for speed (a power loss may then roll the fold
// back to an earlier, still consistent cursor), and [Fold.Sync] makes what
// was applied so far durable when the caller needs it to be.
//
// With [Options.Bulk], an Apply that leaves the cursor where it is (the
// chunks of a state sync, which [kvcore.WatchApplied] folds under the
// cursor from before) is buffered in memory. Full buffers are sorted and
// spilled to run files while the next fills. Before an Apply that moves
// the cursor records it (and at Sync, Close, and before a read), the runs
// and the buffer are merged into sorted tables ingested into Pebble in one
// step, fsynced; a small buffer with no runs goes through one batch,
// durable with the cursor's commit. A hydration then skips the write-ahead
// log's fsync per batch and the memtable's skiplist, and a sync into an
// empty fold lands in Pebble's bottom level, with no compaction to follow.
//
// Keys are stored under the prefix 'd' and the cursor under "mcursor"; a
// value is ver_len u8 | version | value bytes, as the Rust crate's LSM
// backends encode it (upstream spec §7.2).
//
// A Fold is safe for concurrent use, with the ordering rules of
// [kvcore.Fold]: Get and Range run concurrently with Apply, each Range
// reading one consistent Pebble snapshot. [Fold.Reader] hands out a
// read-only view for other goroutines.
package pebblefold
