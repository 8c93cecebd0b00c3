package host

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/slipstreamkv/slipstream/plugins/abi"
)

// timeNow is the log rate limiter's clock.
var timeNow = time.Now

// Plugin is a compiled module with its own wazero runtime (which carries the
// plugin's memory limit). It is safe for concurrent use.
type Plugin struct {
	engine   *Engine
	cfg      PluginConfig
	digest   string
	runtime  wazero.Runtime
	compiled wazero.CompiledModule
	logger   *slog.Logger
	// configKeys is what config_keys answers, encoded once at Load.
	configKeys []byte

	// spare is the instance Load created to check the module (its ABI
	// version, its initializer): the first NewInstance adopts it rather
	// than instantiating the module again. Guarded by spareMu.
	spareMu sync.Mutex
	spare   *Instance

	closeOnce sync.Once
	closeErr  error
}

// Name is the plugin's configured name.
func (p *Plugin) Name() string { return p.cfg.Name }

// SHA256 is the hex sha256 of the module.
func (p *Plugin) SHA256() string { return p.digest }

// Close closes the plugin's runtime and with it every instance.
func (p *Plugin) Close(ctx context.Context) error {
	p.closeOnce.Do(func() {
		p.engine.forget(p)
		p.closeErr = p.runtime.Close(ctx)
	})
	return p.closeErr
}

// NewInstance creates the instance a watch uses for its whole life and
// instantiates the guest. Output directories must exist. Its errors are
// *[CallError]s, which name the plugin and the watch.
func (p *Plugin) NewInstance(ctx context.Context, cfg InstanceConfig) (*Instance, error) {
	cfg, err := cfg.normalize()
	if err == nil {
		err = cfg.checkOutputDirs()
	}
	if err != nil {
		return nil, &CallError{Plugin: p.cfg.Name, Watch: cfg.Watch, Call: "instantiate", Err: err}
	}
	logger := p.logger.With(slog.String("watch", cfg.Watch))
	sink := newLogSink(logger, p.cfg.Limits, timeNow)
	sink.onLog = cfg.OnLog
	if i := p.takeSpare(); i != nil {
		i.cfg, i.logger, i.sink = cfg, logger, sink
		i.stdout.sink, i.stderr.sink = sink, sink
		return i, nil
	}
	i := &Instance{plugin: p, cfg: cfg, logger: logger, sink: sink}
	if err := i.instantiate(ctx); err != nil {
		return nil, err
	}
	return i, nil
}

// takeSpare returns the instance Load created, once.
func (p *Plugin) takeSpare() *Instance {
	p.spareMu.Lock()
	defer p.spareMu.Unlock()
	i := p.spare
	p.spare = nil
	return i
}

// checkModule checks a compiled module against ABI version 1 and lists every
// problem it finds.
func checkModule(cm wazero.CompiledModule) error {
	var problems []string
	exports := cm.ExportedFunctions()
	for _, want := range abi.GuestExports() {
		def, ok := exports[want.Name]
		if !ok {
			problems = append(problems, "missing export "+want.Name)
			continue
		}
		if got := signatureOf(want.Name, def); got.String() != want.String() {
			problems = append(problems, fmt.Sprintf("export %s, want %s", got, want))
		}
	}
	if _, ok := cm.ExportedMemories()[abi.ExportMemory]; !ok {
		problems = append(problems, "missing export "+abi.ExportMemory+" (the module must define and export its memory)")
	}
	for _, m := range cm.ImportedMemories() {
		mod, name, _ := m.Import()
		problems = append(problems, fmt.Sprintf("imports memory %s.%s; a plugin must define its own", mod, name))
	}
	hostSigs := map[string]abi.Signature{}
	for _, s := range abi.HostFunctions() {
		hostSigs[s.Name] = s
	}
	for _, f := range cm.ImportedFunctions() {
		mod, name, _ := f.Import()
		switch mod {
		case abi.ImportModule:
			want, ok := hostSigs[name]
			if !ok {
				problems = append(problems, fmt.Sprintf("imports %s.%s, which ABI version %d does not define", mod, name, abi.Version))
			} else if got := signatureOf(name, f); got.String() != want.String() {
				problems = append(problems, fmt.Sprintf("imports %s.%s, want %s.%s", mod, got, mod, want))
			}
		case "wasi_snapshot_preview1":
			// wazero provides all of WASI preview1 (without file system,
			// network, environment or arguments) and checks the names itself.
		default:
			problems = append(problems, fmt.Sprintf("imports %s.%s; only %s and wasi_snapshot_preview1 are provided", mod, name, abi.ImportModule))
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return fmt.Errorf("%s", strings.Join(slices.Compact(problems), "; "))
	}
	return nil
}

func signatureOf(name string, def api.FunctionDefinition) abi.Signature {
	s := abi.Signature{Name: name}
	for _, t := range def.ParamTypes() {
		s.Params = append(s.Params, abi.ValueType(t))
	}
	for _, t := range def.ResultTypes() {
		s.Results = append(s.Results, abi.ValueType(t))
	}
	return s
}
