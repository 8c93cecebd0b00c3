package host

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/slipstreamkv/slipstream/plugins/abi"
)

// scanPageSoft bounds a view_scan or output_list page once it holds one item,
// whatever buffer the guest offers, so one host call stays short.
const scanPageSoft = 256 << 10

// call is the state of one export call (or of instantiation, kind 0), found
// by host functions through the context.
type call struct {
	inst  *Instance
	kind  abi.Kind // 0 while instantiating: only log, config_get, config_keys and report_error work
	clock *clock   // the call's time limit
	input []byte
	view  View
	stage *stage
	hooks []string

	errMsg string
	failed error // the first refused staging or hook request, or host I/O failure
}

type callKey struct{}

func withCall(ctx context.Context, c *call) context.Context {
	return context.WithValue(ctx, callKey{}, c)
}

// fail records the first error that must fail the call whatever the guest returns.
func (c *call) fail(err error) {
	if c.failed == nil {
		c.failed = err
	}
}

// hostFunc implements one host function. p holds the i32 parameters; the
// result is a length (>= 0) or a negative abi.Status.
type hostFunc func(ctx context.Context, c *call, m api.Memory, p []uint32) int64

// hostFuncs maps each abi host function to its implementation.
var hostFuncs = map[string]hostFunc{
	abi.FuncLog:         hostLog,
	abi.FuncInputRead:   hostInputRead,
	abi.FuncConfigGet:   hostConfigGet,
	abi.FuncConfigKeys:  hostConfigKeys,
	abi.FuncViewGet:     hostViewGet,
	abi.FuncViewScan:    hostViewScan,
	abi.FuncOutputList:  hostOutputList,
	abi.FuncStageWrite:  hostStageWrite,
	abi.FuncStageRemove: hostStageRemove,
	abi.FuncHookRequest: hostHookRequest,
	abi.FuncReportError: hostReportError,
}

// instantiateHostModule defines the abi.ImportModule host module in r.
func instantiateHostModule(ctx context.Context, r wazero.Runtime) error {
	b := r.NewHostModuleBuilder(abi.ImportModule)
	for _, sig := range abi.HostFunctions() {
		b.NewFunctionBuilder().
			WithGoModuleFunction(adapt(hostFuncs[sig.Name], sig), valueTypes(sig.Params), valueTypes(sig.Results)).
			Export(sig.Name)
	}
	_, err := b.Instantiate(ctx)
	return err
}

func valueTypes(ts []abi.ValueType) []api.ValueType {
	out := make([]api.ValueType, len(ts))
	for i, t := range ts {
		out[i] = api.ValueType(t) // same binary encoding
	}
	return out
}

// adapt turns a hostFunc into a wazero stack function. Parameters arrive as
// uint64 whose upper half is garbage for i32s, so they are truncated.
func adapt(fn hostFunc, sig abi.Signature) api.GoModuleFunc {
	n := len(sig.Params)
	i64 := sig.Results[0] == abi.I64
	return func(ctx context.Context, mod api.Module, stack []uint64) {
		var params [8]uint32
		for i := range n {
			params[i] = api.DecodeU32(stack[i])
		}
		res := int64(abi.ErrState)
		if c, _ := ctx.Value(callKey{}).(*call); c != nil {
			res = fn(ctx, c, mod.Memory(), params[:n])
		}
		if i64 {
			stack[0] = uint64(res)
		} else {
			stack[0] = api.EncodeI32(int32(res))
		}
	}
}

// read returns the guest bytes [ptr, ptr+n), aliasing guest memory.
func read(m api.Memory, ptr, n uint32) ([]byte, bool) {
	if m == nil {
		return nil, false
	}
	return m.Read(ptr, n)
}

func readString(m api.Memory, ptr, n uint32) (string, bool) {
	b, ok := read(m, ptr, n)
	return string(b), ok
}

// output writes data to the guest buffer [ptr, ptr+capacity) under the
// output-buffer convention: the full length is returned, and data is written
// only if it fits.
func output(m api.Memory, ptr, capacity uint32, data []byte) int64 {
	if _, ok := read(m, ptr, capacity); !ok {
		return int64(abi.ErrMemory)
	}
	if uint64(len(data)) <= uint64(capacity) {
		m.Write(ptr, data)
	}
	return int64(len(data))
}

