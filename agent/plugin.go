package agent

import (
	"context"

	"github.com/slipstreamkv/slipstream/plugins/host"
)

// module is a loaded plugin as a watch uses it. The agent's modules are
// WebAssembly plugins run by the host package (wasmModule); the seam exists
// so that the simulator (sim_test.go) can drive the watch's apply, commit and
// checkpoint code with a native stand-in and fault injection.
type module interface {
	// SHA256 identifies the module's code (part of the render key).
	SHA256() string
	// NewInstance prepares an instance for one watch session.
	NewInstance(ctx context.Context, cfg host.InstanceConfig) (instance, error)
}

// instance runs plugin calls for one watch, one call at a time.
type instance interface {
	Apply(ctx context.Context, b host.Batch, v host.View) (result, error)
	Render(ctx context.Context, cursor host.Cursor, v host.View) (result, error)
	Close(ctx context.Context) error
}

// result is what a successful call staged; see host.Result.
type result interface {
	Hooks() []string
	Staged() []host.StagedFile
	Kept() []host.KeptFile
	Changed() bool
	Sync(ctx context.Context) error
	Commit(ctx context.Context) error
	Discard()
}

// wasmModule adapts a host.Plugin to module.
type wasmModule struct{ p *host.Plugin }

func (m wasmModule) SHA256() string { return m.p.SHA256() }

func (m wasmModule) NewInstance(ctx context.Context, cfg host.InstanceConfig) (instance, error) {
	inst, err := m.p.NewInstance(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return wasmInstance{inst}, nil
}

// wasmInstance adapts a host.Instance to instance.
type wasmInstance struct{ i *host.Instance }

func (w wasmInstance) Apply(ctx context.Context, b host.Batch, v host.View) (result, error) {
	return nilResult(w.i.Apply(ctx, b, v))
}

func (w wasmInstance) Render(ctx context.Context, c host.Cursor, v host.View) (result, error) {
	return nilResult(w.i.Render(ctx, c, v))
}

func (w wasmInstance) Close(ctx context.Context) error { return w.i.Close(ctx) }

// nilResult keeps a nil *host.Result from becoming a non-nil interface.
func nilResult(r *host.Result, err error) (result, error) {
	if err != nil {
		return nil, err
	}
	return r, nil
}
