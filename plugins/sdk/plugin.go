package sdk

import (
	"bytes"
	"fmt"
	"runtime"
	"runtime/debug"
	"unsafe"

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

// Update is one change of a batch: Op, Key, Value (nil for deletes and
// purges), Revision and Version (the backend's opaque version bytes).
// See [Batch] for how long its fields stay valid.
type Update = abi.Record

// Entry is one key of the view. Entries from [Host.Get] and [Host.Scan] stay
// valid after the call.
type Entry = abi.Entry

// Batch is the input of one call. For a render, Updates is empty and the
// plugin must make its outputs reflect the whole view.
//
// The Updates slice and every update's Value are valid only until the call
// returns: the SDK reuses their memory for the next call, because allocating
// and collecting a batch-sized buffer per call is the largest cost of a call
// in a Go guest. Copy what you keep (bytes.Clone). Keys, Versions, Watch and
// Cursor stay valid.
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

// Configurer is a [Plugin] that checks its configuration when the host
// loads it, before any call. [Register] calls Configure from the module's
// initializer (_initialize), where [Host.Config] and logging work and the
// input, the view and staging do not. An error refuses the module: the host
// fails the load with its message, so slipagent validate, and the agent
// when it loads the plugin, report a bad configuration before any call.
// The host initializes a fresh instance after a recycle too, so Configure
// may run more than once; keep what it parses as a cache, as calls do.
type Configurer interface {
	Configure(h *Host) error
}

var registered Plugin

// Register sets the plugin the module runs, and configures it if it is a
// [Configurer]. Call it from an init function: a reactor module's main
// function never runs.
func Register(p Plugin) {
	registered = p
	if c, ok := p.(Configurer); ok {
		configureAtInit(c)
	}
}

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

// aliasString returns b as a string without copying. The SDK uses it only on
// memory it never writes again (a per-call key arena, a per-page buffer), so
// the strings stay immutable.
func aliasString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// input is the call input buffer, reused across calls: allocating (and later
// collecting) a batch-sized buffer per call is the largest cost of a call in
// a Go guest, where the collector runs interruptible code. It is kept
// whatever its size: the host recycles an instance whose memory grew too
// much, which bounds it.
var input []byte

// records is the decoder's scratch space, and updates the batch's updates,
// both reused like input.
var (
	records []abi.RawRecord
	updates []Update
)

// readInput fetches and decodes the call input. Keys and versions are copied
// into one allocation per call; values point into the reused input buffer.
func readInput(kind abi.Kind, n uint32) (*Batch, error) {
	if cap(input) < int(n) {
		input = make([]byte, n)
	}
	buf := input[:n]
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
	b.Cursor.Version = bytes.Clone(h.Cursor.Version)
	if h.Count == 0 {
		return b, nil
	}
	raws, _, err := abi.AppendRawRecords(records[:0], buf[off:], h.Count)
	records = raws[:0]
	if err != nil {
		return nil, fmt.Errorf("sdk: call input: %w", err)
	}
	arena := 0
	for i := range raws {
		arena += len(raws[i].Key) + len(raws[i].Version)
	}
	keys := make([]byte, arena)
	if cap(updates) < len(raws) {
		updates = make([]Update, len(raws))
	}
	b.Updates = updates[:len(raws)]
	at := 0
	for i := range raws {
		r := &raws[i]
		u := &b.Updates[i]
		// Every field is set anew: the slice is reused, and a delete must
		// not carry the previous call's Value or Version.
		n := copy(keys[at:], r.Key)
		*u = Update{Op: r.Op, Revision: r.Revision, Key: aliasString(keys[at : at+n])}
		at += n
		if len(r.Version) > 0 {
			n = copy(keys[at:], r.Version)
			u.Version = keys[at : at+n : at+n]
			at += n
		}
		if r.Op == abi.OpPut {
			u.Value = r.Value
		}
	}
	return b, nil
}