// readPrefix bounds-checks the whole guest range [ptr, ptr+n) but copies
// only its first limit bytes, so a guest cannot make the host copy (or keep)
// more than a message's worth of its memory.
func readPrefix(m api.Memory, ptr, n uint32, limit int) (string, bool) {
	b, ok := read(m, ptr, n)
	return string(b[:min(len(b), limit)]), ok
}

func hostLog(_ context.Context, c *call, m api.Memory, p []uint32) int64 {
	msg, ok := readPrefix(m, p[1], p[2], abi.MaxLogLen)
	if !ok {
		return int64(abi.ErrMemory)
	}
	c.inst.sink.emit(slog.Level(int32(p[0])), msg, "log")
	return int64(abi.OK)
}

func hostInputRead(_ context.Context, c *call, m api.Memory, p []uint32) int64 {
	if c.kind == 0 {
		return int64(abi.ErrState)
	}
	return output(m, p[0], p[1], c.input)
}

func hostConfigGet(_ context.Context, c *call, m api.Memory, p []uint32) int64 {
	key, ok := read(m, p[0], p[1])
	if !ok {
		return int64(abi.ErrMemory)
	}
	if _, ok := read(m, p[2], p[3]); !ok {
		return int64(abi.ErrMemory)
	}
	v, ok := c.inst.plugin.cfg.Config[string(key)] // looked up without copying the key
	if !ok {
		return int64(abi.ErrNotFound)
	}
	return output(m, p[2], p[3], []byte(v))
}

func hostConfigKeys(_ context.Context, c *call, m api.Memory, p []uint32) int64 {
	return output(m, p[0], p[1], c.inst.plugin.configKeys)
}

func hostViewGet(ctx context.Context, c *call, m api.Memory, p []uint32) int64 {
	if c.kind == 0 {
		return int64(abi.ErrState)
	}
	key, ok := readString(m, p[0], p[1])
	if !ok {
		return int64(abi.ErrMemory)
	}
	if _, ok := read(m, p[2], p[3]); !ok {
		return int64(abi.ErrMemory)
	}
	e, found, err := c.view.Get(ctx, key)
	if err == nil && len(e.Version) > abi.MaxVersionLen {
		err = fmt.Errorf("entry %s has a %d-byte version", abi.Quote(key), len(e.Version))
	}
	if err != nil {
		c.fail(fmt.Errorf("%w: view_get %s: %v", ErrIO, abi.Quote(key), err))
		return int64(abi.ErrIO)
	}
	if !found {
		return int64(abi.ErrNotFound)
	}
	rec := abi.AppendRecord(nil, e.Record())
	return output(m, p[2], p[3], rec)
}

