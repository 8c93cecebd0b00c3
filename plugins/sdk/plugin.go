package sdk

import (
	"fmt"
	"runtime"
	"runtime/debug"

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

// Cursor is the watch position a call brings the plugin to.
type Cursor = abi.Cursor

// Update is one change of a batch. Value is nil for deletes and purges.
// Its slices stay valid after the call (each call has its own input buffer).
type Update struct {
	Op       Op
	Key      string
	Value    []byte
	Revision uint64
	Version  []byte
}

// IsRemoval reports whether the update removes its key (delete or purge).
func (u Update) IsRemoval() bool { return u.Op == OpDelete || u.Op == OpPurge }

// Entry is one key of the view.
type Entry struct {
	Key      string
	Value    []byte
	Revision uint64
	Version  []byte
}

// Batch is the input of one call. For a render, Updates is empty and the
// plugin must make its outputs reflect the whole view.
type Batch struct {
	// Render is true for a full render, false for an incremental batch.
	Render  bool
	Watch   string
	Cursor  Cursor
	Updates []Update
}

// Plugin is what a plugin implements. Apply handles an incremental batch:
// b.Updates are the changes, and the view ([Host.Get], [Host.Scan]) already
// includes them. Render must make every output reflect the whole view; it
// runs after an initial sync, a resync or an upgrade. Both must be idempotent:
// a batch may be delivered again after a failure or a crash.
//
// Returning an error fails the call: nothing the call staged is committed and
// the host retries later.
type Plugin interface {
	Apply(h *Host, b *Batch) error
	Render(h *Host, b *Batch) error
}

// RenderFunc is a [Plugin] that handles batches and renders the same way,
// by rebuilding its outputs from the view.
type RenderFunc func(h *Host, b *Batch) error

// Apply calls f.
func (f RenderFunc) Apply(h *Host, b *Batch) error { return f(h, b) }

// Render calls f.
func (f RenderFunc) Render(h *Host, b *Batch) error { return f(h, b) }

var registered Plugin

// Register sets the plugin the module runs. Call it from an init function:
// a reactor module's main function never runs.
func Register(p Plugin) { registered = p }

// run is the body of the slipstream_apply and slipstream_render exports.
func run(kind abi.Kind, inputLen uint32) (status int32) {
	// A Go guest's GC only runs when it yields; a reactor that never yields
	// grows without bound. This must run last, after the recover below.
	defer runtime.Gosched()
	defer func() {
		if r := recover(); r != nil {
			hostReportError(fmt.Sprintf("panic: %v\n%s", r, debug.Stack()))
			status = abi.GuestPanicked
		}
	}()
	if err := dispatch(kind, inputLen); err != nil {
		hostReportError(err.Error())
		return abi.GuestFailed
	}
	return abi.GuestOK
}

func dispatch(kind abi.Kind, inputLen uint32) error {
	if registered == nil {
		return fmt.Errorf("sdk: no plugin registered (call sdk.Register from an init function)")
	}
	b, err := readInput(kind, inputLen)
	if err != nil {
		return err
	}
	h := &Host{}
	if kind == abi.KindRender {
		return registered.Render(h, b)
	}
	return registered.Apply(h, b)
}

// readInput fetches and decodes the call input.
func readInput(kind abi.Kind, n uint32) (*Batch, error) {
	buf := make([]byte, n)
	if got := hostInputRead(buf); got != int64(n) {
		return nil, fmt.Errorf("sdk: input_read returned %d, want %d", got, n)
	}
	h, off, err := abi.ParseHeader(buf)
	if err != nil {
		return nil, fmt.Errorf("sdk: call input: %w", err)
	}
	if h.Kind != kind {
		return nil, fmt.Errorf("sdk: %s export received %s input", kind, h.Kind)
	}
	b := &Batch{Render: kind == abi.KindRender, Watch: h.Watch, Cursor: h.Cursor}
	if h.Count > 0 {
		// Each record takes at least RecordHeaderSize bytes: never trust
		// the count beyond what the input can hold.
		b.Updates = make([]Update, 0, min(int(h.Count), len(buf)/abi.RecordHeaderSize))
	}
	for i := uint32(0); i < h.Count; i++ {
		r, m, err := abi.ParseRecord(buf[off:])
		if err != nil {
			return nil, fmt.Errorf("sdk: call input: update %d: %w", i, err)
		}
		off += m
		u := Update{Op: r.Op, Key: r.Key, Revision: r.Revision, Version: r.Version}
		if r.Op == abi.OpPut {
			u.Value = r.Value
		}
		b.Updates = append(b.Updates, u)
	}
	return b, nil
}
