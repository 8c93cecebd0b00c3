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
	"github.com/slipstreamkv/slipstream/plugins/host"
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

const validateUsage = `usage: slipagent validate [-config PATH] [-modules=false]

Checks a configuration: syntax, types, references between blocks, the
NATS server URLs, that the NATS credentials and TLS files (ca_file,
cert_file, key_file) can be read and parse, that the users and groups it
names exist, that no file the agent trusts (the configuration, data dir,
compile cache, creds, keys, token) can be changed by others, as the agent
checks at start, that data_dir is a directory it can list (or does not
exist yet), that the http token and TLS files can be read, and (unless
-modules=false) that every plugin module loads: it compiles, matches its
sha256 pin, speaks the plugin ABI and accepts its
configuration (a plugin that checks it when loaded, as the template
example does, refuses it here, naming the plugin).`

func runValidate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("slipagent validate", stderr)
	path := fs.String("config", defaultConfig, "configuration file, or directory of *.hcl files")
	modules := fs.Bool("modules", true, "also load every plugin module")
	if code, ok := parseFlagsOnly(fs, validateUsage, args, stdout, stderr); !ok {
		return code
	}
	cfg, code := loadConfig(*path, stderr)
	if cfg == nil {
		return code
	}
	a, err := agent.New(cfg, agent.Options{Logger: slog.New(slog.NewTextHandler(stderr, nil))})
	if err != nil {
		fmt.Fprintf(stderr, "slipagent validate: %v\n", err)
		return exitFailure
	}
	if err := a.CheckTrust(); err != nil { // the agent would refuse to start
		fmt.Fprintf(stderr, "slipagent validate: %v\n", err)
		return exitFailure
	}
	if err := a.CheckCreds(); err != nil { // and so it would
		fmt.Fprintf(stderr, "slipagent validate: %v\n", err)
		return exitFailure
	}
	if err := a.CheckTLS(); err != nil { // and so it would
		fmt.Fprintf(stderr, "slipagent validate: %v\n", err)
		return exitFailure
	}
	if err := a.CheckHTTP(); err != nil { // it could not serve http
		fmt.Fprintf(stderr, "slipagent validate: %v\n", err)
		return exitFailure
	}
	if *modules {
		eng, err := host.New(ctx, host.Config{})
		if err != nil {
			fmt.Fprintf(stderr, "slipagent validate: %v\n", err)
			return exitFailure
		}
		defer eng.Close(context.WithoutCancel(ctx))
		failed := false
		for _, p := range cfg.Plugins {
			at := fmt.Sprintf("%s:%d", p.DefRange.Filename, p.DefRange.Start.Line) // the plugin block
			wasm, err := os.ReadFile(p.Module)
			if err != nil {
				fmt.Fprintf(stderr, "%s: plugin %q: %v\n", at, p.Name, err)
				failed = true
				continue
			}
			pl, err := eng.Load(ctx, wasm, host.PluginConfig{Name: p.Name, SHA256: p.SHA256, MemoryLimit: uint64(p.Memory), Timeout: p.Timeout, Config: p.ConfigMap})
			if err != nil { // host errors name the plugin
				fmt.Fprintf(stderr, "%s: %s: %v\n", at, p.Module, err)
				failed = true
				continue
			}
			pl.Close(ctx)
		}
		if failed {
			return exitFailure
		}
	}
	fmt.Fprintf(stdout, "%s: ok (%s, %s)\n", *path, count(len(cfg.Watches), "watch", "watches"), count(len(cfg.Plugins), "plugin", "plugins"))
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
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("unknown log format %q (text or json)", format)
}
