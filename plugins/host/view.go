package host

import (
	"context"
	"slices"
	"strings"

	"github.com/slipstreamkv/slipstream/plugins/abi"
)

// Op is the kind of an [Update].
type Op = abi.Op

// Operations.
const (
	OpPut    = abi.OpPut
	OpDelete = abi.OpDelete
	OpPurge  = abi.OpPurge
)

// Cursor is the watch position a call brings the plugin to: the revision (0
// when the backend has none) and the backend's opaque version bytes (at most
// [abi.MaxVersionLen]).
type Cursor = abi.Cursor

// Update is one change of a batch: Op, Key, Value (nil for deletes and
// purges), Revision (0 when the backend has none) and Version, the backend's
// opaque version bytes (at most [abi.MaxVersionLen]).
type Update = abi.Record

// Entry is one key of the view.
type Entry = abi.Entry

// Batch is an incremental batch: the updates since the previous cursor, in
// order, and the cursor they bring the watch to.
type Batch struct {
	Cursor  Cursor
	Updates []Update
}

// View is the watch's state as of after the batch being applied: the fold
// plus the batch. The guest reads it with view_get and paged view_scan, so a
// view may be far larger than guest memory.
//
// Implementations must be safe for use by the goroutine running the call; the
// host never calls a View concurrently with itself.
type View interface {
	// Get returns the entry of key; ok is false when the key is absent.
	Get(ctx context.Context, key string) (e Entry, ok bool, err error)
	// Scan calls fn for each entry whose key starts with prefix and sorts
	// strictly after after ("" = from the first), in ascending byte order of
	// keys, until fn returns false or the entries run out. An entry's Value
	// and Version are valid only until fn returns (the host copies them into
	// the guest's page), so a view may reuse their memory.
	Scan(ctx context.Context, prefix, after string, fn func(Entry) bool) error
}

// MemView is an in-memory [View] kept sorted by key. It suits tests, tools
// and small watches. The zero value is an empty view. It is not safe for
// concurrent use while being modified.
type MemView struct {
	entries []Entry // sorted by Key, unique
}

var _ View = (*MemView)(nil)

// NewMemView returns a view holding entries (later duplicates win).
func NewMemView(entries ...Entry) *MemView {
	v := &MemView{}
	for _, e := range entries {
		v.Put(e)
	}
	return v
}

// Len is the number of keys in the view.
func (v *MemView) Len() int { return len(v.entries) }

func (v *MemView) find(key string) (int, bool) {
	return slices.BinarySearchFunc(v.entries, key, func(e Entry, k string) int { return strings.Compare(e.Key, k) })
}

// Put inserts or replaces the entry of e.Key.
func (v *MemView) Put(e Entry) {
	i, ok := v.find(e.Key)
	if ok {
		v.entries[i] = e
		return
	}
	v.entries = slices.Insert(v.entries, i, e)
}

// Delete removes key if present.
func (v *MemView) Delete(key string) {
	if i, ok := v.find(key); ok {
		v.entries = slices.Delete(v.entries, i, i+1)
	}
}

// Apply folds updates into the view in order: a put upserts, a delete or
// purge removes.
func (v *MemView) Apply(updates []Update) {
	for _, u := range updates {
		if u.Op == OpPut {
			v.Put(Entry{Key: u.Key, Value: u.Value, Revision: u.Revision, Version: u.Version})
		} else {
			v.Delete(u.Key)
		}
	}
}

// Get implements [View].
func (v *MemView) Get(_ context.Context, key string) (Entry, bool, error) {
	if i, ok := v.find(key); ok {
		return v.entries[i], true, nil
	}
	return Entry{}, false, nil
}

// Scan implements [View].
func (v *MemView) Scan(ctx context.Context, prefix, after string, fn func(Entry) bool) error {
	start := max(prefix, after)
	i, found := v.find(start)
	if found && start == after {
		i++
	}
	for ; i < len(v.entries); i++ {
		e := v.entries[i]
		if !strings.HasPrefix(e.Key, prefix) {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !fn(e) {
			return nil
		}
	}
	return nil
}
