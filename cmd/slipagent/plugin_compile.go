package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/slipstreamkv/slipstream/agent"
	"github.com/slipstreamkv/slipstream/plugins/host"
)

const pluginCompileUsage = `usage: slipagent plugin compile [-cache-dir DIR] MODULE.wasm...
       slipagent plugin compile -config PATH [-cache-dir DIR]

Compiles plugin modules into the agent's compile cache, so that its first
start does not spend seconds compiling. The cache is the agent's: with
-config, the configuration's cache_dir (default: systemd's
$CACHE_DIRECTORY, else <data_dir>/cache), and every plugin it names is
compiled, with its sha256 pin and memory limit; without, ` + agent.DefaultDataDir + `/cache.
Run it as the agent's user: the cache must be writable only by that user.`

// compileJob is one module to compile.
type compileJob struct {
	path string
	cfg  host.PluginConfig
}

func pluginCompile(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("slipagent plugin compile", stderr)
	cacheDir := fs.String("cache-dir", "", "the compile cache (default: the configuration's cache_dir, else <data_dir>/cache)")
	cfgPath := fs.String("config", "", "compile every plugin module this configuration names")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return parseFailed(fs, pluginCompileUsage, err, stdout, stderr)
	}
	if (*cfgPath == "") == (len(pos) == 0) {
		problem := "give MODULE.wasm files or -config PATH"
		if *cfgPath != "" {
			problem += ", not both"
		}
		fmt.Fprintf(stderr, "slipagent plugin compile: %s\n", problem)
		printUsage(stderr, fs, pluginCompileUsage)
		return exitUsage
	}
	cache := filepath.Join(agent.DefaultDataDir, "cache")
	var jobs []compileJob
	if *cfgPath != "" {
		cfg, code := loadConfig(*cfgPath, stderr)
		if cfg == nil {
			return code
		}
		cache = cfg.CacheDir
		for _, p := range cfg.Plugins {
			jobs = append(jobs, compileJob{path: p.Module, cfg: host.PluginConfig{Name: p.Name, SHA256: p.SHA256, MemoryLimit: uint64(p.Memory), Timeout: p.Timeout, Config: p.ConfigMap}})
		}
	}
	for _, p := range pos {
		jobs = append(jobs, compileJob{path: p, cfg: host.PluginConfig{Name: p}})
	}
	if *cacheDir == "" {
		*cacheDir = cache
	}
	// The agent refuses a cache others can change: filling one would only
	// hand them what it then refuses.
	if err := agent.CheckTrustedPath("compile cache", *cacheDir); err != nil {
		fmt.Fprintf(stderr, "slipagent plugin compile: %v\n", err)
		return exitFailure
	}
	eng, err := host.New(ctx, host.Config{CacheDir: *cacheDir})
	if err != nil {
		fmt.Fprintf(stderr, "slipagent plugin compile: %v\n", err)
		return exitFailure
	}
	defer eng.Close(context.WithoutCancel(ctx))
	failed := false
	for _, j := range jobs {
		wasm, err := readModule(j.path)
		if err == nil {
			var pl *host.Plugin
			if pl, err = eng.Load(ctx, wasm, j.cfg); err == nil {
				pl.Close(ctx)
			}
		}
		if err != nil { // both name the module (by path, or by plugin name with -config)
			fmt.Fprintf(stderr, "slipagent plugin compile: %v\n", err)
			failed = true
			continue
		}
		fmt.Fprintf(stdout, "%s: compiled into %s\n", j.path, *cacheDir)
	}
	if failed {
		return exitFailure
	}
	return exitOK
}
