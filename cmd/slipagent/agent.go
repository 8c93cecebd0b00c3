package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/slipstreamkv/slipstream/agent"
)

const defaultConfig = "/etc/slipagent/agent.hcl"

const runUsage = `usage: slipagent run [-config PATH] [-log-format text|json]

Runs the agent as a service (systemd Type=notify): every watch of the
configuration keeps its fold in sync and applies changes through its plugin.
SIGHUP reloads the configuration: plugin modules are loaded first (a failure
keeps the running configuration), then only the watches that changed restart.
SIGINT or SIGTERM stops gracefully, a second one exits at once.`

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	adviseHugeHeapAtStart()
	fs := newFlagSet("slipagent run", stderr)
	path := fs.String("config", defaultConfig, "configuration file, or directory of *.hcl files")
	format := fs.String("log-format", "text", "log format: text or json")
	if code, ok := parseFlagsOnly(fs, runUsage, args, stdout, stderr); !ok {
		return code
	}
	cfg, code := loadConfig(*path, stderr)
	if cfg == nil {
		return code
	}
	level := new(slog.LevelVar)
	logger, err := newLogger(stderr, *format, level)
	if err != nil {
		fmt.Fprintf(stderr, "slipagent run: %v\n", err)
		return exitUsage
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{})
	go func() {
		for {
			select {
			case <-hup:
				select {
				case reload <- struct{}{}:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	load := func() (*agent.Config, error) { return agent.Load(*path) }
	if err := agent.Serve(ctx, cfg, load, reload, level, agent.Options{Logger: logger, Version: currentVersion().String()}); err != nil {
		logger.Error("agent failed", "err", err)
		return exitFailure
	}
	return exitOK
}

// loadConfig loads a configuration, printing its problems with their source
// lines. It returns nil and the exit code on failure.
func loadConfig(path string, stderr io.Writer) (*agent.Config, int) {
	cfg, err := agent.Load(path)
	var ce *agent.ConfigError
	switch {
	case errors.As(err, &ce):
		_ = ce.Render(stderr)
		return nil, exitFailure
	case err != nil:
		fmt.Fprintf(stderr, "slipagent: %v\n", err)
		return nil, exitFailure
	}
	return cfg, exitOK
}

func newLogger(w io.Writer, format string, level *slog.LevelVar) (*slog.Logger, error) {
	w = toJournal(w)
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("unknown log format %q (text or json)", format)
}
