package agent

import (
	"context"
	"fmt"
	"sync"

	"github.com/slipstreamkv/slipstream/plugins/host"
)

// pendingInstance is a watch session's plugin instance while its module
// loads in the background: a session needs the module only for its first
// plugin call, so opening the fold, attaching to the bucket and syncing it
// overlap the compile (or the compile cache's load), and a restart that
// finds its fold up to date is ready without waiting for it.
//
// The session's render key is taken from the module's digest before the
// load (digest); a load that fails, or that loads another module (the file
// was replaced meanwhile), cancels the session with that error, which then
// starts over like any failed session.
type pendingInstance struct {
	cfg host.InstanceConfig
	// loaded is closed once the load finished; mod and err are its outcome.
	loaded chan struct{}
	mod    module
	err    error

	mu   sync.Mutex // the drift check and the loop's apply both call it
	inst instance
}

// loadInBackground starts loading the watch's plugin, whose digest the
// session's render key names. A failure cancels the session through cancel.
func (r *watchRunner) loadInBackground(ctx context.Context, digest string, cancel context.CancelCauseFunc, cfg host.InstanceConfig) *pendingInstance {
	p := &pendingInstance{cfg: cfg, loaded: make(chan struct{})}
	go func() {
		defer close(p.loaded)
		p.mod, p.err = r.a.load(ctx, r.plugin)
		if p.err == nil && p.mod.SHA256() != digest {
			p.err = fmt.Errorf("plugin %s: module %s was replaced while the watch started (sha256 %s, then %s); starting over", r.plugin.Name, r.plugin.Module, digest, p.mod.SHA256())
		}
		if p.err != nil {
			cancel(p.err)
		}
	}()
	return p
}

// wait waits for the load to finish (it does not stop it: the agent
// keeps a loaded module for the watches that share it).
func (p *pendingInstance) wait() { <-p.loaded }

// get returns the instance, waiting for the module and creating the
// instance on the first call.
func (p *pendingInstance) get(ctx context.Context) (instance, error) {
	select {
	case <-p.loaded:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if p.err != nil {
		return nil, p.err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inst == nil {
		inst, err := p.mod.NewInstance(ctx, p.cfg)
		if err != nil {
			return nil, err
		}
		p.inst = inst
	}
	return p.inst, nil
}

func (p *pendingInstance) Apply(ctx context.Context, b host.Batch, v host.View) (result, error) {
	inst, err := p.get(ctx)
	if err != nil {
		return nil, err
	}
	return inst.Apply(ctx, b, v)
}

func (p *pendingInstance) Render(ctx context.Context, c host.Cursor, v host.View) (result, error) {
	inst, err := p.get(ctx)
	if err != nil {
		return nil, err
	}
	return inst.Render(ctx, c, v)
}

// Close waits for the load and closes the instance if one was created.
func (p *pendingInstance) Close(ctx context.Context) error {
	p.wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inst == nil {
		return nil
	}
	return p.inst.Close(ctx)
}
