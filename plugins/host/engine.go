package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/slipstreamkv/slipstream/plugins/abi"
)

// Engine compiles and runs plugins. It owns the compilation cache shared by
// every [Plugin] it loads. It is safe for concurrent use.
type Engine struct {
	cache  wazero.CompilationCache
	ledger *cacheLedger // nil without a cache directory
	logger *slog.Logger

	// digests records module files' digests; nil without a cache directory.
	digests *moduleDigests

	// interrupt is wazero's CloseOnContextDone. Only benchmarks turn it off,
	// to measure what it costs.
	interrupt bool

	// owed holds the directories commits could not fsync (owed.go).
	owed *owedDirs

	mu      sync.Mutex
	plugins map[*Plugin]struct{}
	closed  bool
}

// New returns an engine. With cfg.CacheDir set, compiled code is cached in
// that directory (created if missing) and reused by later processes, once
// checked against the engine's record of it (see [Config.CacheDir]).
func New(ctx context.Context, cfg Config) (*Engine, error) {
	e := &Engine{logger: cfg.Logger, interrupt: true, owed: newOwedDirs(), plugins: map[*Plugin]struct{}{}}
	if e.logger == nil {
		e.logger = slog.New(slog.DiscardHandler)
	}
	if cfg.CacheDir == "" {
		e.cache = wazero.NewCompilationCache()
		return e, nil
	}
	c, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
	if err != nil {
		return nil, fmt.Errorf("host: compilation cache: %w", err)
	}
	e.cache = c
	e.ledger = &cacheLedger{dir: cfg.CacheDir, logger: e.logger}
	e.digests = &moduleDigests{path: filepath.Join(cfg.CacheDir, digestsName)}
	return e, nil
}

// Load compiles wasm into a plugin: it checks the configuration's keys
// (none may hold a NUL byte) and the sha256 pin, if any, then
// compiles (or loads from the cache; an unpinned module is hashed
// meanwhile), checks the module's exports and imports against ABI version
// 1, and instantiates it once to check the version it declares. A module
// that fails its pin is neither compiled nor run. Errors wrap
// [ErrChecksum], [ErrInvalidModule] or [ErrABI].
func (e *Engine) Load(ctx context.Context, wasm []byte, cfg PluginConfig) (*Plugin, error) {
	cfg = cfg.withDefaults()
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	for k := range cfg.Config {
		if err := abi.CheckConfigKey(k); err != nil {
			return nil, fmt.Errorf("host: plugin %q: %w", cfg.Name, err)
		}
	}
	digest := make(chan string, 1)
	if pin := cfg.SHA256; pin != "" {
		// A pinned module is checked before any of it is compiled: bytes
		// that fail their pin never reach the compiler or its cache.
		d := moduleSHA256(wasm)
		if !strings.EqualFold(pin, d) {
			return nil, fmt.Errorf("%w: plugin %q: module sha256 is %s, pinned %s", ErrChecksum, cfg.Name, d, pin)
		}
		digest <- d
	} else {
		// The compile does not need the digest: hashing beside it takes
		// the hash off a cold start's way to its first render.
		go func() { digest <- moduleSHA256(wasm) }()
	}
	rcfg := wazero.NewRuntimeConfigCompiler().
		WithCloseOnContextDone(e.interrupt).
		WithMemoryLimitPages(cfg.memoryPages()).
		WithCompilationCache(e.cache)
	r := wazero.NewRuntimeWithConfig(ctx, rcfg)
	logger := cfg.Logger
	if logger == nil {
		logger = e.logger
	}
	p := &Plugin{engine: e, cfg: cfg, runtime: r, logger: logger.With(slog.String("plugin", cfg.Name)), configKeys: abi.AppendConfigKeys(nil, cfg.Config)}
	if err := p.init(ctx, wasm, digest); err != nil {
		_ = r.Close(ctx)
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		_ = r.Close(ctx)
		return nil, ErrClosed
	}
	e.plugins[p] = struct{}{}
	return p, nil
}

// init compiles wasm, learns its digest from digest meanwhile, checks the
// ABI, and instantiates the module once.
func (p *Plugin) init(ctx context.Context, wasm []byte, digest <-chan string) error {
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, p.runtime); err != nil {
		<-digest
		return fmt.Errorf("host: instantiate WASI: %w", err)
	}
	if err := instantiateHostModule(ctx, p.runtime); err != nil {
		<-digest
		return fmt.Errorf("host: instantiate host module: %w", err)
	}
	compile := func() (string, error) {
		cm, err := p.runtime.CompileModule(ctx, wasm)
		p.compiled, p.digest = cm, <-digest
		return p.digest, err
	}
	var err error
	if l := p.engine.ledger; l != nil {
		err = l.compile(compile)
	} else {
		_, err = compile()
	}
	if err != nil {
		return fmt.Errorf("%w: plugin %q: %v", ErrInvalidModule, p.cfg.Name, err)
	}
	if err := checkModule(p.compiled); err != nil {
		return fmt.Errorf("%w: plugin %q: %v", ErrABI, p.cfg.Name, err)
	}
	// Instantiate once so a wrong ABI version or a crashing initializer is a
	// load error, not a failure of the first batch; the first NewInstance
	// adopts the instance.
	inst := &Instance{plugin: p, logger: p.logger, sink: newLogSink(p.logger, p.cfg.Limits, timeNow)}
	if err := inst.instantiate(ctx); err != nil {
		return err
	}
	p.spare = inst
	return nil
}

func (e *Engine) forget(p *Plugin) {
	e.mu.Lock()
	delete(e.plugins, p)
	e.mu.Unlock()
}

// Close closes every plugin the engine loaded, then the compilation cache.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	plugins := make([]*Plugin, 0, len(e.plugins))
	for p := range e.plugins {
		plugins = append(plugins, p)
	}
	e.mu.Unlock()
	var errs []error
	for _, p := range plugins {
		errs = append(errs, p.Close(ctx))
	}
	errs = append(errs, e.cache.Close(ctx))
	return errors.Join(errs...)
}

// moduleSHA256 is the hex sha256 of a module's bytes, as pins give it.
func moduleSHA256(wasm []byte) string {
	sum := sha256.Sum256(wasm)
	return hex.EncodeToString(sum[:])
}
