package snapshot

import (
	"bytes"
	"hash/maphash"
)

// keySet is a hash set of arena entries keyed by their keys, for replaying
// a log whose records are not in key order: unlike a map[string]ref it
// holds no copy of any key (16 bytes a slot, at most half full), so a
// bloated log of a million keys replays without a million small
// allocations. Each slot keeps its entry's payload length beside the
// reference, so that replacing or removing an entry does not read the old
// one's value and version from the arena (cache misses a record). Open
// addressing with linear probing; removal shifts the following slots back,
// so there are no tombstones.
type keySet struct {
	ar    *arena
	seed  maphash.Seed
	slots []keySlot
	n     int
	// touched sums what prefetch read, so that its reads are not
	// optimized away.
	touched uint32
}

type keySlot struct {
	hash uint32 // low bits of the key's hash: its home slot and a filter
	plen uint32 // payload length (a PUT payload is shorter than 2^32 bytes)
	r    ref    // 0: empty (a PUT payload never starts at offset 0 of chunk 0)
}

func newKeySet(ar *arena, capacity int) *keySet {
	s := &keySet{ar: ar, seed: maphash.MakeSeed()}
	size := 16
	for size < 2*capacity {
		size *= 2
	}
	s.slots = prefaulted(make([]keySlot, size))
	return s
}

// find returns the slot of key: the one holding it, or the empty one where
// it belongs.
func (s *keySet) find(key []byte, h uint32) int {
	mask := len(s.slots) - 1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		sl := &s.slots[i]
		if sl.r == 0 || (sl.hash == h && bytes.Equal(s.ar.key(sl.r), key)) {
			return i
		}
	}
}

func (s *keySet) hash(key []byte) uint32 { return uint32(maphash.Bytes(s.seed, key)) }

// prefetch sets hs[i] to the hash of the key of rs[i], a PUT or DELETE
// (a CURSOR's is left alone), and reads what looking each one up will:
// its home slot, then the key of the entry there when the hashes match.
// Each is a cache miss in a set of a million keys; read one group at a
// time, independent of each other, they overlap instead of each lookup
// waiting for its own in turn (most of the replay of a bloated log).
func (s *keySet) prefetch(rs []record, hs []uint32) {
	mask := len(s.slots) - 1
	for i := range rs {
		if rs[i].typ != recCursor {
			hs[i] = s.hash(rs[i].key)
		}
	}
	var sum uint32
	for i := range rs {
		if rs[i].typ != recCursor {
			sum += s.slots[int(hs[i])&mask].hash
		}
	}
	for i := range rs {
		if sl := &s.slots[int(hs[i])&mask]; rs[i].typ != recCursor && sl.r != 0 && sl.hash == hs[i] {
			c := s.ar.chunks[sl.r>>refOffBits]
			sum += uint32(c[sl.r&(1<<refOffBits-1)])
		}
	}
	s.touched += sum
}

// put makes r, whose payload is plen bytes long, the entry of its key and
// returns the entry it replaced and that entry's payload length.
func (s *keySet) put(r ref, plen int) (old ref, oldLen int, replaced bool) {
	key := s.ar.key(r)
	return s.putHashed(r, key, s.hash(key), plen)
}

// putHashed is put of r whose key is key, of hash h.
func (s *keySet) putHashed(r ref, key []byte, h uint32, plen int) (old ref, oldLen int, replaced bool) {
	i := s.find(key, h)
	if sl := &s.slots[i]; sl.r != 0 {
		old, oldLen = sl.r, int(sl.plen)
		sl.r, sl.plen = r, uint32(plen)
		return old, oldLen, true
	}
	s.slots[i] = keySlot{hash: h, plen: uint32(plen), r: r}
	if s.n++; 2*s.n > len(s.slots) {
		s.grow()
	}
	return 0, 0, false
}

// remove drops the entry of key, whose hash is h, and returns it and its
// payload length.
func (s *keySet) remove(key []byte, h uint32) (old ref, oldLen int, removed bool) {
	i := s.find(key, h)
	if old, oldLen = s.slots[i].r, int(s.slots[i].plen); old == 0 {
		return 0, 0, false
	}
	mask := len(s.slots) - 1
	// Shift back each following slot of the run that may move into the hole.
	for j := (i + 1) & mask; s.slots[j].r != 0; j = (j + 1) & mask {
		home := int(s.slots[j].hash) & mask
		if (j-home)&mask >= (j-i)&mask { // home is not in (i, j]
			s.slots[i] = s.slots[j]
			i = j
		}
	}
	s.slots[i] = keySlot{}
	s.n--
	return old, oldLen, true
}

func (s *keySet) grow() {
	old := s.slots
	s.slots = prefaulted(make([]keySlot, 2*len(old)))
	mask := len(s.slots) - 1
	for _, sl := range old {
		if sl.r == 0 {
			continue
		}
		i := int(sl.hash) & mask
		for s.slots[i].r != 0 {
			i = (i + 1) & mask
		}
		s.slots[i] = sl
	}
}

// appendRefs appends every entry of the set to dst, in no order.
func (s *keySet) appendRefs(dst []ref) []ref {
	for _, sl := range s.slots {
		if sl.r != 0 {
			dst = append(dst, sl.r)
		}
	}
	return dst
}
