package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Serve runs an agent for cfg until ctx ends. Each value on reload (SIGHUP)
// re-reads the configuration with load: a configuration that fails to load
// is logged and counted (/status, slipagent_reloads_total) and the running
// agent keeps going. A good one is applied in place by Agent.Reload, which
// loads its plugin modules first and then restarts only the watches that
// changed; systemd sees RELOADING=1, then READY=1 once the watches settle.
// A configuration that changes data_dir, cache_dir, nats, http or report
// replaces the agent instead: the old one is stopped gracefully, then a new
// one starts from the folds it left, going on with its reload record. When
// that new agent cannot start (its listen address taken), the configuration
// the old agent ran last (with the reloads it applied in place) runs again,
// and its agent shows the reload as refused.
// level, if set, follows each configuration's log_level.
func Serve(ctx context.Context, cfg *Config, load func() (*Config, error), reload <-chan struct{}, level *slog.LevelVar, opts Options) error {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Notify == nil {
		opts.Notify = sdNotify
	}
	// lastGood is the configuration the replaced agent ran last, with the
	// reloads it applied in place: what runs again when its replacement
	// cannot start (nil for the first agent and after going back).
	var lastGood *Config
	// history is the reload record of the agent replaced, which the next
	// one continues with the outcome of the reload that replaced it
	// (rebuilt: nil once applied, why not when it could not start).
	var history *ReloadStatus
	var rebuilt error
	for {
		if level != nil {
			level.Set(cfg.Level)
		}
		a, err := New(cfg, opts)
		if err != nil {
			return err
		}
		if history != nil {
			a.continueReloads(*history)
			a.recordReload(rebuilt, ReloadStatus{Restarted: watchNames(cfg)})
		}
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- a.Run(runCtx) }()

		next, runErr := reloadInPlace(ctx, a, load, reload, level, done, opts)
		stop()
		if runErr == nil {
			runErr = <-done
		}
		if ctx.Err() != nil {
			_ = opts.Notify(daemon.SdNotifyStopping)
			return nil
		}
		switch {
		case runErr != nil && lastGood != nil:
			// The reloaded configuration cannot even start (its listener,
			// its data dir): go back to the one that ran.
			// Its agent's record of that reload as applied is dropped.
			opts.Logger.Error("the reloaded configuration cannot start; going back to the previous one", "err", runErr)
			rebuilt = fmt.Errorf("the new configuration cannot start and the previous one runs again: %w", runErr)
			cfg, lastGood = lastGood, nil
		case runErr != nil:
			return runErr // Run's errors name the agent
		default:
			opts.Logger.Info("configuration reloaded; restarting the agent")
			st := a.ReloadStatus()
			history, rebuilt = &st, nil
			// Not cfg: the reloads a applied in place changed what it runs.
			cfg, lastGood = next, a.config()
		}
	}
}

// reloadInPlace applies reloads to the running agent a until ctx ends, the
// agent stops by itself (its error: Run returns before ctx ends only when
// it cannot start), or a reload needs a new agent (that configuration).
func reloadInPlace(ctx context.Context, a *Agent, load func() (*Config, error), reload <-chan struct{}, level *slog.LevelVar, done <-chan error, opts Options) (next *Config, runErr error) {
	for {
		next, runErr := waitForReload(ctx, a, load, reload, done, opts)
		if next == nil {
			return nil, runErr
		}
		err := a.Reload(ctx, next)
		switch {
		case errors.Is(err, ErrReloadNeedsRestart):
			opts.Logger.Info("the new configuration needs a new agent", "reason", err)
			return next, nil
		case err != nil && ctx.Err() == nil:
			var refused *RefusedError
			if errors.As(err, &refused) {
				err = refused.Err // the message says it was refused
			}
			opts.Logger.Error("reload refused: keeping the running configuration", "err", err)
		case err == nil && level != nil:
			level.Set(next.Level)
		}
	}
}

// waitForReload blocks until ctx ends, the agent stops by itself, or reload
// delivers a configuration that loads.
func waitForReload(ctx context.Context, a *Agent, load func() (*Config, error), reload <-chan struct{}, done <-chan error, opts Options) (next *Config, runErr error) {
	for {
		select {
		case <-ctx.Done():
			return nil, nil
		case err := <-done:
			if err == nil {
				err = errors.New("stopped by itself")
			}
			return nil, err
		case <-reload:
			next, err := load()
			if err != nil {
				opts.Logger.Error("reload refused: the new configuration does not load; keeping the running one", "err", err)
				a.recordReload(err, ReloadStatus{})
				continue
			}
			_ = opts.Notify(daemon.SdNotifyReloading + "\n" + daemon.SdNotifyMonotonicUsec())
			return next, nil
		}
	}
}
