package snapshot

import (
	"encoding/binary"
	"slices"
	"sort"
	"strings"
	"unsafe"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// The in-memory fold is built for a million keys in little more memory than
// their bytes, with no per-key Go object:
//
//   - an arena of large byte chunks holds each entry in its PUT-payload form
//     (key_len | key | value_len | value | ver_len | version), so a file image
//     read at load time is itself an arena chunk and a compacted file loads
//     without copying (and a growing fold's chunks may be windows on the log
//     file, see window);
//   - base is a sorted slice of references into the arena (8 bytes per key);
//   - mem holds the changes since base was last rebuilt (a put's reference,
//     or tombstone for a delete) and is merged into base once it holds a
//     sixteenth as many keys, so lookups are a map probe plus a binary
//     search (a growing fold merges on another goroutine, with base's keys
//     abbreviated beside it: see startMerge).
//
// A put that replaces an entry of the same length is written over it (see
// stage), except while the arena is being read without the lock (by a
// compaction, an export or a background merge); otherwise arena bytes are
// never modified once written, and replaced entries stay as garbage until
// the next compaction rebuilds the arena. An index is not safe for
// concurrent use; the fold guards it with a lock.

// ref locates an entry in the arena: chunk number << 40 | byte offset.
type ref uint64

const (
	refOffBits = 40
	tombstone  = ref(1<<64 - 1)
	chunkSize  = 4 << 20
	firstChunk = 4 << 10
)

func mkref(chunk, off int) ref { return ref(uint64(chunk)<<refOffBits | uint64(off)) }

type arena struct {
	chunks  [][]byte
	sealed  bool        // the last chunk takes no more entries
	spare   chan []byte // the next chunk of chunkSize, faulted in ahead of need (see newChunk)
	windows []int       // the chunks that view the log file (see window), never written
}

// alloc reserves n bytes and returns their reference and the slice to fill.
func (a *arena) alloc(n int) (ref, []byte) {
	last := len(a.chunks) - 1
	if a.sealed || last < 0 || cap(a.chunks[last])-len(a.chunks[last]) < n {
		// Chunks double from firstChunk up to chunkSize, so a small fold
		// does not pay for 4 MiB of zeroed memory. A large fold's chunks
		// are filled once and read at random (every key comparison of a
		// merge or a lookup): huge pages make their first touches and
		// their TLB misses far cheaper. (8 MiB chunks would hold more
		// whole huge pages, and leave twice the slack in the last one.)
		size := firstChunk
		if last >= 0 {
			size = min(2*cap(a.chunks[last]), chunkSize)
		}
		a.chunks = append(a.chunks, a.newChunk(max(size, n)))
		a.sealed = false
		last++
	}
	c := a.chunks[last]
	off := len(c)
	a.chunks[last] = c[:off+n]
	return mkref(last, off), a.chunks[last][off : off+n : off+n]
}

// newChunk returns an empty chunk of size bytes. A chunk of chunkSize (a
// large fold's) is taken from spare, and the next one is allocated and
// faulted in on another goroutine: on a virtual machine the first touch
// of fresh memory costs more than the copies that fill it (a fold takes
// more fresh memory than its bytes on disk), and the fold's own goroutine
// then finds the chunk ready while the other core does that work. The
// spare costs one chunk of memory beside a large fold.
func (a *arena) newChunk(size int) []byte {
	if size != chunkSize {
		return prefaulted(make([]byte, 0, size))
	}
	var c []byte
	if a.spare != nil {
		c = <-a.spare
	} else {
		c = prefaulted(make([]byte, 0, chunkSize))
		a.spare = make(chan []byte, 1)
	}
	go func(spare chan<- []byte) { spare <- faultIn(prefaulted(make([]byte, 0, chunkSize))) }(a.spare)
	return c
}

// dropSpare waits for the goroutine making the next chunk, if any, and
// drops that chunk.
func (a *arena) dropSpare() {
	if a.spare != nil {
		<-a.spare
		a.spare = nil
	}
}

// faultIn touches every page of c's capacity and returns c.
func faultIn(c []byte) []byte {
	b := c[:cap(c)]
	for i := 0; i < len(b); i += 4 << 10 {
		b[i] = 0
	}
	return c
}

// payload returns the entry at r, from its key_len to its end.
func (a *arena) payload(r ref) []byte {
	c := a.chunks[r>>refOffBits]
	off := int(r & (1<<refOffBits - 1))
	return c[off : off+payloadLen(c[off:])]
}

// record returns the PUT record that frames the payload at r: only for
// payloads in a loaded image (see buildImage's framed).
func (a *arena) record(r ref) []byte {
	c := a.chunks[r>>refOffBits]
	off := int(r & (1<<refOffBits - 1))
	return c[off-5 : off+payloadLen(c[off:])]
}

// key returns the key bytes of the entry at r.
func (a *arena) key(r ref) []byte {
	c := a.chunks[r>>refOffBits]
	off := int(r & (1<<refOffBits - 1))
	klen := int(binary.LittleEndian.Uint16(c[off:]))
	return c[off+2 : off+2+klen]
}

// keyString returns the key of the entry at r as a string that shares the
// arena's bytes (a key's bytes never change: a put written over its entry
// has the same key).
func (a *arena) keyString(r ref) string {
	k := a.key(r)
	return unsafe.String(unsafe.SliceData(k), len(k))
}

// payloadLen is the length of the PUT payload at the start of p.
func payloadLen(p []byte) int {
	klen := int(binary.LittleEndian.Uint16(p))
	vlen := int(binary.LittleEndian.Uint32(p[2+klen:]))
	return 7 + klen + vlen + int(p[6+klen+vlen])
}

// payloadEntry decodes a PUT payload into an Entry that owns its bytes.
func payloadEntry(p []byte) kvcore.Entry {
	klen := int(binary.LittleEndian.Uint16(p))
	vlen := int(binary.LittleEndian.Uint32(p[2+klen:]))
	vat := 6 + klen
	ver, _ := kvcore.VersionFromBytes(p[vat+vlen+1 : vat+vlen+1+int(p[vat+vlen])])
	return kvcore.Entry{Key: string(p[2 : 2+klen]), Value: append([]byte{}, p[vat:vat+vlen]...), Version: ver}
}

// compareKey orders arena key bytes against a string key without allocating.
func compareKey(b []byte, k string) int {
	if string(b) < k {
		return -1
	}
	if string(b) == k {
		return 0
	}
	return 1
}

type index struct {
	ar        arena
	base      []ref          // sorted by key
	mem       map[string]ref // changes since base: a reference, or tombstone
	memKeys   []string       // sorted keys of mem, except those in memNew
	memNew    []string       // keys added to mem since memKeys was brought up to date
	live      int            // live keys in base (see count)
	liveBytes int64          // payload bytes of base's entries
	growing   bool           // the fold mostly adds keys (see mergeThreshold and set)
	memPuts   int            // puts set in mem (and frozen) since the last merge, and
	memBytes  int64          // their payload bytes: at least mem's share of the fold
	pending   *pendingMerge  // a merge running in the background (see startMerge)
	abbr      abbrevs        // base's abbreviated keys, kept while the fold grows (see mergeGrowing)
	spareMem  map[string]ref // the next mem and its key slices, left by the
	spareKeys []string       // last background merge
	spareNew  []string
	tail      []memChange // a growing fold's last batch, not yet set in mem (see indexTail)
}

func newIndex() *index { return &index{mem: map[string]ref{}} }

// searchBase returns the position of the first base key >= k.
func (x *index) searchBase(base []ref, k string) int {
	return sort.Search(len(base), func(i int) bool { return compareKey(x.ar.key(base[i]), k) >= 0 })
}

// gallop returns the position of the first key of the sorted s that is >= k,
// where the caller expects it about step keys in: it compares the key at
// step first, then binary searches below it or doubles the distance from
// there (an exponential search), so an answer at d costs O(log step) key
// comparisons when d < step and O(log d) otherwise, where searchBase takes
// O(log len(s)). A merge walks base with sorted keys, so each search starts
// where the last one ended, and the step is the keys of base left per key
// of mem left: changes spread evenly over base are found in about half the
// comparisons of a search from step 1 (each one a cache miss into the arena).
func (x *index) gallop(s []ref, k string, step int) int {
	return gallop(len(s), func(i int) bool { return compareKey(x.ar.key(s[i]), k) < 0 }, step)
}

// gallop is the search of index.gallop over positions 0..n-1, of which
// below reports those before the one sought (a prefix of them).
func gallop(n int, below func(int) bool, step int) int {
	step = max(step, 1)
	search := func(lo, hi int) int { return lo + sort.Search(hi-lo, func(i int) bool { return !below(lo + i) }) }
	if step >= n {
		return search(0, n)
	}
	if !below(step - 1) {
		return search(0, step-1)
	}
	lo, hi := step, 2*step // every position below lo is below
	for hi < n && below(hi-1) {
		lo, hi = hi, 2*hi
	}
	return search(lo, min(hi, n))
}

// searchAbbreviated is searchBase(x.base, k), comparing base's
// abbreviated keys while a growing fold keeps them (see abbrevs) and k
// starts with the prefix they leave out: only keys whose abbreviations
// equal k's are read in the arena, where each one is a cache miss.
func (x *index) searchAbbreviated(k string) int {
	ab := x.abbr
	if ab.of == nil || len(x.base) == 0 || len(k) < ab.skip || k[:ab.skip] != x.ar.keyString(x.base[0])[:ab.skip] {
		return x.searchBase(x.base, k)
	}
	a := abbreviate(stringBytes(k), ab.skip)
	return sort.Search(len(x.base), func(i int) bool { return !x.baseBelow(ab.of, i, a, k) })
}

// baseBelow reports whether base[i], abbreviated as of[i], sorts before k,
// abbreviated as a: it reads base's key only where the two are equal.
func (x *index) baseBelow(of []abbrev, i int, a abbrev, k string) bool {
	if d := of[i].compare(a); d != 0 {
		return d < 0
	}
	return compareKey(x.ar.key(x.base[i]), k) < 0
}

func (x *index) lookup(k string) (ref, bool) {
	if r, ok := x.mem[k]; ok {
		return r, r != tombstone
	}
	if x.pending != nil {
		if r, ok := x.pending.frozen[k]; ok {
			return r, r != tombstone
		}
	}
	return x.inBase(k)
}

// inBase returns base's entry for k.
func (x *index) inBase(k string) (ref, bool) {
	i := x.searchAbbreviated(k)
	if i < len(x.base) && string(x.ar.key(x.base[i])) == k {
		return x.base[i], true
	}
	return 0, false
}

func (x *index) get(k string) (kvcore.Entry, bool) {
	r, ok := x.lookup(k)
	if !ok {
		return kvcore.Entry{}, false
	}
	return payloadEntry(x.ar.payload(r)), true
}

// apply folds one update into the index, copying its bytes into the arena.
func (x *index) apply(u kvcore.Update) { x.set(&u, x.stage(&u, true)) }

// putPayloadLen is the length of u's PUT payload.
func putPayloadLen(u *kvcore.Update) int { return 7 + len(u.Key) + len(u.Value) + u.Version.Len() }

// overwrite marks a staged reference whose entry set writes over the key's
// current entry, at that reference, instead of one staged in the arena.
const overwrite = ref(1 << 63)

// stage copies u's entry into the arena and returns its reference
// (tombstone for a removal) without making it visible: set does. An entry
// staged and never set is garbage, dropped by the next compaction.
//
// When reuse is set and the fold is not growing (see mergeThreshold), a
// put whose key's current entry has exactly its length, in memory rather
// than in a window, is not copied: the reference returned is that entry's,
// marked overwrite, and set writes the new entry over it. A fold whose
// keys change (the common steady state: same key, a value of the same
// size) then takes no memory per change, where each one would otherwise
// leave its predecessor as garbage in memory until the next compaction.
// The caller passes reuse only while no compaction or export reads the
// arena, and no put is written over while a background merge reads it. A
// growing fold skips the lookup: its keys are mostly new, and finding each
// one missing in base costs a binary search of cache misses.
func (x *index) stage(u *kvcore.Update, reuse bool) ref {
	if u.IsRemoval() {
		return tombstone
	}
	n := putPayloadLen(u)
	if reuse && !x.growing && x.pending == nil {
		if r, ok := x.lookup(u.Key); ok && len(x.ar.payload(r)) == n && x.ar.writable(r) {
			return r | overwrite
		}
	}
	r, dst := x.ar.alloc(n)
	appendPutPayload(dst[:0], u.Key, u.Value, u.Version)
	return r
}

// set makes r (a staged reference, or tombstone) the entry of u's key. It
// does not look the key up in base: whether a put replaces a live key or a
// delete removes one is settled when mem is merged (live and liveBytes
// count base only). A put's key in mem is its entry's key in the arena, not
// the caller's string, which mem would otherwise keep alive (with whatever
// it is a part of, such as a message's subject) until the next merge.
//
// An overwrite (see stage) writes u's entry over the one at r, which has
// its length, so live and liveBytes stay right. That entry is the key's
// current one unless an earlier update of the same batch (staged before
// this one was) changed the key in mem: mem then names r again.
func (x *index) set(u *kvcore.Update, r ref) {
	key := u.Key
	if r != tombstone && r&overwrite != 0 {
		r &^= overwrite
		dst := x.ar.payload(r)
		appendPutPayload(dst[:0:len(dst)], u.Key, u.Value, u.Version)
		if _, ok := x.mem[key]; ok {
			x.mem[x.ar.keyString(r)] = r
		}
		return
	}
	if r == tombstone {
		x.add(key, r, 0)
		return
	}
	// The payload's length is the update's: reading the entry would cost a
	// cache miss, in a window (see window) a page fault.
	x.add(x.ar.keyString(r), r, putPayloadLen(u))
}

// add makes r (not an overwrite) the entry of key in mem, for set; size is
// the payload length of a put.
func (x *index) add(key string, r ref, size int) {
	if r != tombstone {
		x.memPuts++
		x.memBytes += int64(size)
	}
	n := len(x.mem)
	x.mem[key] = r // one map operation, not a lookup and then a store
	if len(x.mem) == n {
		x.growing = false // a key changed twice since the last merge
		return
	}
	x.memNew = append(x.memNew, key)
	if x.growing && len(x.memNew)%growthSample == 0 {
		if _, ok := x.inBase(key); ok {
			x.growing = false
		}
	}
}

// growthSample is how often set looks a new key of mem up in base while
// the fold is growing: one key in growthSample, so that a fold that has
// stopped growing and changes its keys instead (each once, which mem alone
// does not tell) is soon treated as such (see stage and
// Log.garbageDueLocked) for a binary search every growthSample changes.
const growthSample = 64

// count is the number of live keys, mem included: O(len(mem) log n).
func (x *index) count() int {
	x.finishMerge()
	n := x.live
	for k, r := range x.mem {
		_, inBase := x.inBase(k)
		switch {
		case inBase && r == tombstone:
			n--
		case !inBase && r != tombstone:
			n++
		}
	}
	return n
}

// mergeThreshold is how many changes mem holds before they are merged into
// base. A merge copies base, so the bound grows with it: a sixteenth of
// base for a fold whose keys are being changed, which keeps mem (and the
// work of bringing its sorted view up to date between two pages of a
// Range) small; a quarter for a growing one, such as a first sync, whose
// merges dominate its cost (each merged key is found in base by a few key
// comparisons, each one a cache miss, and fewer when more keys are merged
// at once). Hydrating n keys copies about 5n references in all, not
// n²/4096, and finds each key in base with about 3 comparisons instead of 6.
func (x *index) mergeThreshold() int {
	if x.growing {
		return growingThreshold(len(x.base))
	}
	return max(4096, len(x.base)>>4)
}

// growingThreshold is mergeThreshold for a growing fold whose base holds n keys.
func growingThreshold(n int) int { return max(4096, n>>2) }

// merge folds mem into base, settling live and liveBytes. The new base is
// a new slice of exactly its size (on huge pages once it is large, so its
// first touches cost little): merges are rare enough (see mergeThreshold)
// that keeping the old one for reuse would cost more memory, for the
// fold's life, than its allocation costs time.
func (x *index) merge() {
	x.finishMerge()
	if len(x.mem) == 0 {
		return
	}
	before := x.live
	x.base, x.live, x.liveBytes = x.mergeInto(prefaulted(make([]ref, 0, len(x.base)+len(x.mem))))
	x.abbr = abbrevs{}
	x.growing = 2*(x.live-before) > len(x.mem)
	if !x.growing {
		x.spareMem, x.spareKeys, x.spareNew = nil, nil, nil // only background merges use them
	}
	clear(x.mem)                      // keeps its buckets for the next changes
	clear(x.memKeys[:cap(x.memKeys)]) // hold no caller's key past its change
	clear(x.memNew[:cap(x.memNew)])
	x.memKeys, x.memNew = x.memKeys[:0], x.memNew[:0]
	x.memPuts, x.memBytes = 0, 0
}

// merged returns the sorted references of every live entry (base with mem
// applied), their number and payload bytes, without changing the index.
func (x *index) merged() (refs []ref, live int, liveBytes int64) {
	x.finishMerge()
	if len(x.mem) == 0 {
		return x.base, x.live, x.liveBytes
	}
	return x.mergeInto(make([]ref, 0, len(x.base)+len(x.mem)))
}

// mergeInto appends base with mem applied to nb.
func (x *index) mergeInto(nb []ref) (refs []ref, live int, liveBytes int64) {
	keys := x.sortedMemKeys()
	live, liveBytes = x.live, x.liveBytes
	i := 0
	for n, k := range keys {
		j := i + x.gallop(x.base[i:], k, (len(x.base)-i)/(len(keys)-n))
		nb = append(nb, x.base[i:j]...)
		i = j
		if i < len(x.base) && string(x.ar.key(x.base[i])) == k {
			live--
			liveBytes -= int64(len(x.ar.payload(x.base[i])))
			i++ // shadowed by mem
		}
		if r := x.mem[k]; r != tombstone {
			nb = append(nb, r)
			live++
			liveBytes += int64(len(x.ar.payload(r)))
		}
	}
	return append(nb, x.base[i:]...), live, liveBytes
}

// memKeysStale reports whether keys were added to mem since sortedMemKeys
// last ran.
func (x *index) memKeysStale() bool { return len(x.memNew) > 0 }

// sortedMemKeys returns mem's keys in order, first sorting the keys added
// since its last call and merging them in (linear in mem, not a full
// re-sort: Range may call it between every two pages). It mutates the
// index: call it with the write lock.
func (x *index) sortedMemKeys() []string {
	if len(x.memNew) > 0 {
		sortKeys(x.memNew)
		x.memKeys = mergeSorted(x.memKeys, x.memNew)
		x.memNew = x.memNew[:0]
	}
	return x.memKeys
}

// mergeSorted merges the sorted b into the sorted a, in place from the back
// (a and b share no key), and returns the result.
func mergeSorted(a, b []string) []string {
	i, j := len(a)-1, len(b)-1
	a = slices.Grow(a, len(b))[:len(a)+len(b)]
	for k := len(a) - 1; j >= 0; k-- {
		if i >= 0 && a[i] > b[j] {
			a[k] = a[i]
			i--
		} else {
			a[k] = b[j]
			j--
		}
	}
	return a
}

// page appends to dst up to n live entries whose keys start with prefix,
// beginning after the key after (or at the first key under prefix when
// first is set). It reports whether more entries under prefix follow.
func (x *index) page(dst []kvcore.Entry, prefix, after string, first bool, n int) ([]kvcore.Entry, bool) {
	from := prefix
	if !first && after > prefix {
		from = after
	}
	keys := x.memKeys // the caller keeps it current (sortedMemKeys)
	bi := x.searchBase(x.base, from)
	mi, _ := slices.BinarySearch(keys, from)
	for {
		var r ref
		haveB, haveM := bi < len(x.base), mi < len(keys)
		var bk []byte
		if haveB {
			bk = x.ar.key(x.base[bi])
		}
		switch {
		case !haveB && !haveM:
			return dst, false
		case haveM && (!haveB || compareKey(bk, keys[mi]) >= 0):
			k := keys[mi]
			if haveB && string(bk) == k {
				bi++ // shadowed by mem
			}
			r = x.mem[k]
			mi++
			if !strings.HasPrefix(k, prefix) {
				return dst, false
			}
			if r == tombstone || (!first && k == after) {
				continue
			}
			if len(dst) == n {
				return dst, true
			}
			dst = append(dst, payloadEntry(x.ar.payload(r)))
			continue
		default:
			r = x.base[bi]
			bi++
		}
		if len(bk) < len(prefix) || string(bk[:len(prefix)]) != prefix {
			return dst, false
		}
		if !first && string(bk) == after {
			continue
		}
		if len(dst) == n {
			return dst, true
		}
		dst = append(dst, payloadEntry(x.ar.payload(r)))
	}
}
