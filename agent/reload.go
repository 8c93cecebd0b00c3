package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
)

// ErrReloadNeedsRestart is returned by Reload when the new configuration
// changes what a running agent cannot change in place: data_dir, cache_dir,
// the nats block, the http block or the report block. Serve then restarts
// the whole agent.
var ErrReloadNeedsRestart = errors.New("agent: the new configuration changes data_dir, cache_dir, nats, http or report: restarting the agent")

// reloadRequest is a Reload handed to Run's goroutine, which owns the watches.
type reloadRequest struct {
	cfg   *Config
	reply chan error
}

// reloadRecord is what /status and the metrics say about reloads.
type reloadRecord struct {
	mu       sync.Mutex
	finished uint64 // reloads attempted (applied or refused)
	status   ReloadStatus
}

// ReloadStatus describes the configuration reloads of a running agent.
type ReloadStatus struct {
	// Reloads and Failures count reloads applied and refused.
	Reloads  uint64 `json:"reloads"`
	Failures uint64 `json:"failures"`
	// LastError is why the latest reload was refused; empty once one was
	// applied after it.
	LastError string    `json:"last_error,omitempty"`
	LastAt    time.Time `json:"last_at,omitzero"`
	// Restarted, Added, Removed and Kept name the watches of the latest
	// reload applied.
	Restarted []string `json:"restarted,omitempty"`
	Added     []string `json:"added,omitempty"`
	Removed   []string `json:"removed,omitempty"`
	Kept      []string `json:"kept,omitempty"`
}

// ReloadStatus returns what the agent's reloads did so far.
func (a *Agent) ReloadStatus() ReloadStatus {
	a.reload.mu.Lock()
	defer a.reload.mu.Unlock()
	st := a.reload.status
	return st
}

// reloadFinished records a reload that Run took: applied (a nil err, with
// what it changed) or refused. Either way systemd gets READY=1 again once
// the watches settle (see report), after Serve's RELOADING=1.
func (a *Agent) reloadFinished(err error, changes ReloadStatus) {
	a.reload.mu.Lock()
	a.reload.finished++
	a.reload.mu.Unlock()
	a.recordReload(err, changes)
	select {
	case a.changed <- struct{}{}:
	default:
	}
}

// recordReload counts a reload applied or refused (also a configuration
// that does not load, which never reaches Run) for /status and the metrics.
func (a *Agent) recordReload(err error, changes ReloadStatus) {
	a.reload.mu.Lock()
	st := &a.reload.status
	st.LastAt = time.Now()
	if err != nil {
		st.Failures++
		st.LastError = err.Error()
	} else {
		st.Reloads++
		st.LastError = ""
		st.Restarted, st.Added, st.Removed, st.Kept = changes.Restarted, changes.Added, changes.Removed, changes.Kept
	}
	a.reload.mu.Unlock()
	a.metrics.reloaded(err)
}

// continueReloads makes a new agent that replaces another (Serve) go on
// from its reload record: /status and slipagent_reloads_total count the
// reloads across the agents Serve runs.
func (a *Agent) continueReloads(st ReloadStatus) {
	a.reload.mu.Lock()
	a.reload.status = st
	a.reload.mu.Unlock()
	a.metrics.reloads.WithLabelValues("ok").Add(float64(st.Reloads))
	a.metrics.reloads.WithLabelValues("error").Add(float64(st.Failures))
}

// watchNames names cfg's watches.
func watchNames(cfg *Config) []string {
	names := make([]string, 0, len(cfg.Watches))
	for _, w := range cfg.Watches {
		names = append(names, w.Name)
	}
	return names
}

// reloadsFinished counts reload attempts, for report.
func (a *Agent) reloadsFinished() uint64 {
	a.reload.mu.Lock()
	defer a.reload.mu.Unlock()
	return a.reload.finished
}

// RefusedError is Reload's error when it refused the new configuration: the
// running one stays. Err says why; it is what /status shows as the reload's
// last_error.
type RefusedError struct{ Err error }

func (e *RefusedError) Error() string {
	return "agent: reload refused, the running configuration stays: " + e.Err.Error()
}

func (e *RefusedError) Unwrap() error { return e.Err }

