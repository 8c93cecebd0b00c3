package host

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"

	"github.com/slipstreamkv/slipstream/plugins/abi"
)

// Instance is the guest instance of one watch, reused across calls and
// recycled (closed, then re-instantiated on the next call) after any trap,
// timeout, or memory growth past [PluginConfig.RecycleAbove].
//
// Calls are serialized: an Instance is safe for concurrent use, but it runs
// one call at a time.
type Instance struct {
	plugin *Plugin
	cfg    InstanceConfig
	logger *slog.Logger
	sink   *logSink

	mu     sync.Mutex
	mod    api.Module // nil: instantiate on the next call
	apply  api.Function
	render api.Function
	stdout *lineWriter
	stderr *lineWriter
	input  []byte // reused input buffer
	closed bool
	stats  Stats

	// callDone is the Done channel of the running call's context (or of
	// instantiation's). Only the goroutine running the call reads it, from
	// nanosleep.
	callDone <-chan struct{}
}

// Stats counts what an instance did.
type Stats struct {
	Calls        uint64 // apply and render calls
	Failures     uint64 // calls that returned an error
	Instantiated uint64 // guest instances created
	Recycled     uint64 // guest instances discarded after a trap, timeout or growth
	MemoryBytes  uint32 // linear memory of the current guest (0 if none)
}

// maxKeptInput is the largest input buffer an instance keeps between calls.
const maxKeptInput = 1 << 20

// Stats returns the instance's counters.
func (i *Instance) Stats() Stats {
	i.mu.Lock()
	defer i.mu.Unlock()
	s := i.stats
	if i.mod != nil {
		s.MemoryBytes = i.mod.Memory().Size()
	}
	return s
}

// Apply runs an incremental batch; v is the view as of after it (nil reads
// as empty). On success the caller must Commit or
// Discard the result. On failure nothing stays staged and the error is a
// *[CallError], which names the plugin and the watch.
func (i *Instance) Apply(ctx context.Context, b Batch, v View) (*Result, error) {
	return i.call(ctx, abi.KindApply, b.Cursor, b.Updates, v)
}

// Render asks the plugin to make its outputs reflect the whole view (after an
// initial sync, a resync, or an upgrade of the plugin or its config).
func (i *Instance) Render(ctx context.Context, cursor Cursor, v View) (*Result, error) {
	return i.call(ctx, abi.KindRender, cursor, nil, v)
}

// Close closes the guest; later calls return [ErrClosed].
func (i *Instance) Close(ctx context.Context) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.closed = true
	return i.discardGuest(ctx)
}

func (i *Instance) discardGuest(ctx context.Context) error {
	if i.mod == nil {
		return nil
	}
	err := i.mod.Close(ctx)
	i.mod, i.apply, i.render = nil, nil, nil
	return err
}

// encodeInput builds the call input in the instance's reusable buffer.
func (i *Instance) encodeInput(kind abi.Kind, cur Cursor, updates []Update) ([]byte, error) {
	if len(cur.Version) > abi.MaxVersionLen {
		return nil, fmt.Errorf("host: cursor version of %d bytes exceeds %d", len(cur.Version), abi.MaxVersionLen)
	}
	size := abi.HeaderSize + len(cur.Version) + len(i.cfg.Watch)
	for _, u := range updates {
		if len(u.Version) > abi.MaxVersionLen {
			return nil, fmt.Errorf("host: update %q: version of %d bytes exceeds %d", u.Key, len(u.Version), abi.MaxVersionLen)
		}
		if u.Op < OpPut || u.Op > OpPurge {
			return nil, fmt.Errorf("host: update %q: unknown op %d", u.Key, u.Op)
		}
		size += abi.RecordHeaderSize + len(u.Version) + len(u.Key) + len(u.Value)
	}
	if size > 1<<32-1 {
		return nil, fmt.Errorf("host: batch of %d bytes does not fit a 32-bit guest", size)
	}
	buf := i.input[:0]
	if cap(buf) < size {
		buf = make([]byte, 0, size)
	}
	buf = abi.AppendHeader(buf, abi.Header{Kind: kind, Watch: i.cfg.Watch, Cursor: cur, Count: uint32(len(updates))})
	for _, u := range updates {
		if u.Op != OpPut {
			u.Value = nil
		}
		buf = abi.AppendRecord(buf, u)
	}
	if cap(buf) <= maxKeptInput {
		i.input = buf
	} else {
		i.input = nil
	}
	return buf, nil
}

