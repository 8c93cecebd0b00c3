package snapshot

import (
	"math"
	"slices"
)

// A growing fold (a first sync) merges mem into base on another goroutine:
// its merges are the largest part of its index work, and Apply would run
// each one while a single batch's fsync runs, where in the background it
// overlaps the fsyncs of the batches that follow (the fold's goroutine
// mostly waits for them). The changes being merged are frozen: lookups see
// mem, then frozen, then base; every other reader of the index first
// waits for the merge and installs its result (finishMerge). While the
// fold grows, base's keys are kept abbreviated beside it (16 bytes a key,
// see mergeGrowing), which its next merge compares instead of the keys.

// pendingMerge is a merge running in the background.
type pendingMerge struct {
	frozen map[string]ref // the changes being merged, as mem held them
	puts   int            // memPuts and memBytes of frozen
	bytes  int64
	done   chan mergedBase
}

// mergedBase is the result of a background merge.
type mergedBase struct {
	base      []ref
	abbr      abbrevs
	live      int
	liveBytes int64
	keys      []string       // frozen's key slices, cleared for reuse
	news      []string       // (grown for the mem after next)
	mem       map[string]ref // an empty map for the mem after next
}

// startMerge freezes mem and merges it into base on another goroutine,
// first installing the merge before it, if any. The goroutine reads base,
// the frozen changes and the arena's entries, none of which the index
// changes until the merge is installed: no put is written over its entry
// meanwhile (see stage), and it reads its own copy of the chunk table.
func (x *index) startMerge() {
	x.finishMerge()
	if len(x.mem) == 0 {
		return
	}
	bg := &index{ar: arena{chunks: slices.Clone(x.ar.chunks)}, base: x.base, abbr: x.abbr, mem: x.mem,
		memKeys: x.memKeys, memNew: x.memNew, live: x.live, liveBytes: x.liveBytes}
	p := &pendingMerge{frozen: x.mem, puts: x.memPuts, bytes: x.memBytes, done: make(chan mergedBase, 1)}
	x.pending = p
	// The next merge comes once mem holds about this many keys: room for
	// them now spares mem its growth (each step rehashes what it holds)
	// and memNew its regrowth by doubling. The merge before this one made
	// them on its goroutine, for a base the size this one is given now.
	next := growingThreshold(len(x.base) + len(p.frozen))
	x.mem, x.memKeys, x.memNew = x.spareMem, x.spareKeys, x.spareNew
	if x.mem == nil {
		x.mem, x.memNew = make(map[string]ref, next), slices.Grow(x.memNew, next)
	}
	x.spareMem, x.spareKeys, x.spareNew = nil, nil, nil
	go func() {
		base, abbr, live, liveBytes := bg.mergeGrowing()
		keys, news := bg.memKeys, bg.memNew
		clear(keys[:cap(keys)]) // hold no caller's key past its change
		clear(news[:cap(news)])
		// The mem after next holds what a growing fold adds to this base
		// and to the keys the next merge takes in (a batch more than its
		// threshold, at most: a sixteenth is room for that).
		after := growingThreshold(len(base) + growingThreshold(len(base)))
		after += after / 16
		p.done <- mergedBase{base: base, abbr: abbr, live: live, liveBytes: liveBytes,
			keys: keys[:0], news: slices.Grow(news[:0], after), mem: make(map[string]ref, after)}
	}()
}

// finishMerge waits for the background merge, if any, and installs it.
func (x *index) finishMerge() {
	p := x.pending
	if p == nil {
		return
	}
	res := <-p.done
	x.pending = nil
	before := x.live
	x.base, x.abbr, x.live, x.liveBytes = res.base, res.abbr, res.live, res.liveBytes
	x.growing = x.growing && 2*(x.live-before) > len(p.frozen)
	x.memPuts -= p.puts
	x.memBytes -= p.bytes
	if !x.growing {
		x.abbr = abbrevs{} // only background merges use them
		return
	}
	x.spareMem, x.spareKeys, x.spareNew = res.mem, res.keys, res.news
}

// stop waits for the background work of the index (a merge, the arena's
// next chunk) and drops what it would have kept for later.
func (x *index) stop() {
	x.finishMerge()
	x.spareMem, x.spareKeys, x.spareNew = nil, nil, nil
	x.ar.dropSpare()
}

// pollMerge installs the background merge if it is done.
func (x *index) pollMerge() {
	if x.pending != nil && len(x.pending.done) > 0 {
		x.finishMerge()
	}
}

