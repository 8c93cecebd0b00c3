package main

import (
	"slices"
	"sort"
	"strings"

	"github.com/slipstreamkv/slipstream/plugins/sdk"
)

// maxListing bounds the output of a template whose listing is kept: up to
// it (about 100,000 lines of 100 bytes) a batch patches the last output
// into a second buffer; above it, every batch prints the template from the
// view in one buffer. Two buffers of it, the listing and the chunks of a
// first render (spill) stay under the recycling threshold of the default
// memory limit (TestLargeListingStaysInTheDefaultMemory).
const maxListing = 12 << 20

// A listing is what a plan printed at its instance's last call, kept across
// calls (instances are reused) so that a batch prints again only the
// entries it changed and copies the rest: the output, and for each range
// over .Entries every entry's key and where its part of the output ends.
// Patching a listing with a batch prints the bytes a run over the view
// after the batch prints (TestPatchedListingIsWhatARenderPrints).
type listing struct {
	valid  bool // out and ranges are the last call's
	out    []byte
	ranges []rangeListing // by step of the plan; only those of ranges are used
}

// rangeListing places the entries of one range in a listing's output.
type rangeListing struct {
	start  int      // where the range's output starts
	keys   []byte   // the entries' keys back to back, ascending
	keyEnd []uint32 // where entry i's key ends in keys
	outEnd []uint32 // where entry i's output ends in the output
}

// change is the state a batch left a key in.
type change struct {
	key      string
	put      bool // false: deleted
	value    string
	revision uint64
}

// changes returns the state the updates left each key under prefix in,
// in ascending key order: a key's last update wins.
func changes(updates []sdk.Update, prefix string) []change {
	var cs []change
	for _, u := range updates {
		if strings.HasPrefix(u.Key, prefix) {
			cs = append(cs, change{key: u.Key, put: u.Op == sdk.OpPut, value: alias(u.Value), revision: u.Revision})
		}
	}
	slices.SortStableFunc(cs, func(a, b change) int { return strings.Compare(a.key, b.key) })
	last := cs[:0]
	for i, c := range cs {
		if i+1 < len(cs) && cs[i+1].key == c.key {
			continue
		}
		last = append(last, c)
	}
	return last
}

// reset empties r to record a range whose output starts at start.
func (r *rangeListing) reset(start int) {
	r.start, r.keys, r.keyEnd, r.outEnd = start, r.keys[:0], r.keyEnd[:0], r.outEnd[:0]
}

// add records the next entry: its key, and where its output ends.
func (r *rangeListing) add(key string, end int) {
	r.keys = append(r.keys, key...)
	r.keyEnd = append(r.keyEnd, uint32(len(r.keys)))
	r.outEnd = append(r.outEnd, uint32(end))
}

// reserve makes room for the entries of page.
func (r *rangeListing) reserve(page []sdk.Entry) {
	keys := 0
	for i := range page {
		keys += len(page[i].Key)
	}
	r.keys, r.keyEnd, r.outEnd = grow(r.keys, keys), grow(r.keyEnd, len(page)), grow(r.outEnd, len(page))
}

// key returns the key of entry i.
func (r *rangeListing) key(i int) string {
	from := 0
	if i > 0 {
		from = int(r.keyEnd[i-1])
	}
	return alias(r.keys[from:r.keyEnd[i]])
}

// size is the memory r holds; none if r is nil.
func (r *rangeListing) size() int {
	if r == nil {
		return 0
	}
	return cap(r.keys) + 4*cap(r.keyEnd) + 4*cap(r.outEnd)
}

// merge appends to dst what body prints for the entries of prev (whose
// output is prevOut) patched with cs, and records them in r: the entries
// between two changes are copied, output and keys, in one piece each.
func (r *rangeListing) merge(dst []byte, body plan, prev *rangeListing, prevOut []byte, cs []change) []byte {
	r.reset(len(dst))
	i, n := 0, len(prev.outEnd)
	for _, c := range cs {
		j := i + sort.Search(n-i, func(k int) bool { return prev.key(i+k) >= c.key })
		dst = r.copy(dst, prev, prevOut, i, j)
		if j < n && prev.key(j) == c.key {
			j++
		}
		if c.put {
			dst = body.appendEntry(dst, c.key, c.value, c.revision)
			r.add(c.key, len(dst))
		}
		i = j
	}
	return r.copy(dst, prev, prevOut, i, n)
}

// copy appends entries [i, j) of prev, whose output is prevOut, to dst and
// records them in r.
func (r *rangeListing) copy(dst []byte, prev *rangeListing, prevOut []byte, i, j int) []byte {
	if i == j {
		return dst
	}
	from, keyFrom := prev.start, 0
	if i > 0 {
		from, keyFrom = int(prev.outEnd[i-1]), int(prev.keyEnd[i-1])
	}
	shift, keyShift := len(dst)-from, len(r.keys)-keyFrom
	dst = append(dst, prevOut[from:prev.outEnd[j-1]]...)
	r.keys = append(r.keys, prev.keys[keyFrom:prev.keyEnd[j-1]]...)
	for _, e := range prev.outEnd[i:j] {
		r.outEnd = append(r.outEnd, uint32(int(e)+shift))
	}
	for _, e := range prev.keyEnd[i:j] {
		r.keyEnd = append(r.keyEnd, uint32(int(e)+keyShift))
	}
	return dst
}

// runPlan renders t, whose plan it runs, into t's own buffers. A full
// render prints from the view and keeps no listing, so that it costs what
// the plan costs (an agent's first call is one); a batch keeps one: the
// first after a full render prints from the view, the next ones patch the
// last listing with their updates, when patch says it is the view before
// the batch (the last call was committed, and this one is no retry). An
// output over maxListing is printed from the view, and its listing not
// kept.
func (t *tmpl) runPlan(data *Data, b *sdk.Batch, patch bool) ([]byte, error) {
	if b.Render || len(t.last.out) > maxListing || !patch || !t.last.valid {
		var record *listing
		if !b.Render && len(t.last.out) <= maxListing {
			record = &t.last
		}
		t.last.valid, t.last.ranges, t.spare = false, nil, listing{}
		dst, err := t.plan.run(t.last.out[:0], data, record, nil, nil)
		t.last.out = dst
		if err == nil && record != nil && len(dst) <= maxListing {
			t.last.valid = true
		} else {
			t.last.ranges = nil
		}
		return dst, err
	}
	// Patched into the spare buffers: the last listing is read meanwhile.
	next := &t.spare
	next.out = grow(next.out[:0], len(t.last.out)) // about as large as the last
	dst, err := t.plan.run(next.out, data, next, &t.last, changes(b.Updates, t.prefix))
	next.out = dst
	if err != nil {
		t.last.valid = false
		return nil, err
	}
	t.last, t.spare = t.spare, t.last
	t.last.valid = true
	t.spare.valid = false
	return dst, nil
}