func (i *Instance) call(ctx context.Context, kind abi.Kind, cur Cursor, updates []Update, v View) (*Result, error) {
	if v == nil {
		v = NewMemView()
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.closed {
		return nil, i.callError(kind.String(), ErrClosed, "", false)
	}
	i.stats.Calls++
	res, err := i.callLocked(ctx, kind, cur, updates, v)
	if err != nil {
		i.stats.Failures++
	}
	return res, err
}

func (i *Instance) callLocked(ctx context.Context, kind abi.Kind, cur Cursor, updates []Update, v View) (*Result, error) {
	input, err := i.encodeInput(kind, cur, updates)
	if err != nil {
		return nil, i.callError(kind.String(), err, "", false)
	}
	if i.mod == nil {
		if err := i.instantiate(ctx); err != nil {
			return nil, err
		}
	}
	c := &call{inst: i, kind: kind, input: input, view: v, stage: newStage(i.cfg.Outputs, i.plugin.cfg.Limits, i.cfg.ReportKept)}
	if e := i.plugin.engine; e != nil {
		c.stage.owed = e.owed // what earlier commits could not fsync, whichever instance made them
	}
	fn := i.apply
	if kind == abi.KindRender {
		fn = i.render
	}
	cctx, cancel := context.WithCancel(withCall(ctx, c))
	c.clock = startClock(i.plugin.cfg.timeout(kind), cancel)
	i.callDone = cctx.Done()
	results, callErr := fn.Call(cctx, uint64(len(input)))
	c.clock.stop()
	if callErr == nil {
		callErr = late(ctx, c.clock)
	}
	cancel()
	kept := i.endCall()
	c.input = nil
	c.stage.forgetListings()

	if callErr != nil {
		c.stage.discard()
		i.recycle(ctx)
		err := i.trapped(ctx, kind, callErr, kept, c.errMsg, true)
		if ce, ok := errors.AsType[*CallError](err); ok && c.failed != nil && errors.Is(ce.Err, ErrTrap) {
			// A request the host refused, then a trap: a guest that
			// panics or aborts on an error status. The refusal is the cause.
			ce.Err = fmt.Errorf("%w; then %w", c.failed, ce.Err)
		}
		return nil, err
	}
	if size := i.mod.Memory().Size(); uint64(size) > i.plugin.cfg.RecycleAbove {
		i.logger.Info("recycling plugin instance: memory grew past threshold",
			slog.Uint64("memory_bytes", uint64(size)), slog.Uint64("threshold_bytes", i.plugin.cfg.RecycleAbove))
		i.recycle(ctx)
	}
	status := int32(results[0])
	switch {
	case c.failed != nil:
		c.stage.discard()
		return nil, i.callError(kind.String(), c.failed, c.errMsg, false)
	case status != abi.GuestOK:
		c.stage.discard()
		msg := c.errMsg
		if msg == "" {
			msg = fmt.Sprintf("status %d", status)
		}
		return nil, i.callError(kind.String(), ErrPluginFailed, msg, false)
	}
	if err := c.stage.settle(); err != nil {
		c.stage.discard()
		return nil, i.callError(kind.String(), err, c.errMsg, false)
	}
	return &Result{stage: c.stage, hooks: c.hooks}, nil
}

// endCall flushes the guest's partial output lines and rate-limit summary
// and returns the stderr lines kept for a trap report.
func (i *Instance) endCall() []string {
	i.stdout.endCall()
	kept := i.stderr.endCall()
	i.sink.flush()
	return kept
}

func (i *Instance) recycle(ctx context.Context) {
	if i.mod == nil {
		return
	}
	i.stats.Recycled++
	if err := i.discardGuest(ctx); err != nil {
		i.logger.Warn("closing recycled plugin instance", slog.Any("error", err))
	}
}

func (i *Instance) callError(call string, err error, msg string, recycled bool) *CallError {
	return &CallError{Plugin: i.plugin.cfg.Name, Watch: i.cfg.Watch, Call: call, Message: msg, Recycled: recycled, Err: err}
}

// trapped turns an error from calling into the guest into a CallError;
// recycled says whether a guest was discarded because of it.
func (i *Instance) trapped(ctx context.Context, kind abi.Kind, err error, kept []string, reported string, recycled bool) error {
	call := "instantiate"
	if kind != 0 {
		call = kind.String()
	}
	msg := reported
	if len(kept) > 0 {
		if msg != "" {
			msg += "; "
		}
		msg += "stderr: " + strings.Join(kept, " | ")
	}
	var exit *sys.ExitError
	switch {
	case contextEnded(err):
		if ctx.Err() != nil { // the caller's context ended, not our timeout
			return i.callError(call, fmt.Errorf("interrupted: %w", ctx.Err()), msg, recycled)
		}
		setting := "timeout"
		if kind == abi.KindRender {
			setting = "render_timeout"
		}
		return i.callError(call, fmt.Errorf("%w after %v (limit %s of the plugin)", ErrTimeout, i.plugin.cfg.timeout(kind), setting), msg, recycled)
	case kind == 0 && reported != "":
		// An initializer that reported an error, then exited or trapped
		// (AssemblyScript's abort), refuses the module, as ABI.md section 1
		// has it (a bad configuration): no crash.
		return i.callError(call, ErrPluginFailed, msg, recycled)
	case errors.As(err, &exit):
		return i.callError(call, fmt.Errorf("%w: guest exited with code %d", ErrTrap, exit.ExitCode()), msg, recycled)
	}
	first, _, _ := strings.Cut(err.Error(), "\n") // drop wazero's wasm stack trace
	i.logger.Debug("plugin trap", slog.String("call", call), slog.String("error", err.Error()))
	return i.callError(call, fmt.Errorf("%w: %s", ErrTrap, first), msg, recycled)
}

// late returns the error of a guest call that returned (with any result)
// after ctx ended or its clock ran out: the time limit is strict, so such a
// call failed, and nothing it staged may be committed. A guest woken from a
// sleep by the limit can return before wazero closes it, and even before
// the clock's timer cancels its context.
func late(ctx context.Context, c *clock) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.over() {
		return context.DeadlineExceeded
	}
	return nil
}

