package host

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/slipstreamkv/slipstream/plugins/abi"
)

// Inspection describes a module as a plugin author or an operator pinning
// it needs to see it. A module that fails the ABI checks is still
// described: Problem says why it would not load.
type Inspection struct {
	Size   int    // bytes
	SHA256 string // hex, what PluginConfig.SHA256 pins
	// ABIVersion is what the module's slipstream_abi_version returned, or 0
	// when it could not be called (see Problem).
	ABIVersion int32
	// Problem is why [Engine.Load] would refuse the module ("" when it
	// would load with the default configuration).
	Problem string
	// Exports and Imports are the module's functions, sorted by module and
	// name.
	Exports []FunctionInfo
	Imports []FunctionInfo
	// Memory is the exported linear memory; nil when there is none.
	Memory *MemoryInfo
}

// FunctionInfo is one exported or imported function.
type FunctionInfo struct {
	Module    string `json:"module,omitempty"` // the import's module; "" for an export
	Name      string `json:"name"`
	Signature string `json:"signature"` // "name(i32, i32) -> i64"
}

// MemoryInfo is the declared size of a linear memory, in 64 KiB pages.
type MemoryInfo struct {
	MinPages uint32
	MaxPages uint32 // meaningful when HasMax
	HasMax   bool
}

// PageSize is the size of a WebAssembly memory page in bytes.
const PageSize = pageSize

// Inspect compiles wasm with a throwaway runtime and describes it. When the
// module passes the export and import checks it is also instantiated once
// (with the default limits, an empty configuration and no outputs) to read
// the ABI version it declares. Only a module that does not compile is an
// error, wrapping [ErrInvalidModule].
func Inspect(ctx context.Context, wasm []byte) (*Inspection, error) {
	in := &Inspection{Size: len(wasm), SHA256: moduleSHA256(wasm)}
	cfg := PluginConfig{Name: "inspect"}.withDefaults()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().
		WithCloseOnContextDone(true).
		WithMemoryLimitPages(cfg.memoryPages()))
	defer r.Close(context.WithoutCancel(ctx))
	cm, err := r.CompileModule(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidModule, err)
	}
	for name, def := range cm.ExportedFunctions() {
		in.Exports = append(in.Exports, FunctionInfo{Name: name, Signature: signatureOf(name, def).String()})
	}
	for _, def := range cm.ImportedFunctions() {
		mod, name, _ := def.Import()
		in.Imports = append(in.Imports, FunctionInfo{Module: mod, Name: name, Signature: signatureOf(name, def).String()})
	}
	byName := func(a, b FunctionInfo) int {
		return cmp.Or(cmp.Compare(a.Module, b.Module), cmp.Compare(a.Name, b.Name))
	}
	slices.SortFunc(in.Exports, byName)
	slices.SortFunc(in.Imports, byName)
	if m, ok := cm.ExportedMemories()[abi.ExportMemory]; ok {
		in.Memory = &MemoryInfo{MinPages: m.Min()}
		in.Memory.MaxPages, in.Memory.HasMax = m.Max()
	}
	if err := checkModule(cm); err != nil {
		in.Problem = err.Error()
		return in, nil
	}
	in.ABIVersion, err = declaredVersion(ctx, r, cm, cfg)
	switch {
	case err != nil:
		in.Problem = err.Error()
	case in.ABIVersion != abi.Version:
		in.Problem = fmt.Sprintf("the module declares ABI version %d; this host speaks version %d", in.ABIVersion, abi.Version)
	}
	return in, nil
}

// declaredVersion instantiates cm as Engine.Load does and returns what its
// slipstream_abi_version returns.
func declaredVersion(ctx context.Context, r wazero.Runtime, cm wazero.CompiledModule, cfg PluginConfig) (int32, error) {
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, r); err != nil {
		return 0, fmt.Errorf("host: instantiate WASI: %w", err)
	}
	if err := instantiateHostModule(ctx, r); err != nil {
		return 0, fmt.Errorf("host: instantiate host module: %w", err)
	}
	logger := slog.New(slog.DiscardHandler)
	p := &Plugin{cfg: cfg, runtime: r, compiled: cm, logger: logger}
	inst := &Instance{plugin: p, logger: logger, sink: newLogSink(logger, cfg.Limits, timeNow)}
	cctx, cancel := context.WithTimeout(withCall(ctx, &call{inst: inst}), cfg.Timeout)
	defer cancel()
	mod, err := r.InstantiateModule(cctx, cm, wazero.NewModuleConfig().WithName("").WithStartFunctions(abi.ExportInitialize))
	if err != nil {
		return 0, fmt.Errorf("instantiate: %s", firstLine(err))
	}
	defer mod.Close(context.WithoutCancel(ctx))
	res, err := mod.ExportedFunction(abi.ExportABIVersion).Call(cctx)
	if err != nil {
		return 0, fmt.Errorf("%s: %s", abi.ExportABIVersion, firstLine(err))
	}
	return int32(res[0]), nil
}

// firstLine drops wazero's wasm stack trace from an error.
func firstLine(err error) string {
	first, _, _ := strings.Cut(err.Error(), "\n")
	return first
}
