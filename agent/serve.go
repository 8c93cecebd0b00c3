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
// is logged and the running agent keeps going; a good one replaces it — the
// old agent is stopped gracefully, then a new one starts from the folds it
// left (systemd sees RELOADING=1, then READY=1 once the new one caught up).
// level, if set, follows each configuration's log_level.
func Serve(ctx context.Context, cfg *Config, load func() (*Config, error), reload <-chan struct{}, level *slog.LevelVar, opts Options) error {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Notify == nil {
		opts.Notify = sdNotify
	}
	var previous *Config // the last configuration that ran, to fall back to
	for {
		if level != nil {
			level.Set(cfg.Level)
		}
		a, err := New(cfg, opts)
		if err != nil {
			return err
		}
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- a.Run(runCtx) }()

		next, runErr := waitForReload(ctx, load, reload, done, opts)
		stop()
		if runErr == nil {
			runErr = <-done
		}
		if ctx.Err() != nil {
			_ = opts.Notify(daemon.SdNotifyStopping)
			return nil
		}
		switch {
		case runErr != nil && previous != nil:
			// The reloaded configuration cannot even start (its listener,
			// its data dir): go back to the one that ran.
			opts.Logger.Error("the reloaded configuration cannot start; going back to the previous one", "err", runErr)
			cfg, previous = previous, nil
		case runErr != nil:
			return fmt.Errorf("agent: %w", runErr)
		default:
			opts.Logger.Info("configuration reloaded; restarting the watches")
			cfg, previous = next, cfg
		}
	}
}

// waitForReload blocks until ctx ends, the agent stops by itself (its error:
// Run returns before ctx ends only when it cannot start), or reload delivers
// a configuration that loads.
func waitForReload(ctx context.Context, load func() (*Config, error), reload <-chan struct{}, done <-chan error, opts Options) (next *Config, runErr error) {
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
				continue
			}
			_ = opts.Notify(daemon.SdNotifyReloading + "\n" + daemon.SdNotifyMonotonicUsec())
			return next, nil
		}
	}
}
