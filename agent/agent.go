package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/kvcore/natskv"
	"github.com/slipstreamkv/slipstream/plugins/host"
)

// Options are the agent's dependencies that do not come from the
// configuration. The zero value is valid.
type Options struct {
	// Logger receives the agent's logs (default slog.Default()).
	Logger *slog.Logger
	// Conn, when set, is the KV connection to use instead of dialing
	// Config.NATS (dev mode and tests). The agent connects it but does not
	// close it.
	Conn kvcore.Conn
	// Notify sends a systemd notification such as "READY=1". Default:
	// sd_notify to $NOTIFY_SOCKET, a no-op when it is unset.
	Notify func(state string) error
	// PluginCacheDir overrides where compiled plugins are cached (default:
	// the configuration's cache_dir).
	PluginCacheDir string
	// Version is the agent's version, as fleet reports name it.
	Version string
}

// Agent runs every watch of a configuration. Create it with New and run it
// with Run; Status and Handler are safe to call while it runs.
type Agent struct {
	cfg      *Config
	log      *slog.Logger
	notify   func(string) error
	cacheDir string
	conn     kvcore.Conn
	ownConn  bool
	// reportConn is the connection of a report bucket in another
	// JetStream domain (report { domain }), which the fleet reporter
	// connects, uses and closes; nil: reports go through conn.
	reportConn kvcore.Conn
	metrics    *metrics
	watches    []*watchRunner
	hooks      *hookScheduler // replaced by Run (under mu) before the watches start
	changed    chan struct{}  // a watch's status changed (see watchStatus.poke)
	// once is set by Once: a watch that fails stops, unretried.
	once bool
	// dirLock is data_dir's lock when Once took it (openDataDir) before
	// connecting; Run takes it otherwise, and closes it either way.
	dirLock *os.File
	// dataDirCheck is how often Run checks that data_dir's lock file is
	// still the one it holds (dataDirCheckEvery; tests shorten it).
	dataDirCheck time.Duration
	// connected is closed once the KV connection is first made: watches
	// wait for it before they open their bucket.
	connected chan struct{}

	// load gives a watch its plugin: loadPlugin, or the simulator's stand-in.
	load func(ctx context.Context, p *PluginConf) (module, error)
	// compile reads and compiles a plugin's module, uncached: compilePlugin,
	// or a test's wrapper.
	compile func(ctx context.Context, p *PluginConf) (module, error)
	// digest gives the sha256 of the module a watch of a plugin will run,
	// before it is loaded: moduleDigest, or the simulator's stand-in's.
	digest func(p *PluginConf) (string, error)
	// reloads carries Reload's requests to Run, which owns the watches;
	// stopped closes when Run returns.
	reloads chan reloadRequest
	stopped chan struct{}
	reload  reloadRecord
	// wrapFold wraps a watch's fold as it opens: the identity, or the
	// simulator's fault injection.
	wrapFold func(kvcore.Fold) kvcore.Fold

	// auth guards the HTTP endpoints (nil without an http block); Run sets
	// it before it takes reloads, which re-read its token.
	auth *httpAuth

	// fleet writes the fleet reports (nil without a report block).
	fleet *fleetReporter

	mu      sync.Mutex
	engine  *host.Engine
	plugins map[string]*pluginSlot
}

// pluginSlot holds one plugin once it loaded; its lock keeps two watches
// from compiling the same module at once without serializing the others.
type pluginSlot struct {
	mu     sync.Mutex
	plugin module
}

