package snapshot

import (
	"log/slog"
	"strconv"
)

// SyncMode is when appends to the log are forced to stable storage.
type SyncMode uint8

const (
	// SyncCheckpoint fsyncs the log at every checkpoint (every [Log.Apply],
	// every [Writer.Checkpoint]). This is the default, and what a config
	// agent needs: once an Apply that moves the cursor returns, the batch
	// and its cursor survive a power loss, and a power loss can only damage
	// what was written since the last fsync (the batch being written, after
	// at most 64 KiB of batches folded under an unchanged cursor, see
	// [Log.Apply]), which load then drops as a torn tail. (A file system
	// that persisted a later page of those writes before an earlier one
	// could leave a zero hole inside them, which load refuses; that window
	// is as long as they are.) Without it the kernel writes the
	// log back whenever it likes, in any page order: after a power cut the
	// file can hold zeros (pages of earlier batches never written back) in
	// front of CRC-valid records of later ones, a mid-file hole that load
	// refuses (fail-stop), so a host that already ran hooks for those
	// batches could come back unable to start.
	SyncCheckpoint SyncMode = iota
	// SyncNone only flushes to the operating system, as the Rust crate does:
	// a checkpoint survives a crash of the process, not of the machine.
	// Compaction still fsyncs.
	SyncNone
)

// String returns "checkpoint" or "none".
func (m SyncMode) String() string {
	switch m {
	case SyncCheckpoint:
		return "checkpoint"
	case SyncNone:
		return "none"
	}
	return "sync(" + strconv.Itoa(int(m)) + ")"
}

// DefaultCompactThreshold is the Rust crate's compaction threshold: 10 MiB
// appended since the last compaction.
const DefaultCompactThreshold = 10 << 20

// Options configures a [Log] or a [Writer]. The zero value is valid.
type Options struct {
	// CompactThreshold is how many bytes may be appended after the last
	// compaction before one is due (default [DefaultCompactThreshold]). A
	// [Log] also waits until the appended bytes exceed the size of the
	// compacted file, so that a large fold is not rewritten for every few
	// MiB of changes, and until half that bound is garbage, so that a fold
	// that only grew is not rewritten at all (compaction then costs at most
	// about twice the I/O of the garbage it reclaims).
	CompactThreshold int64
	// Sync is when appends are fsynced (default [SyncCheckpoint]).
	Sync SyncMode
	// Logger receives background compaction failures (default: discarded).
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.CompactThreshold <= 0 {
		o.CompactThreshold = DefaultCompactThreshold
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}
