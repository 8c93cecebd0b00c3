package main

import (
	"fmt"
	"iter"
	"sort"
	"strings"
	"unsafe"

	"github.com/slipstreamkv/slipstream/plugins/sdk"
)

// Entry is one key of the view.
type Entry struct {
	Key      string
	Value    string
	Revision uint64
}

// KeyPair is one key found by ls or tree: Key is relative to the prefix
// asked for, Path is the whole key.
type KeyPair struct {
	Path     string
	Key      string
	Value    string
	Revision uint64
}

// Data is what a template sees as its dot. Its methods read the view
// lazily: a template that never uses .Entries does not load them.
type Data struct {
	v        *view
	watch    string
	revision uint64
	prefix   string
	values   map[string]string
}

// Watch is the watch's name.
func (d *Data) Watch() string { return d.watch }

// Revision is the cursor revision of this render. A template that uses it
// is rendered again on every batch.
func (d *Data) Revision() uint64 {
	d.v.deps.always = true
	return d.revision
}

// Entries are the keys under the template's prefix in ascending key order.
func (d *Data) Entries() ([]Entry, error) { return d.v.scan(d.prefix) }

// stream returns the entries under the template's prefix, in ascending key
// order: those of a scan another template of the call made, or else (nil)
// the pages of a scan streaming from the host through the SDK's reused
// buffers, whose entries are valid only until the loop asks for the next
// page.
func (d *Data) stream() ([]Entry, iter.Seq2[[]sdk.Entry, error]) {
	if es, ok := d.v.cached(d.prefix); ok {
		return es, nil
	}
	return nil, d.v.h.ScanPages(d.prefix)
}

// Values maps every key under the template's prefix to its value.
func (d *Data) Values() (map[string]string, error) {
	if d.values != nil {
		d.v.deps.addPrefix(d.prefix)
		return d.values, nil
	}
	es, err := d.v.scan(d.prefix)
	if err != nil {
		return nil, err
	}
	d.values = make(map[string]string, len(es))
	for _, e := range es {
		d.values[e.Key] = e.Value
	}
	return d.values, nil
}

// deps are what one template read, to tell whether a batch can change its
// output.
type deps struct {
	always   bool
	prefixes []string
	keys     map[string]bool
}

func (d *deps) addPrefix(p string) {
	for _, q := range d.prefixes {
		if strings.HasPrefix(p, q) {
			return
		}
	}
	d.prefixes = append(d.prefixes, p)
}

func (d *deps) addKey(k string) {
	if d.keys == nil {
		d.keys = map[string]bool{}
	}
	d.keys[k] = true
}

// touched reports whether a change of key can change what was read.
func (d *deps) touched(key string) bool {
	if d.always || d.keys[key] {
		return true
	}
	for _, p := range d.prefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// view reads the host's view for one call, each prefix at most once, and
// records what the running template read in deps.
type view struct {
	h     *sdk.Host
	scans map[string][]Entry // by prefix, ascending
	gets  map[string]*Entry  // nil: absent
	sep   string
	deps  *deps
}

// active is the view of the running call, which the view functions (key,
// ls, tree) read: a plugin instance runs one call at a time.
var active *view

func newView(h *sdk.Host, sep string) *view {
	return &view{h: h, scans: map[string][]Entry{}, gets: map[string]*Entry{}, sep: sep, deps: &deps{}}
}

// cached returns the entries whose keys start with prefix if a scan of this
// call holds them, and records the read.
func (v *view) cached(prefix string) ([]Entry, bool) {
	v.deps.addPrefix(prefix)
	if es, ok := v.scans[prefix]; ok {
		return es, true
	}
	for p, es := range v.scans {
		if strings.HasPrefix(prefix, p) {
			return under(es, prefix), true
		}
	}
	return nil, false
}

// scan returns the entries whose keys start with prefix.
func (v *view) scan(prefix string) ([]Entry, error) {
	if es, ok := v.cached(prefix); ok {
		return es, nil
	}
	var es []Entry
	for e, err := range v.h.Scan(prefix) {
		if err != nil {
			return nil, err
		}
		es = append(es, Entry{Key: e.Key, Value: alias(e.Value), Revision: e.Revision})
	}
	v.scans[prefix] = es
	return es, nil
}

// alias returns a value of a scan page as a string without copying it: the
// SDK gives every page its own buffer and never writes it again.
func alias(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// under returns the entries of es (ascending) whose keys start with prefix.
func under(es []Entry, prefix string) []Entry {
	i := sort.Search(len(es), func(i int) bool { return es[i].Key >= prefix })
	j := i
	for j < len(es) && strings.HasPrefix(es[j].Key, prefix) {
		j++
	}
	return es[i:j:j]
}

// get returns the entry of key, or nil.
func (v *view) get(key string) (*Entry, error) {
	v.deps.addKey(key)
	if e, ok := v.gets[key]; ok {
		return e, nil
	}
	for p, es := range v.scans {
		if strings.HasPrefix(key, p) {
			if f := under(es, key); len(f) > 0 && f[0].Key == key {
				return &f[0], nil
			}
			return nil, nil
		}
	}
	e, ok, err := v.h.Get(key)
	if err != nil {
		return nil, err
	}
	var found *Entry
	if ok {
		found = &Entry{Key: e.Key, Value: string(e.Value), Revision: e.Revision}
	}
	v.gets[key] = found
	return found, nil
}

// pairs lists the keys below prefix as consul-template does: prefix is a
// directory (a separator is added when missing), folder keys (ending with
// the separator) are left out, and nested keys only when recursive.
func (v *view) pairs(prefix string, recursive bool) ([]KeyPair, error) {
	if prefix != "" && !strings.HasSuffix(prefix, v.sep) {
		prefix += v.sep
	}
	es, err := v.scan(prefix)
	if err != nil {
		return nil, fmt.Errorf("prefix %q: %w", prefix, err)
	}
	var out []KeyPair
	for _, e := range es {
		rel := e.Key[len(prefix):]
		if rel == "" || strings.HasSuffix(rel, v.sep) || (!recursive && strings.Contains(rel, v.sep)) {
			continue
		}
		out = append(out, KeyPair{Path: e.Key, Key: rel, Value: e.Value, Revision: e.Revision})
	}
	return out, nil
}
