package main

import (
	"github.com/slipstreamkv/slipstream/plugins/sdk"
	"runtime"
	"runtime/debug"
	"strconv"
	"text/template/parse"
)

// A plan runs a template of the most common shape, a listing of the view
// such as {{range .Entries}}{{.Key}}={{.Value}}{{"\n"}}{{end}}, without
// text/template's reflection, which costs a Go guest tens of microseconds per
// key. It covers text, {{.Watch}}, {{.Revision}}, and {{range .Entries}}
// whose body holds only text, {{.Key}}, {{.Value}} and {{.Revision}}; any
// other template runs on text/template. Both print the same bytes.
type plan []step

// step is one element of a plan: text, a field of the dot, or a range over
// .Entries running body for each entry.
type step struct {
	kind kind
	text string
	body plan // of a range
}

type kind uint8

const (
	text kind = iota
	watchField
	revisionField // of the Data, or of the Entry in a range
	keyField
	valueField
	rangeEntries
)

// fields are the fields a plan prints, on the Data and in a range.
var fields = [2]map[string]kind{
	{"Watch": watchField, "Revision": revisionField},
	{"Key": keyField, "Value": valueField, "Revision": revisionField},
}

// compile returns the plan of a template's tree, or nil when the template
// needs text/template.
func compile(tree *parse.Tree) plan {
	if tree == nil || tree.Root == nil {
		return nil
	}
	p, ok := compileList(tree.Root, false)
	if !ok {
		return nil
	}
	return p
}

// compileList compiles the nodes of list, whose dot is an Entry when
// inRange, the Data otherwise.
func compileList(list *parse.ListNode, inRange bool) (plan, bool) {
	p := plan{}
	for _, n := range list.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			p = append(p, step{kind: text, text: string(n.Text)})
		case *parse.ActionNode:
			scope := 0
			if inRange {
				scope = 1
			}
			k, ok := fields[scope][field(n.Pipe)]
			if !ok {
				return nil, false
			}
			p = append(p, step{kind: k})
		case *parse.RangeNode:
			if inRange || field(n.Pipe) != "Entries" || n.ElseList != nil {
				return nil, false
			}
			body, ok := compileList(n.List, true)
			if !ok {
				return nil, false
			}
			p = append(p, step{kind: rangeEntries, body: body})
		default:
			return nil, false
		}
	}
	return p, true
}

// field returns the name of a pipeline that is just {{.Name}}, or "".
func field(pipe *parse.PipeNode) string {
	if pipe == nil || len(pipe.Decl) != 0 || len(pipe.Cmds) != 1 || len(pipe.Cmds[0].Args) != 1 {
		return ""
	}
	f, ok := pipe.Cmds[0].Args[0].(*parse.FieldNode)
	if !ok || len(f.Ident) != 1 {
		return ""
	}
	return f.Ident[0]
}

// run executes the plan on data, appending to dst. With next, it records
// in next.ranges where each entry's output went. With prev, a listing of
// the view before the batch whose changes under the prefix are cs, each
// range patches prev's instead of reading the view; next is then required.
//
// The guest's collector is off while it runs, and collects once at the end
// if it left megabytes of garbage: buffers of a chunk or more replaced (a
// few kilobytes are left to the collector). A plan allocates nothing per
// entry, only larger buffers now and then, but each of those starts a
// collection that a guest, one thread never yielding during a call, cannot
// finish: it lasts the rest of the call and into the next, with a write
// barrier on every pointer stored. That made the first render of 100,000 keys in a fresh instance
// 1.1 s instead of 0.23 s (BenchmarkTemplateRender100k/first). A range
// that outgrows dst continues in chunks joined at the end (spill), so that
// memory holds the output about twice, not every size a buffer grew
// through.
func (p plan) run(dst []byte, data *Data, next, prev *listing, cs []change) ([]byte, error) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	before := cap(dst)
	if next != nil {
		for len(next.ranges) < len(p) {
			next.ranges = append(next.ranges, rangeListing{})
		}
		for i := range next.ranges {
			before += next.ranges[i].size()
		}
	}
	var sp spill
	defer func() {
		after := cap(dst) + len(sp.full)
		if next != nil {
			for i := range next.ranges {
				after += next.ranges[i].size()
			}
		}
		if len(sp.full) > 0 || after != before && before >= chunkSize {
			runtime.GC()
		}
	}()
	for i, s := range p {
		switch s.kind {
		case text:
			dst = append(dst, s.text...)
		case watchField:
			dst = append(dst, data.Watch()...)
		case revisionField:
			dst = strconv.AppendUint(dst, data.Revision(), 10)
		case rangeEntries:
			var r *rangeListing
			if next != nil {
				r = &next.ranges[i]
				r.reset(sp.base + len(dst))
			}
			if prev != nil {
				data.v.deps.addPrefix(data.prefix)
				dst = r.merge(dst, s.body, &prev.ranges[i], prev.out, cs)
				continue
			}
			cached, pages := data.stream()
			for i := range cached {
				e := &cached[i]
				dst = s.body.appendEntry(dst, e.Key, e.Value, e.Revision)
				if r != nil {
					r.add(e.Key, sp.base+len(dst))
				}
			}
			if pages == nil {
				continue
			}
			for page, err := range pages {
				if err != nil {
					return dst, err
				}
				dst = sp.room(dst, s.body.need(page))
				dst = s.body.appendPage(dst, page, r, sp.base)
			}
		}
	}
	dst = sp.join(dst)
	return dst, nil
}

