package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/slipstreamkv/slipstream/agent"
)

const onceUsage = `usage: slipagent once [-config PATH] [-log-format text|json]

Catches every watch of the configuration up with its bucket, then exits, like
consul-template -once: each watch applies what changed since its checkpoint
(everything, for a fresh data_dir) through its plugin, commits the files,
runs the hooks, checkpoints, and has its drift check. A watch that fails is
not retried. Exits 0 when every watch caught up; 1 when a watch failed (its
plugin, a check, a hook, its bucket); 4 when no NATS server could be
reached; 7 when the deletion guard holds a watch (after slipagent resync
--confirm WATCH, the next once applies the held batch).`

func runOnce(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	adviseHugeHeapAtStart()
	fs := newFlagSet("slipagent once", stderr)
	path := fs.String("config", defaultConfig, "configuration file, or directory of *.hcl files")
	format := fs.String("log-format", "text", "log format: text or json")
	if code, ok := parseFlagsOnly(fs, onceUsage, args, stdout, stderr); !ok {
		return code
	}
	cfg, code := loadConfig(*path, stderr)
	if cfg == nil {
		return code
	}
	level := new(slog.LevelVar)
	level.Set(cfg.Level)
	logger, err := newLogger(stderr, *format, level)
	if err != nil {
		fmt.Fprintf(stderr, "slipagent once: %v\n", err)
		return exitUsage
	}
	a, err := agent.New(cfg, agent.Options{Logger: logger})
	if err != nil {
		fmt.Fprintf(stderr, "slipagent once: %v\n", err)
		return exitFailure
	}
	err = a.Once(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "slipagent once: %v\n", err)
	var we *agent.WatchesError
	switch {
	case errors.Is(err, agent.ErrUnreachable):
		return exitUnreachable
	case errors.As(err, &we) && we.Held():
		return exitHeld
	}
	return exitFailure
}
