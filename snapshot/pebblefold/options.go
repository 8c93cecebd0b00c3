package pebblefold

import (
	"cmp"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable"
)

// Pebble settings of a fold, for its workload: batches of about a thousand
// keys in no particular order (a bucket's initial sync delivers them in
// revision order), hydrations of tens of millions of keys, point gets.
const (
	// memTableSize is Options.MemTableSize's default: large memtables
	// flush less often, so that less data is rewritten by compactions
	// during a hydration. A new memtable starts at 256 KiB and doubles up
	// to this size, and Close flushes it, so a quiet fold does not hold it
	// and a restart does not replay it.
	// Inserting into the memtable's skiplist is most of an Apply's time
	// (2 to 3 µs a key at 1M keys, a third of it faulting in the fresh
	// arena: Pebble recycles only one memtable, of the current size);
	// 4 and 16 MiB memtables fault less but flush and compact more, and
	// hydrated no faster.
	memTableSize = 64 << 20
	// memTableStopWrites memtables may queue for flushing before writes
	// stall.
	memTableStopWrites = 4
	// l0StopWrites: a hydration of random keys makes every flushed table a
	// new L0 sublevel; writes stall at this many instead of Pebble's 12,
	// letting compactions catch up without stopping the writer.
	l0StopWrites = 24
	// lBaseMaxBytes is the size of the level L0 compacts into (Pebble's
	// default 64 MiB makes more levels, so more rewriting of each key).
	lBaseMaxBytes = 256 << 20
	// l0TargetFileSize, doubled per level below L0: fewer, larger tables, so
	// that a 50M-key fold's tables fit the table cache (1000 open files).
	l0TargetFileSize = 8 << 20
	// bloomBitsPerKey: a point get skips every table whose filter rules
	// the key out (1% false positives), instead of reading a block of it.
	bloomBitsPerKey = 10
	// maxCompactions: compactions run one at a time, two when they fall
	// behind.
	maxCompactions = 2
)

// pebbleOptions are the Pebble options of a fold opened with opts.
func pebbleOptions(opts Options, cache *pebble.Cache, readOnly bool) *pebble.Options {
	po := &pebble.Options{
		FS:                          steppedLogs(mappedTables(opts.FS)),
		Cache:                       cache,
		FormatMajorVersion:          pebble.FormatNewest,
		Logger:                      newSlogLogger(opts.Logger),
		ReadOnly:                    readOnly,
		MemTableSize:                uint64(cmp.Or(opts.MemTableSize, memTableSize)),
		MemTableStopWritesThreshold: memTableStopWrites,
		L0StopWritesThreshold:       l0StopWrites,
		LBaseMaxBytes:               lBaseMaxBytes,
		CompactionConcurrencyRange:  func() (int, int) { return 1, maxCompactions },
	}
	po.TargetFileSizes[0] = l0TargetFileSize
	for i := range po.Levels {
		// Values are mostly small and often incompressible: the fastest
		// compression (MinLZ on amd64), which stores a block as is when
		// compressing saves little. A get then never decompresses such a
		// block; trying costs flushes and compactions about 0.3 s of CPU
		// per million 200-byte random values, off the writer's path, and
		// text values (most configuration) take less disk and page cache.
		// Pebble's 4 KiB blocks and two-level index stay: 1 and 2 KiB
		// blocks made gets no faster, and a one-level index, a little
		// faster at 1M keys, would be a block of megabytes to read on a
		// miss at 50M keys, whose index outgrows the block cache.
		po.Levels[i].Compression = func() *sstable.CompressionProfile { return sstable.FastestCompression }
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(bloomBitsPerKey)
	}
	return po
}