// Reload switches the running agent to cfg, touching only what changed. It
// first runs the trust checks on cfg (as CheckTrust; a *TrustError refuses
// the reload), reads its NATS TLS files and credentials (as CheckTLS and
// CheckCreds; ones that cannot be used refuse the reload), re-reads the http token_file (a rotated token
// replaces the running one once the reload is applied; a file that cannot
// be read refuses the reload), then compiles every plugin module cfg names whose file or settings
// changed; if one fails, nothing is torn down and the error is returned
// (and counted in slipagent_reloads_total and /status). Then it stops the
// watches cfg removes or changes (their settings, their plugin's settings
// or its module's sha256), starts the changed and new ones, and leaves the
// others running with their fold and plugin instance. It returns
// ErrReloadNeedsRestart, having changed nothing, when cfg changes settings
// that need a new agent, and a *[RefusedError] when it refused cfg. Reload
// waits for Run to take the request; it is safe to call from any goroutine
// while Run runs.
func (a *Agent) Reload(ctx context.Context, cfg *Config) error {
	req := reloadRequest{cfg: cfg, reply: make(chan error, 1)}
	select {
	case a.reloads <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-a.stopped:
		return errors.New("agent: reload: the agent is not running")
	}
	return <-req.reply
}

// applyReload runs a reload on Run's goroutine; wg is Run's, which the new
// watches join.
func (a *Agent) applyReload(ctx context.Context, wg *sync.WaitGroup, cfg *Config) error {
	refuse := func(err error) error {
		a.reloadFinished(err, ReloadStatus{})
		return &RefusedError{Err: err}
	}
	if err := a.checkTrust(cfg); err != nil {
		return refuse(err)
	}
	if a.ownConn {
		if err := checkNATSTLS(cfg.NATS.TLS); err != nil {
			return refuse(err)
		}
		// The connection reads the credentials at its next (re)connect:
		// a file rewritten in place must work before the reload is taken.
		if err := checkNATSCreds(cfg.NATS); err != nil {
			return refuse(err)
		}
	}
	// The token is re-read, so a rotated one takes effect. A token or TLS
	// file that cannot be read is refused here, before anything stops: the
	// agent that a changed http block starts (or the next start) could not
	// serve.
	token, err := checkHTTP(cfg)
	if err != nil {
		return refuse(err)
	}
	// Every module loads before anything stops, a reload that restarts the
	// whole agent too: that one would stop the running agent for one whose
	// watches cannot start.
	plugins, replaced, err := a.preparePlugins(ctx, cfg)
	if err != nil {
		return refuse(err)
	}
	if !sameSettings(a.cfg, cfg) {
		for name := range replaced {
			if slot := plugins[name]; slot != nil { // compiled here; the new agent compiles its own
				closeModule(ctx, slot.plugin)
			}
		}
		return ErrReloadNeedsRestart // a restart, not a refusal: not counted
	}

	old := map[string]*watchRunner{}
	for _, w := range a.runners() {
		old[w.conf.Name] = w
	}
	var changes ReloadStatus
	var stopping []*watchRunner
	next := make([]*watchRunner, 0, len(cfg.Watches))
	for _, wc := range cfg.Watches {
		w, ok := old[wc.Name]
		delete(old, wc.Name)
		switch {
		case !ok:
			changes.Added = append(changes.Added, wc.Name)
		case sameWatch(w.conf, wc) && !replaced[wc.Plugin]:
			changes.Kept = append(changes.Kept, wc.Name)
			next = append(next, w)
			continue
		default:
			changes.Restarted = append(changes.Restarted, wc.Name)
			stopping = append(stopping, w)
		}
		next = append(next, nil) // created once the old one stopped
	}
	for name, w := range old {
		changes.Removed = append(changes.Removed, name)
		stopping = append(stopping, w)
	}
	for _, w := range stopping {
		w.cancel()
	}
	for _, w := range stopping {
		<-w.done
	}
	for _, name := range changes.Removed {
		a.metrics.watchRemoved(name)
	}

	a.mu.Lock()
	a.cfg = cfg
	previous := a.plugins
	a.plugins = plugins
	for i, wc := range cfg.Watches {
		if next[i] == nil {
			next[i] = newWatchRunner(a, wc)
		}
	}
	a.watches = next
	a.mu.Unlock()
	for name := range replaced {
		if slot := previous[name]; slot != nil {
			closeModule(ctx, slot.plugin)
		}
	}
	for _, w := range next {
		if w.done == nil {
			w.start(ctx, wg)
		}
	}
	if token != "" && a.auth != nil {
		a.auth.setToken(token)
	}
	a.log.Info("configuration reloaded", "restarted", changes.Restarted, "added", changes.Added, "removed", changes.Removed, "kept", changes.Kept)
	for _, dir := range abandonedOutputs(stopping, cfg) {
		a.log.Warn("an output directory left by the reload stays as it is: no watch manages its files any more (remove them by hand if they should go)", "dir", dir)
	}
	a.reloadFinished(nil, changes)
	return nil
}