func hostViewScan(ctx context.Context, c *call, m api.Memory, p []uint32) int64 {
	if c.kind == 0 {
		return int64(abi.ErrState)
	}
	prefix, ok1 := readString(m, p[0], p[1])
	after, ok2 := readString(m, p[2], p[3])
	dst, ok3 := read(m, p[4], p[5])
	if !ok1 || !ok2 || !ok3 {
		return int64(abi.ErrMemory)
	}
	// Encoded straight into the guest's buffer: the view cannot touch guest
	// memory, and an I/O error below fails the call whatever the buffer holds.
	w := abi.NewPageWriterInto(dst, scanPageSoft)
	var bad error
	err := c.view.Scan(ctx, prefix, after, func(e Entry) bool {
		if len(e.Version) > abi.MaxVersionLen {
			bad = fmt.Errorf("entry %s has a %d-byte version", abi.Quote(e.Key), len(e.Version))
			return false
		}
		return w.AddRecord(e.Record())
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		c.fail(fmt.Errorf("%w: view_scan %s: %v", ErrIO, abi.Quote(prefix), err))
		return int64(abi.ErrIO)
	}
	page, need := w.Finish()
	if page == nil {
		return int64(need)
	}
	return int64(len(page))
}

func hostOutputList(_ context.Context, c *call, m api.Memory, p []uint32) int64 {
	if c.kind == 0 {
		return int64(abi.ErrState)
	}
	outArg, ok1 := read(m, p[0], p[1])
	dir, ok2 := readString(m, p[2], p[3])
	after, ok3 := readString(m, p[4], p[5])
	if _, ok4 := read(m, p[6], p[7]); !ok1 || !ok2 || !ok3 || !ok4 {
		return int64(abi.ErrMemory)
	}
	out, ref := c.stage.outputName(outArg)
	if ref != nil {
		return int64(ref.status)
	}
	page, need, ref := c.stage.list(out, dir, after, int(p[7]), scanPageSoft)
	if ref != nil {
		if ref.err != nil && ref.status == abi.ErrIO {
			c.fail(ref.err)
		}
		return int64(ref.status)
	}
	if page == nil {
		return int64(need)
	}
	return output(m, p[6], p[7], page)
}

// stagingArgs refuses (and fails the call) when called outside apply/render
// or with bad memory; it returns the arguments' bytes otherwise.
func (c *call) stagingArgs(fn string, m api.Memory, p []uint32) ([][]byte, abi.Status) {
	if c.kind == 0 {
		c.fail(fmt.Errorf("%w: %s called during instantiation", ErrDenied, fn))
		return nil, abi.ErrState
	}
	args := make([][]byte, 0, len(p)/2)
	for i := 0; i+1 < len(p); i += 2 {
		b, ok := read(m, p[i], p[i+1])
		if !ok {
			c.fail(fmt.Errorf("%w: %s: argument %d (%#x, %d bytes) lies outside guest memory", ErrDenied, fn, i/2+1, p[i], p[i+1]))
			return nil, abi.ErrMemory
		}
		args = append(args, b)
	}
	return args, abi.OK
}

func (c *call) staged(status abi.Status, ref *refusal) int64 {
	if ref != nil {
		c.fail(ref.err)
		return int64(ref.status)
	}
	return int64(status)
}

func hostStageWrite(_ context.Context, c *call, m api.Memory, p []uint32) int64 {
	args, st := c.stagingArgs(abi.FuncStageWrite, m, p[:6])
	if st != abi.OK {
		return int64(st)
	}
	out, ref := c.stage.outputName(args[0])
	if ref != nil {
		return c.staged(ref.status, ref)
	}
	c.clock.pause() // the host's file I/O is not the guest's time
	defer c.clock.resume()
	return c.staged(c.stage.write(out, string(args[1]), args[2], p[6]))
}

func hostStageRemove(_ context.Context, c *call, m api.Memory, p []uint32) int64 {
	args, st := c.stagingArgs(abi.FuncStageRemove, m, p)
	if st != abi.OK {
		return int64(st)
	}
	out, ref := c.stage.outputName(args[0])
	if ref != nil {
		return c.staged(ref.status, ref)
	}
	c.clock.pause()
	defer c.clock.resume()
	return c.staged(c.stage.remove(out, string(args[1])))
}

func hostHookRequest(_ context.Context, c *call, m api.Memory, p []uint32) int64 {
	args, st := c.stagingArgs(abi.FuncHookRequest, m, p)
	if st != abi.OK {
		return int64(st)
	}
	// Compared in place: the name is copied only once it matches a declared hook.
	i := slices.IndexFunc(c.inst.cfg.Hooks, func(h string) bool { return h == string(args[0]) })
	if i < 0 {
		c.fail(&UndeclaredError{Kind: "hook", Name: abi.Quote(args[0])})
		return int64(abi.ErrDenied)
	}
	name := c.inst.cfg.Hooks[i]
	if !slices.Contains(c.hooks, name) {
		c.hooks = append(c.hooks, name)
	}
	return int64(abi.OK)
}

func hostReportError(_ context.Context, c *call, m api.Memory, p []uint32) int64 {
	msg, ok := readPrefix(m, p[0], p[1], abi.MaxErrorLen)
	if !ok {
		return int64(abi.ErrMemory)
	}
	c.errMsg = msg
	return int64(abi.OK)
}