// abbrevs are the abbreviations of base's keys (of[i] is base[i]'s), all
// of which start with the same skip bytes. A background merge keeps them
// for the next one, at 16 bytes a key while the fold grows; every other
// change of base drops them.
type abbrevs struct {
	skip int
	of   []abbrev
}

// memChange is a change of mem as a merge takes it, or as the tail holds
// it: its key (read from the entry when the tail sets a put), its staged
// reference (or tombstone) and the payload bytes of that entry.
type memChange struct {
	key  string
	r    ref
	size int
}

// memChangeKey is c's key, for compareItems.
func memChangeKey(c memChange) []byte { return stringBytes(c.key) }

// mergeGrowing is mergeInto for a background merge. mergeInto finds each
// change's place in base by comparing it with base's keys in the arena,
// a cache miss each, a few per change: the largest part of a first sync's
// CPU time. mergeGrowing compares abbreviations instead, base's from the
// merge before (see abbrevs) and mem's taken as its keys are gathered, and
// reads base's keys only where two abbreviations are equal. It returns the
// new base with its abbreviations.
func (x *index) mergeGrowing() (base []ref, ab abbrevs, live int, liveBytes int64) {
	ab = x.abbr
	if ab.of == nil {
		ab = x.abbreviateBase(x.commonPrefix())
	}
	items, skip := x.memChanges(ab.skip)
	if skip < ab.skip {
		ab = x.abbreviateBase(skip) // a key that shares less of base's prefix
	}
	slices.SortFunc(items, func(a, b keyItem[memChange]) int { return compareItems(memChangeKey, &a, &b) })

	n := len(x.base) + len(items)
	base, of := prefaulted(make([]ref, 0, n)), prefaulted(make([]abbrev, 0, n))
	live, liveBytes = x.live, x.liveBytes
	i := 0
	for m := range items {
		c := &items[m]
		below := func(j int) bool { return x.baseBelow(ab.of, i+j, c.abbrev, c.v.key) }
		j := i + gallop(len(x.base)-i, below, (len(x.base)-i)/(len(items)-m))
		base, of = append(base, x.base[i:j]...), append(of, ab.of[i:j]...)
		i = j
		if i < len(x.base) && ab.of[i] == c.abbrev && string(x.ar.key(x.base[i])) == c.v.key {
			live--
			liveBytes -= int64(len(x.ar.payload(x.base[i])))
			i++ // shadowed by mem
		}
		if c.v.r != tombstone {
			base, of = append(base, c.v.r), append(of, c.abbrev)
			live++
			liveBytes += int64(c.v.size)
		}
	}
	base, of = append(base, x.base[i:]...), append(of, ab.of[i:]...)
	return base, abbrevs{skip: ab.skip, of: of}, live, liveBytes
}

// commonPrefix is the length of the prefix all of base's keys share (its
// first and last key's, base being sorted), or MaxInt for an empty base.
func (x *index) commonPrefix() int {
	if len(x.base) == 0 {
		return math.MaxInt
	}
	return commonPrefixLen(x.ar.key(x.base[0]), x.ar.key(x.base[len(x.base)-1]))
}

// abbreviateBase returns the abbreviations of base's keys after skip bytes.
func (x *index) abbreviateBase(skip int) abbrevs {
	of := prefaulted(make([]abbrev, len(x.base)))
	for i, r := range x.base {
		of[i] = abbreviate(x.ar.key(r), skip)
	}
	return abbrevs{skip: skip, of: of}
}

// memChanges gathers mem's changes with their abbreviations, after the
// first skip bytes (at most), which every key of base shares. It returns
// them and the skip they used: less than asked where a key of mem shares
// less of base's prefix (or of the first key of mem, for an empty base).
func (x *index) memChanges(skip int) ([]keyItem[memChange], int) {
	items := prefaulted(make([]keyItem[memChange], 0, len(x.mem)))
	var prefix string
	if len(x.base) > 0 {
		prefix = x.ar.keyString(x.base[0])
	}
	asked := skip
	for k, r := range x.mem {
		if len(items) == 0 && len(x.base) == 0 {
			prefix = k
		}
		skip = min(skip, len(prefix), commonPrefixLen(prefix[:min(skip, len(prefix))], k))
		c := memChange{key: k, r: r}
		if r != tombstone {
			c.size = len(x.ar.payload(r))
		}
		items = append(items, keyItem[memChange]{abbrev: abbreviate(stringBytes(k), skip), v: c})
	}
	if skip < asked {
		for i := range items {
			items[i].abbrev = abbreviate(stringBytes(items[i].v.key), skip)
		}
	}
	return items, skip
}