// abandonedOutputs lists the output directories of the stopped watches
// that no watch of cfg writes to.
func abandonedOutputs(stopped []*watchRunner, cfg *Config) []string {
	kept := map[string]bool{}
	for _, wc := range cfg.Watches {
		for _, o := range wc.Outputs {
			kept[o.Dir] = true
		}
	}
	var dirs []string
	for _, w := range stopped {
		for _, o := range w.conf.Outputs {
			if !kept[o.Dir] && !slices.Contains(dirs, o.Dir) {
				dirs = append(dirs, o.Dir)
			}
		}
	}
	slices.Sort(dirs)
	return dirs
}

// config is the configuration a runs: New's, or the latest one a reload
// applied in place.
func (a *Agent) config() *Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cfg
}

// preparePlugins loads every plugin of cfg before anything is stopped: an
// unchanged plugin (same settings, same module sha256) keeps its slot, any
// other is compiled now. It returns the new slots and the names whose slot
// is replaced (their watches restart). On error, what it compiled is closed.
func (a *Agent) preparePlugins(ctx context.Context, cfg *Config) (map[string]*pluginSlot, map[string]bool, error) {
	oldConf := map[string]*PluginConf{}
	for _, p := range a.cfg.Plugins {
		oldConf[p.Name] = p
	}
	a.mu.Lock()
	oldSlots := a.plugins
	a.mu.Unlock()
	slots := map[string]*pluginSlot{}
	replaced := map[string]bool{}
	fail := func(err error) (map[string]*pluginSlot, map[string]bool, error) {
		for name := range replaced {
			closeModule(ctx, slots[name].plugin)
		}
		return nil, nil, err
	}
	for _, p := range cfg.Plugins {
		if slot := oldSlots[p.Name]; slot != nil && oldConf[p.Name] != nil && sameConf(oldConf[p.Name], p) {
			slot.mu.Lock()
			loaded := slot.plugin
			slot.mu.Unlock()
			digest, err := fileDigest(p.Module)
			if err != nil {
				return fail(fmt.Errorf("plugin %s: %w", p.Name, err))
			}
			if loaded != nil && loaded.SHA256() == digest {
				slots[p.Name] = slot
				continue
			}
		}
		m, err := a.compile(ctx, p)
		if err != nil {
			return fail(err)
		}
		slots[p.Name] = &pluginSlot{plugin: m}
		replaced[p.Name] = true
	}
	for name := range oldSlots {
		if slots[name] == nil {
			replaced[name] = true // dropped: its watches are gone or changed
		}
	}
	return slots, replaced, nil
}

// start runs the watch in wg until ctx ends or stop is called.
func (r *watchRunner) start(ctx context.Context, wg *sync.WaitGroup) {
	ctx, r.cancel = context.WithCancel(ctx)
	r.done = make(chan struct{})
	wg.Go(func() {
		defer close(r.done)
		r.run(ctx)
	})
}

// closeModule closes a compiled plugin no watch uses any more.
func closeModule(ctx context.Context, m module) {
	if wm, ok := m.(wasmModule); ok {
		_ = wm.p.Close(context.WithoutCancel(ctx))
	}
}

// fileDigest is the hex sha256 of a file, as host.Plugin.SHA256 gives it.
func fileDigest(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// sameSettings reports whether two configurations agree on what a running
// agent cannot change in place.
func sameSettings(a, b *Config) bool {
	return a.DataDir == b.DataDir && a.CacheDir == b.CacheDir &&
		sameConf(a.NATS, b.NATS) && sameConf(a.HTTP, b.HTTP) &&
		sameConf(a.Report, b.Report)
}

// sameWatch reports whether a watch's settings are unchanged.
func sameWatch(a, b *WatchConf) bool { return sameConf(a, b) }

// sameConf compares two configuration blocks by their settings: source
// positions (the *Range fields) do not count, and a plugin's config is
// compared through ConfigMap.
func sameConf(a, b any) bool {
	ja, errA := confJSON(a)
	jb, errB := confJSON(b)
	return errA == nil && errB == nil && reflect.DeepEqual(ja, jb)
}

// confJSON is a configuration block as generic JSON without its source
// positions and raw cty values.
func confJSON(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return stripPositions(out), nil
}

func stripPositions(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if strings.HasSuffix(k, "Range") || k == "Config" {
				delete(v, k)
				continue
			}
			v[k] = stripPositions(e)
		}
	case []any:
		for i, e := range v {
			v[i] = stripPositions(e)
		}
	}
	return v
}