// New prepares an agent for cfg, a configuration from Load or Parse. It does
// no I/O; Run does.
func New(cfg *Config, opts Options) (*Agent, error) {
	if cfg == nil || cfg.NATS == nil || cfg.DataDir == "" {
		return nil, errors.New("agent: configuration not finalized (use Load or Parse)")
	}
	a := &Agent{cfg: cfg, log: opts.Logger, notify: opts.Notify, conn: opts.Conn, cacheDir: opts.PluginCacheDir, plugins: map[string]*pluginSlot{}, changed: make(chan struct{}, 1), dataDirCheck: dataDirCheckEvery,
		reloads: make(chan reloadRequest), stopped: make(chan struct{}), connected: make(chan struct{})}
	if a.cacheDir == "" {
		a.cacheDir = cfg.CacheDir
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.notify == nil {
		a.notify = sdNotify
	}
	// report { domain } other than the watched buckets': a connection of
	// its own (reportConn).
	reportDomain := cfg.Report != nil && cfg.Report.Domain != "" && cfg.Report.Domain != cfg.NATS.Domain
	if a.conn == nil {
		tlsFiles := cfg.NATS.TLS
		if tlsFiles == nil {
			tlsFiles = &TLSConfig{}
		}
		nopts := natskv.Options{
			Servers:   cfg.NATS.Servers,
			Creds:     cfg.NATS.Creds,
			CredsFile: cfg.NATS.CredsFile,
			CAFile:    tlsFiles.CAFile,
			CertFile:  tlsFiles.CertFile,
			KeyFile:   tlsFiles.KeyFile,
			Name:      "slipagent",
			Timeout:   cfg.NATS.Timeout,
			Logger:    a.log.With("component", "nats"),

			Domain:          cfg.NATS.Domain,
			ReconnectJitter: cfg.NATS.natsJitter(),
			PingInterval:    cfg.NATS.PingInterval,
		}
		a.conn = natskv.New(nopts)
		a.ownConn = true
		if reportDomain {
			ropts := nopts
			ropts.Domain, ropts.Name = cfg.Report.Domain, "slipagent-report"
			ropts.Logger = a.log.With("component", "nats", "connection", "report")
			a.reportConn = natskv.New(ropts)
		}
	} else if reportDomain {
		return nil, fmt.Errorf("agent: report { domain = %q } needs a connection of the agent's own (Options.Conn is given)", cfg.Report.Domain)
	}
	a.load = a.loadPlugin
	a.compile = a.compilePlugin
	a.digest = a.moduleDigest
	// Run replaces it with one that ends with the agent; this one serves
	// watches run without Run (the simulator).
	a.hooks = newHookScheduler(context.Background(), runRound)
	a.wrapFold = func(f kvcore.Fold) kvcore.Fold { return f }
	a.metrics = newMetrics(a)
	for _, w := range cfg.Watches {
		a.watches = append(a.watches, newWatchRunner(a, w))
	}
	if cfg.Report != nil {
		a.fleet = newFleetReporter(a, cfg.Report, opts.Version)
	}
	return a, nil
}

// CheckCreds reads and parses the NATS credentials (creds_file, or creds)
// as connecting does, without dialling: a *natskv.CredsError when they
// cannot be used, which no retry would mend. Run, Once and Plan call it
// before they connect, and `slipagent validate` too. A creds_file that does
// not exist yet passes: it may be provisioned after the agent starts, and
// connecting keeps failing (and saying why) until it is, as for a server
// that is not up yet. A reload checks them too.
func (a *Agent) CheckCreds() error {
	if !a.ownConn {
		return nil // Options.Conn: the caller's credentials
	}
	return checkNATSCreds(a.cfg.NATS)
}

// checkNATSCreds is CheckCreds of the nats block n.
func checkNATSCreds(n *NATSConfig) error {
	if n.Creds == "" && n.CredsFile != "" {
		if _, err := os.Stat(n.CredsFile); errors.Is(err, fs.ErrNotExist) {
			return nil
		}
	}
	return natskv.Options{Creds: n.Creds, CredsFile: n.CredsFile}.CheckCreds()
}

// CheckTLS reads the NATS client's TLS files (nats tls ca_file, cert_file
// and key_file) as connecting does, without dialling: a file that cannot be
// read or does not parse is an error naming the setting and the file,
// which no retry would mend. Run, Once and Plan call it before they
// connect, a reload before it applies a configuration, and `slipagent
// validate` too.
func (a *Agent) CheckTLS() error {
	if !a.ownConn {
		return nil // Options.Conn: the caller's connection
	}
	return checkNATSTLS(a.cfg.NATS.TLS)
}

// preflight checks the files the agent trusts (a *TrustError when others
// can change one), its NATS TLS files and its NATS credentials (a
// *natskv.CredsError).
func (a *Agent) preflight() error {
	if err := a.CheckTrust(); err != nil {
		return err
	}
	if err := a.CheckTLS(); err != nil {
		return err
	}
	return a.CheckCreds()
}

// startEngine runs the preflight checks (Once ran them before it dialled),
// then starts the plugin engine on the compile cache; the caller closes
// it.
func (a *Agent) startEngine(ctx context.Context) (*host.Engine, error) {
	if err := checkDataDir(a.cfg); err != nil { // the cache is often in it
		return nil, err
	}
	if err := os.MkdirAll(a.cacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("agent: compile cache: %w", err)
	}
	if !a.once {
		if err := a.preflight(); err != nil {
			return nil, err
		}
	}
	engine, err := host.New(ctx, host.Config{CacheDir: a.cacheDir, Logger: a.log.With("component", "plugins")})
	if err != nil {
		return nil, fmt.Errorf("agent: plugin engine: %w", err)
	}
	a.mu.Lock()
	a.engine = engine
	a.mu.Unlock()
	return engine, nil
}

// Run runs the agent until ctx ends: it connects to NATS (retrying for
// ever), serves HTTP if configured, runs every watch in its own goroutine and
// reports to systemd. It returns nil after a graceful stop: every batch
// being applied was finished and checkpointed (one still collecting updates
// is abandoned and delivered again on the next start). It fails only when it
// cannot start at all (the data directory, another agent running on it:
// ErrDataDirInUse, the HTTP listener), when a file it trusts can be changed
// by others (a *TrustError), or when its NATS TLS files or credentials
// cannot be used (a *natskv.CredsError), and it stops with an error
// wrapping ErrDataDirLost when its data_dir is removed or replaced while it
// runs.
func (a *Agent) Run(ctx context.Context) (err error) {
	defer close(a.stopped)
	lock := a.dirLock
	if lock == nil {
		var err error
		if lock, err = openDataDir(a.cfg); err != nil {
			return err
		}
	}
	defer lock.Close()
	ctx, cancel := context.WithCancelCause(ctx)
	checked := make(chan struct{})
	lockPath := filepath.Join(a.cfg.DataDir, dataDirLock) // read here: a reload replaces a.cfg
	go func() {
		defer close(checked)
		watchDataDir(ctx, cancel, lock, lockPath, a.dataDirCheck)
	}()
	defer func() {
		if cause := context.Cause(ctx); errors.Is(cause, ErrDataDirLost) && !errors.Is(err, ErrDataDirLost) {
			err = cause // lost while starting: say why, not "canceled"
		}
		cancel(nil)
		<-checked
	}()
	engine, err := a.startEngine(ctx)
	if err != nil {
		return err
	}
	defer engine.Close(context.WithoutCancel(ctx))
	if a.ownConn {
		defer a.conn.Close()
	}

	var srv *http.Server
	if a.cfg.HTTP != nil {
		auth, err := newHTTPAuth(a.cfg.HTTP)
		if err != nil {
			return fmt.Errorf("agent: %w", err)
		}
		a.auth = auth
		ln, err := listenHTTP(a.cfg.HTTP)
		if err != nil {
			return fmt.Errorf("agent: %w", err)
		}
		srv = &http.Server{
			Handler:           auth.wrap(a.Handler()),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(a.log.With("component", "http").Handler(), slog.LevelInfo),
		}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("http server stopped", "err", err)
			}
		}()
		a.log.Info("serving /metrics, /healthz, /readyz, /status", "addr", ln.Addr().String())
	}

	hooks := newHookScheduler(ctx, runRound)
	defer hooks.wait()
	a.mu.Lock()
	a.hooks = hooks
	a.mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(func() { a.report(ctx) })
	wg.Go(func() { a.reportFleet(ctx) })
	// With nats.start_splay the connection and the watches wait (reloads
	// queue meanwhile); the endpoints and systemd reporting already run.
	if a.splay(ctx) {
		wg.Go(func() { a.connect(ctx) })
		for _, w := range a.watches {
			w.start(ctx, &wg)
		}
	}
	a.log.Info("agent started", "watches", len(a.watches), "data_dir", a.cfg.DataDir)

	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case req := <-a.reloads:
			req.reply <- a.applyReload(ctx, &wg, req.cfg)
		}
	}
	a.log.Info("stopping: waiting for the batches in flight")
	if srv != nil {
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}
	wg.Wait()
	if err := context.Cause(ctx); errors.Is(err, ErrDataDirLost) {
		a.log.Error("stopped: the state the agent held open is no longer on the disk; start it again to rebuild it", "err", err)
		return err
	}
	a.log.Info("agent stopped")
	return nil
}

