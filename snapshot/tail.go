package snapshot

import "github.com/slipstreamkv/slipstream/kvcore"

// A growing fold's batch whose entries are read from the log (see window)
// is not set in mem by the Apply that wrote it, after its fsync: it is
// kept as the index's tail, which the next Apply sets in mem during its
// own fsync, where the work overlaps the wait, and which whatever else
// reads or merges the index sets first (the Log, through indexTailLocked:
// the index's own methods see mem without it). Setting a batch of a thousand new keys in
// mem (a map insert each, with a cache miss or two) took a quarter of a
// first sync's time, on the path from one batch's fsync to the next.
//
// The tail's entries are durable, or their batch's fsync still runs in the
// background (a batch folded under an unchanged cursor, see Apply):
// whatever sets the tail then waits for that fsync first, and a failed one
// drops the batch (indexTailLocked). None of its entries is written over
// another (a growing fold stages no overwrite), and it is empty whenever a
// compaction starts (newJobLocked sets it first).

// deferSet keeps updates' staged references as the tail, to be set later.
func (x *index) deferSet(updates []kvcore.Update, staged []ref) {
	for i, r := range staged {
		c := memChange{r: r}
		if r == tombstone {
			c.key = updates[i].Key
		} else {
			c.size = putPayloadLen(&updates[i]) // its key is read from the entry when it is set
		}
		x.tail = append(x.tail, c)
	}
}

// indexTail sets the tail in mem, in order, as set would have.
func (x *index) indexTail() {
	for _, c := range x.tail {
		if c.r != tombstone {
			c.key = x.ar.keyString(c.r)
		}
		x.add(c.key, c.r, c.size)
	}
	x.dropTail()
}

// indexTailLocked sets the index's tail in mem (indexTail) once it is
// durable: a batch folded under an unchanged cursor is in the tail while
// its fsync runs in the background (see Apply), and whatever reads the
// index first waits for that fsync. If it fails, the batch is dropped
// (awaitSyncLocked) and the log poisoned. l.mu is held.
func (l *Log) indexTailLocked() {
	if len(l.idx.tail) == 0 {
		return
	}
	l.awaitSyncLocked() // a failure poisons the log, which reports it from then on
	l.idx.indexTail()
}

// dropTail forgets the tail (set in mem, or whose fsync failed), holding
// no caller's key.
func (x *index) dropTail() {
	clear(x.tail)
	x.tail = x.tail[:0]
}

// tailPendingLocked reports whether the tail's fsync still runs in the
// background. l.mu is held.
func (l *Log) tailPendingLocked() bool { return len(l.idx.tail) > 0 && l.unsynced != nil }
