// Package snapshot is the durable local fold of a bucket: its state plus
// the cursor that state is valid at, stored so that a restart resumes from
// the delta and a crash never leaves the cursor ahead of the data.
//
//	fold, err := snapshot.Open("/var/lib/slipagent/routes.snap", snapshot.Options{})
//	resume := fold.Cursor()                // none for a new fold: do a full sync
//	err = fold.Apply(ctx, batch, cursor)   // data and cursor, one durable step
//
// [Log] is the default [kvcore.Fold]: an append-only PGSS v2 log on disk and
// the whole fold in memory (in 1.1–1.3× the bytes of its keys and values:
// entries live in large byte slabs indexed by a sorted array, with no Go
// object per key; the entries of a growing fold's large batches, such as
// a first sync's, are read from the log's page cache instead, through
// read-only mappings of the file, until the next compaction or load). Folds larger than RAM use the Pebble backend in
// snapshot/pebblefold, which passes the same conformance suite.
//
// # File format
//
// The log is byte-compatible with the Rust crate beyond-slipstream 0.7.3:
// a 6-byte header "PGSS" 02 00, then CRC-32/IEEE framed PUT, DELETE and
// CURSOR records. Files written by either load in the other. [Load] follows
// the crate's load rules exactly: a torn tail and trailing zero bytes are
// dropped, a zero hole in front of data, a mid-file CRC failure, an unknown
// record type, an over-long version or cursor and a key that is not UTF-8
// are refused with a [*FormatError] (wrapping [ErrInvalidFormat] or
// [ErrCorrupted], with the byte offset), stale cursor records are dropped,
// data ahead of the last cursor is kept, a dirty file is rewritten compacted
// and an empty one to the bare header. A refused file is never modified by
// loading. [Inspect] reports on a file without modifying it; [Repair] does
// what loading does and says what changed. For a refused file, [Salvage]
// cuts it back to the records before its damage (it never rewrites a
// record), and [Quarantine] moves it aside when its header is damaged.
//
// # Durability
//
// [Log.Apply] writes the batch's records and then its cursor record with one
// write and, in the default [SyncCheckpoint] mode, fsyncs before returning
// when the cursor moves (under an unchanged cursor it may leave up to 64 KiB
// to the next fsync), so a checkpoint survives a power loss and only what
// was written since the last fsync can be lost (load drops its torn tail). The
// Rust crate does not fsync its checkpoints ([SyncNone] restores that): the
// kernel may then persist a later page of the log before an earlier one,
// and after a power cut the file can hold a zero hole that load refuses, so
// an agent that already ran hooks could not restart.
//
// Compaction writes the sorted fold into a temporary file in the same
// directory, fsyncs it, renames it over the log and fsyncs the directory.
// A [Log] compacts in the background once the bytes appended since the last
// compaction exceed both Options.CompactThreshold (10 MiB) and the size of
// the compacted file, and at least half that many bytes of the log are
// garbage (overwritten and deleted records, old cursors: a log that only
// grew is not rewritten); it holds the lock only to copy the records appended
// meanwhile and to rename, and afterwards appends to the new file (never to
// the replaced one). A new log file is created the same way, header first,
// so a crash never leaves a torn header.
//
// # Locking
//
// One writer at a time: a [Log] or [Writer] holds an exclusive flock(2) on
// a lock file beside the log (path + ".lock", never removed) until Close,
// and [Repair], [Salvage] and [Quarantine] hold it while they modify it. A second opener, in this process
// or another, fails with [ErrLocked] instead of renaming a copy over the
// file a Log is appending to. Reading needs no lock: [Inspect] works while
// an agent runs, and [Load] then returns the content without rewriting the
// file. The lock is advisory and the log keeps the crate's format byte for
// byte; a Rust process takes no lock and must not share the file.
//
// # Export
//
// [Log.Export] writes a directory artifact (data/fold.snap and a
// MANIFEST.json with BLAKE3 digests, written last) that [Import] verifies
// and opens on another host; the layout matches the Rust crate's.
//
// # Concurrency
//
// A [Log] is safe for concurrent use: Get, Range and Cursor run alongside
// Apply. Apply, Export, Compact and Close must not overlap each other.
// A [Writer] (the raw append API) is not safe for concurrent use.
package snapshot