// connect connects the KV connection, retrying with backoff until it works
// or ctx ends. Watches wait for it; each failure shows in their status
// (failing, with the error), until they attach.
func (a *Agent) connect(ctx context.Context) {
	for attempt := 0; ; attempt++ {
		err := a.conn.Connect(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			a.log.Info("connected to NATS", "servers", natskv.RedactServers(a.cfg.NATS.Servers), "attempts", attempt+1)
			close(a.connected)
			return
		}
		err = fmt.Errorf("cannot connect to NATS at %s: %w", natskv.RedactServers(a.cfg.NATS.Servers), err)
		for _, w := range a.watches {
			w.status.failed(err)
		}
		a.log.Error("cannot connect to NATS; retrying", "err", err, "attempt", attempt+1)
		d := min(minRestartBackoff<<min(attempt, 20), maxRestartBackoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(d/2 + rand.N(d/2+1)):
		}
	}
}

// store opens the bucket a watch reads. The agent never creates buckets: a
// missing one (not provisioned yet, or misspelt) fails the watch, which
// retries, rather than appearing empty and pruning its outputs.
func (a *Agent) store(ctx context.Context, bucket string) (kvcore.Store, error) {
	s, err := a.conn.Open(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", bucket, err)
	}
	return s, nil
}

// loadPlugin compiles a plugin once and shares it between the watches that
// use it. A failure is not remembered: the next attempt reads the module again.
func (a *Agent) loadPlugin(ctx context.Context, p *PluginConf) (module, error) {
	a.mu.Lock()
	slot, ok := a.plugins[p.Name]
	if !ok {
		slot = &pluginSlot{}
		a.plugins[p.Name] = slot
	}
	a.mu.Unlock()
	slot.mu.Lock()
	defer slot.mu.Unlock()
	if slot.plugin != nil {
		return slot.plugin, nil
	}
	m, err := a.compile(ctx, p)
	if err != nil {
		return nil, err
	}
	slot.plugin = m
	return m, nil
}

