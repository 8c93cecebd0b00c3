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
// The session's render key is taken from the module's digest, read (while
// the session opens its fold) apart from the load, which does not wait for
// it: a session that owes a full render starts loading at once. A digest
// or load that fails, or a load that finds another module than the digest
// named (the file was replaced meanwhile), cancels the session with that
// error, which then starts over like any failed session.
type pendingInstance struct {
	cfg host.InstanceConfig
	// digested is closed once digest (the module's sha256) or digestErr
	// is set.
	digested  chan struct{}
	digest    string
	digestErr error
	// start is closed (once, by begin) when the load may start: at once
	// when the session owes a full render, else once the loop caught up
	// or a plugin call needs it, so a restart over an up-to-date fold
	// does not share the CPU with the load on its way to READY.
	start     chan struct{}
	startOnce sync.Once
	// loaded is closed once the load finished; mod and err are its outcome.
	loaded chan struct{}
	mod    module
	err    error

	mu   sync.Mutex // the drift check and the loop's apply both call it
	inst instance
}

// loadInBackground reads the digest of the watch's plugin module and, once
// begun, loads it. A failure of either cancels the session through cancel.
func (r *watchRunner) loadInBackground(ctx context.Context, cancel context.CancelCauseFunc, cfg host.InstanceConfig) *pendingInstance {
	p := &pendingInstance{cfg: cfg, digested: make(chan struct{}), start: make(chan struct{}), loaded: make(chan struct{})}
	go func() {
		defer close(p.digested)
		p.digest, p.digestErr = r.a.digest(r.plugin)
		if p.digestErr != nil {
			p.digestErr = fmt.Errorf("plugin %s: module %s: %w", r.plugin.Name, r.plugin.Module, p.digestErr)
			cancel(p.digestErr)
		}
	}()
	go func() {
		defer close(p.loaded)
		defer cancelOnError(cancel, &p.err)
		select {
		case <-p.start:
		case <-ctx.Done():
			p.err = ctx.Err()
			return
		}
		p.mod, p.err = r.a.load(ctx, r.plugin)
		if p.err != nil {
			return
		}
		<-p.digested
		if p.digestErr == nil && p.mod.SHA256() != p.digest {
			p.err = fmt.Errorf("plugin %s: module %s was replaced while the watch started (sha256 %s, then %s); starting over", r.plugin.Name, r.plugin.Module, p.digest, p.mod.SHA256())
			return
		}
		r.status.loaded()
	}()
	return p
}

// loadError is a session's end because its plugin did not load (its
// digest could not be read, it failed to compile or to instantiate, or the
// file was replaced meanwhile): the watch stays failing across the next
// session's start, until a load succeeds.
type loadError struct{ err error }

func (e *loadError) Error() string { return e.err.Error() }
func (e *loadError) Unwrap() error { return e.err }

// cancelOnError cancels with *err when it is set.
func cancelOnError(cancel context.CancelCauseFunc, err *error) {
	if *err != nil {
		cancel(*err)
	}
}

// begin lets the load start.
func (p *pendingInstance) begin() { p.startOnce.Do(func() { close(p.start) }) }

// moduleDigest waits for the module's sha256.
func (p *pendingInstance) moduleDigest(ctx context.Context) (string, error) {
	select {
	case <-p.digested:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return p.digest, p.digestErr
}

// wait waits for the load to finish (it does not stop it: the agent
// keeps a loaded module for the watches that share it).
func (p *pendingInstance) wait() { <-p.loaded }

// get returns the instance, waiting for the module and creating the
// instance on the first call.
func (p *pendingInstance) get(ctx context.Context) (instance, error) {
	p.begin()
	select {
	case <-p.loaded:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if p.err != nil {
		return nil, p.err
	}
	if p.digestErr != nil { // the load waited for the digest
		return nil, p.digestErr
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

// Close waits for the digest and the load (or for the session's ctx to end
// one that did not start) and closes the instance if one was created.
func (p *pendingInstance) Close(ctx context.Context) error {
	<-p.digested
	p.wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inst == nil {
		return nil
	}
	return p.inst.Close(ctx)
}