// contextEnded reports whether err says that the call's context ended: wazero
// closed the guest, or the guest returned after it ended.
func contextEnded(err error) bool {
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode() == sys.ExitCodeDeadlineExceeded || exit.ExitCode() == sys.ExitCodeContextCanceled
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// instantiate creates a fresh guest: it runs _initialize and checks the
// declared ABI version, under the plugin's timeout.
func (i *Instance) instantiate(ctx context.Context) error {
	p := i.plugin
	i.stdout = &lineWriter{sink: i.sink, level: slog.LevelInfo, stream: "stdout"}
	i.stderr = &lineWriter{sink: i.sink, level: slog.LevelWarn, stream: "stderr", keep: true}
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions(abi.ExportInitialize).
		WithStdout(i.stdout).
		WithStderr(i.stderr).
		WithSysWalltime().
		WithSysNanotime().
		WithNanosleep(i.nanosleep).
		WithRandSource(rand.Reader)
	c := &call{inst: i}
	cctx, cancel := context.WithCancel(withCall(ctx, c))
	defer cancel()
	c.clock = startClock(p.cfg.Timeout, cancel)
	defer c.clock.stop()
	i.callDone = cctx.Done()
	mod, err := p.runtime.InstantiateModule(experimental.WithMemoryAllocator(cctx, linearMemory), p.compiled, cfg)
	if err != nil {
		kept := i.endCall()
		if mod != nil {
			_ = mod.Close(ctx)
		}
		return i.trapped(ctx, 0, err, kept, c.errMsg, false)
	}
	i.stats.Instantiated++
	res, err := mod.ExportedFunction(abi.ExportABIVersion).Call(cctx)
	if err == nil {
		err = late(ctx, c.clock)
	}
	kept := i.endCall()
	if err != nil {
		_ = mod.Close(ctx)
		return i.trapped(ctx, 0, err, kept, c.errMsg, false)
	}
	if v := int32(res[0]); v != abi.Version {
		_ = mod.Close(ctx)
		return i.callError("instantiate", fmt.Errorf("%w: the plugin declares ABI version %d; this host speaks version %d (rebuild it against a matching SDK)", ErrABI, v, abi.Version), "", false)
	}
	i.mod = mod
	i.apply = mod.ExportedFunction(abi.ExportApply)
	i.render = mod.ExportedFunction(abi.ExportRender)
	return nil
}

// nanosleep is the guest's sleep (WASI poll_oneoff on a clock). wazero's
// default returns at once, so a guest waiting for the clock to advance (Go's
// time.Sleep) spins a CPU; wazero's WithSysNanosleep sleeps for real but
// cannot be interrupted, so a guest could sleep past its time limit. This
// one sleeps for real until the running call's context ends.
func (i *Instance) nanosleep(ns int64) {
	t := time.NewTimer(time.Duration(ns))
	defer t.Stop()
	select {
	case <-t.C:
	case <-i.callDone:
	}
}

// Result is what a successful call staged and requested. The caller must
// Commit or Discard it; until then staged files sit beside their targets
// (or in the nearest existing directory, for a target whose directory the
// commit creates).
// A Result is not safe for concurrent use.
type Result struct {
	stage *stage
	hooks []string
}

// Hooks returns the hooks the plugin requested, deduplicated, in the order of
// their first request.
func (r *Result) Hooks() []string { return append([]string(nil), r.hooks...) }

// Staged lists the staged writes and removals, in staging order.
func (r *Result) Staged() []StagedFile { return r.stage.staged() }

// Kept returns the files the call wrote with the content, mode and owner
// they already had, for which it staged nothing, in path order (with
// [InstanceConfig.ReportKept]; else none). A file
// written and then removed or written again by the call is not among
// them.
func (r *Result) Kept() []KeptFile { return r.stage.keptFiles() }

// Changed reports whether anything was staged.
func (r *Result) Changed() bool { return r.stage.count() > 0 }

// Commit fsyncs every staged file, then moves each onto its target (setting
// nothing: mode and owner were set when staging) and removes staged
// removals, in staging order, then fsyncs the directories. A write below a
// file the call removes, or onto a directory whose files it removes, first
// runs those removals, then creates the directories it needs or removes the
// emptied ones. ctx bounds the
// first step: if it ends, or an fsync fails, nothing is renamed and
// everything is discarded. Once renaming starts, a commit runs to the end.
// If a rename fails, the files not yet renamed are discarded and the error
// wraps [ErrIO]; the ones already renamed stay (each file is atomic, the set
// is not). Committing twice returns [ErrDone].
func (r *Result) Commit(ctx context.Context) error { return r.stage.commit(ctx) }

// Sync fsyncs the staged files now, the first step of Commit, which then
// does not fsync them again: a caller can overlap it with work of its own
// that must be durable before the first rename. If ctx ends or an fsync
// fails, everything is discarded, as Commit does. Syncing after Commit or
// Discard returns [ErrDone].
func (r *Result) Sync(ctx context.Context) error { return r.stage.sync(ctx) }

// Discard removes every staged file and any directory staging created. It is
// idempotent.
func (r *Result) Discard() { r.stage.discard() }