// moduleDigest is the sha256 of the module the watches of p run: the
// loaded one's, or, before it is loaded (or while it loads), the file's,
// which the engine knows without reading it when the file did not change
// since it last read it (host.Engine.ModuleDigest).
func (a *Agent) moduleDigest(p *PluginConf) (string, error) {
	a.mu.Lock()
	slot := a.plugins[p.Name]
	engine := a.engine
	a.mu.Unlock()
	if slot != nil && slot.mu.TryLock() {
		m := slot.plugin
		slot.mu.Unlock()
		if m != nil {
			return m.SHA256(), nil
		}
	}
	if engine == nil {
		return fileDigest(p.Module)
	}
	return engine.ModuleDigest(p.Module)
}

// compilePlugin reads and compiles a plugin's module.
func (a *Agent) compilePlugin(ctx context.Context, p *PluginConf) (module, error) {
	a.mu.Lock()
	engine := a.engine
	a.mu.Unlock()
	pl, err := engine.LoadFile(ctx, p.Module, host.PluginConfig{
		Name:          p.Name,
		SHA256:        p.SHA256,
		MemoryLimit:   uint64(p.Memory),
		Timeout:       p.Timeout,
		RenderTimeout: p.RenderTimeout,
		Config:        p.ConfigMap,
		Limits: host.Limits{
			MaxFiles:    p.Limits.MaxFiles,
			MaxBytes:    p.Limits.MaxBytes,
			MaxFileSize: p.Limits.MaxFileSize,
		},
		Logger: a.log, // the engine adds the plugin attribute
	})
	// The plugin block's FILE:LINE, when the configuration came from one.
	at := ""
	if p.DefRange.Filename != "" {
		at = setAt(p.DefRange) + ": "
	}
	var unread *fs.PathError
	if errors.As(err, &unread) {
		return nil, fmt.Errorf("%splugin %s: %w", at, p.Name, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%smodule %s: %w", at, p.Module, err) // err names the plugin
	}
	a.log.Info("plugin loaded", "plugin", p.Name, "module", p.Module, "sha256", pl.SHA256())
	return wasmModule{pl}, nil
}

// Status returns every watch's status, in configuration order.
func (a *Agent) Status() []WatchStatus {
	ws := a.runners()
	down := a.disconnected()
	denied := a.denied()
	out := make([]WatchStatus, len(ws))
	for i, w := range ws {
		out[i] = w.status.get()
		if out[i].Ready {
			continue
		}
		if down {
			// What failed (a timeout, a store not connected) follows from it.
			out[i].Reason = "not connected to NATS, reconnecting: " + out[i].Reason
		}
		if denied != "" {
			out[i].Reason += " (" + denied + ")"
		}
	}
	return out
}

// deniedRecent is how long a permissions violation the server reported is
// named in the reason of the watches that are not ready.
const deniedRecent = 2 * time.Minute

// denied says the latest permissions violation the server reported on the
// connection, if it came within deniedRecent: a request the server denies
// only times out, and the violation names the permission.
func (a *Agent) denied() string {
	d, ok := a.conn.(interface{ Denied() (string, time.Time) })
	if !ok {
		return ""
	}
	text, at := d.Denied()
	if text == "" || time.Since(at) > deniedRecent {
		return ""
	}
	return fmt.Sprintf("the NATS server refused a permission %s ago: %s", time.Since(at).Round(time.Second), text)
}

// disconnected reports whether the KV connection, once made, is down now.
// Before it is first made, the watches' status says the connect's failures.
func (a *Agent) disconnected() bool { return a.connectedOnce() && !a.conn.Healthy() }

// natsConnected reports whether the KV connection is up now.
func (a *Agent) natsConnected() bool { return a.connectedOnce() && a.conn.Healthy() }

// connectedOnce reports whether the KV connection was made.
func (a *Agent) connectedOnce() bool {
	select {
	case <-a.connected:
		return true
	default:
		return false
	}
}

// runners returns the watches running now (a reload replaces the list).
func (a *Agent) runners() []*watchRunner {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.watches
}

// Ready reports whether every watch is ready: caught up with its bucket,
// and not failing, detached, stale or held.
func (a *Agent) Ready() bool {
	for _, s := range a.Status() {
		if !s.Ready {
			return false
		}
	}
	return true
}
