package snapshot

import "slices"

// A growing fold (a first sync) merges mem into base on another goroutine:
// its merges are the largest part of its index work, and Apply would run
// each one while a single batch's fsync runs, where in the background it
// overlaps the fsyncs of the batches that follow (the fold's goroutine
// mostly waits for them). The changes being merged are frozen: lookups see
// mem, then frozen, then base; every other reader of the index first
// waits for the merge and installs its result (finishMerge).

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
	live      int
	liveBytes int64
	keys      []string // frozen's key slices, cleared for reuse
	news      []string
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
	bg := &index{ar: arena{chunks: slices.Clone(x.ar.chunks)}, base: x.base, mem: x.mem,
		memKeys: x.memKeys, memNew: x.memNew, live: x.live, liveBytes: x.liveBytes}
	p := &pendingMerge{frozen: x.mem, puts: x.memPuts, bytes: x.memBytes, done: make(chan mergedBase, 1)}
	x.pending = p
	x.mem, x.spare = x.spare, nil
	if x.mem == nil {
		x.mem = make(map[string]ref, len(p.frozen))
	}
	x.memKeys, x.memNew = x.spareKeys, x.spareNew
	x.spareKeys, x.spareNew = nil, nil
	go func() {
		base, live, liveBytes := bg.mergeInto(prefaulted(make([]ref, 0, len(bg.base)+len(bg.mem))))
		keys, news := bg.memKeys, bg.memNew
		clear(keys[:cap(keys)]) // hold no caller's key past its change
		clear(news[:cap(news)])
		p.done <- mergedBase{base: base, live: live, liveBytes: liveBytes, keys: keys[:0], news: news[:0]}
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
	x.base, x.live, x.liveBytes = res.base, res.live, res.liveBytes
	x.growing = x.growing && 2*(x.live-before) > len(p.frozen)
	x.memPuts -= p.puts
	x.memBytes -= p.bytes
	if !x.growing {
		return // no more background merges: their spares would only hold memory
	}
	clear(p.frozen) // keeps its buckets for the next changes
	x.spare, x.spareKeys, x.spareNew = p.frozen, res.keys, res.news
}

// stop waits for the background work of the index (a merge, the arena's
// next chunk) and drops what it would have kept for later.
func (x *index) stop() {
	x.finishMerge()
	x.spare, x.spareKeys, x.spareNew = nil, nil, nil
	x.ar.dropSpare()
}

// pollMerge installs the background merge if it is done.
func (x *index) pollMerge() {
	if x.pending != nil && len(x.pending.done) > 0 {
		x.finishMerge()
	}
}