// appendPage appends the range body run on every entry of page to dst,
// which has room for it, and records the entries in r unless it is nil;
// dst follows base bytes of output.
func (p plan) appendPage(dst []byte, page []sdk.Entry, r *rangeListing, base int) []byte {
	if r == nil {
		for i := range page {
			e := &page[i]
			dst = p.appendEntry(dst, e.Key, alias(e.Value), e.Revision)
		}
		return dst
	}
	r.reserve(page)
	for i := range page {
		e := &page[i]
		dst = p.appendEntry(dst, e.Key, alias(e.Value), e.Revision)
		r.add(e.Key, base+len(dst))
	}
	return dst
}

// appendEntry appends a range body run on one entry to dst.
func (p plan) appendEntry(dst []byte, key, value string, revision uint64) []byte {
	for i := range p {
		s := &p[i] // not a copy of the step: this runs for every entry
		switch s.kind {
		case text:
			dst = append(dst, s.text...)
		case keyField:
			dst = append(dst, key...)
		case valueField:
			dst = append(dst, value...)
		case revisionField:
			dst = strconv.AppendUint(dst, revision, 10)
		}
	}
	return dst
}

// need is the room the range body needs to run on every entry of page.
func (p plan) need(page []sdk.Entry) int {
	var keys, values, texts, revisions int
	for _, s := range p {
		switch s.kind {
		case text:
			texts += len(s.text)
		case keyField:
			keys++
		case valueField:
			values++
		case revisionField:
			revisions++
		}
	}
	n := len(page) * (texts + revisions*20)
	for i := range page {
		n += keys*len(page[i].Key) + values*len(page[i].Value)
	}
	return n
}

// grow returns s with room for n more elements, growing it at least
// twofold when it must grow: append grows a large slice by a quarter, and
// every reallocation costs a Go guest a copy, a zeroing and garbage.
func grow[T any](s []T, n int) []T {
	if cap(s)-len(s) >= n {
		return s
	}
	grown := make([]T, len(s), max(2*cap(s), len(s)+n))
	copy(grown, s)
	return grown
}

// chunkSize is the size from which a plan's output continues in chunks
// rather than growing (spill).
const chunkSize = 1 << 20

// spill is the output of a plan run that outgrew its buffer: the buffers
// filled so far, joined once at the end instead of copied at every growth.
type spill struct {
	full [][]byte
	base int // bytes in full
}

// room returns dst with room for n more bytes: dst, dst grown while it is
// small, or else a new chunk, dst joining the full ones.
func (sp *spill) room(dst []byte, n int) []byte {
	if cap(dst)-len(dst) >= n {
		return dst
	}
	if cap(dst) < chunkSize {
		return grow(dst, n)
	}
	sp.full = append(sp.full, dst)
	sp.base += len(dst)
	return make([]byte, 0, max(n, chunkSize))
}

// join returns the whole output, the full chunks followed by dst, in one
// buffer of its size.
func (sp *spill) join(dst []byte) []byte {
	if len(sp.full) == 0 {
		return dst
	}
	out := make([]byte, 0, sp.base+len(dst))
	for _, c := range sp.full {
		out = append(out, c...)
	}
	return append(out, dst...)
}
