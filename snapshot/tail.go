package snapshot

import "github.com/slipstreamkv/slipstream/kvcore"

// A growing fold's batch whose entries are read from the log (see window)
// is not set in mem by the Apply that wrote it, after its fsync: it is
// kept as the index's tail, which the next Apply sets in mem during its
// own fsync, where the work overlaps the wait, and which whatever reads or
// merges the index sets first. Setting a batch of a thousand new keys in
// mem (a map insert each, with a cache miss or two) took a quarter of a
// first sync's time, on the path from one batch's fsync to the next.
//
// The tail holds only durable entries (the batch's fsync succeeded), none
// of them written over another (a growing fold stages no overwrite), and
// it is empty whenever a compaction starts (merge sets it first).

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
	clear(x.tail) // hold no caller's key
	x.tail = x.tail[:0]
}
