// Package host runs slipstream apply plugins: WebAssembly modules speaking
// ABI version 1 (plugins/ABI.md, package plugins/abi) on wazero.
//
// The shortest use:
//
//	eng, _ := host.New(ctx, host.Config{CacheDir: "/var/cache/slipagent", Logger: logger})
//	p, _ := eng.Load(ctx, wasm, host.PluginConfig{Name: "nginx"})
//	inst, _ := p.NewInstance(ctx, host.InstanceConfig{
//		Watch:   "routes",
//		Outputs: map[string]host.Output{"conf": {Dir: "/etc/nginx/conf.d"}},
//		Hooks:   []string{"reload"},
//	})
//	res, err := inst.Apply(ctx, batch, view) // staged files + hook requests
//	if err != nil { /* nothing was staged; retry later */ }
//	// run check commands on res.Staged(), then:
//	err = res.Commit(ctx) // or res.Discard()
//
// An [Engine] owns the compilation cache (file-backed when [Config.CacheDir]
// is set) and is shared by every plugin. [Engine.Load] compiles a module once
// (verifying its optional sha256 pin and its exports and imports) into a
// [Plugin], which has its own wazero runtime with the plugin's memory limit.
// [Plugin.NewInstance] creates the [Instance] a watch keeps for its whole
// life: one guest instance, reused across batches and transparently replaced
// ("recycled") after any trap, timeout or memory growth past
// [PluginConfig.RecycleAbove], because a guest is in an undefined state after a
// trap and linear memory never shrinks.
//
// # Sandbox
//
// Guests get WASI preview1 with no file system, no network, no environment
// variables and no arguments; stdout and stderr go to the logger line by
// line, rate-limited. Clocks are real, and so are sleeps, cut short when the
// call's timeout ends. Every call runs under [PluginConfig.Timeout] with
// wazero's CloseOnContextDone, the only way to stop a guest stuck in a loop.
// Host functions bounds-check every pointer and length and never panic on
// guest input; a plugin's file writes are confined to the output directories
// its watch declares (with [os.Root]: no absolute paths, no "..", no symlink
// escape) and capped by [Limits]. A refused request fails the call whatever
// the plugin returns, so outputs are never committed partially.
//
// # Outputs
//
// Writes are staged beside their targets (a hidden temporary file in the same
// directory, already with its final mode and owner) and reach their targets
// only when the caller commits the [Result]: an fsync of every staged file
// (concurrently, outside the plugin's time limit), then a rename per file,
// then an fsync of each directory. A file of the target's path that the
// call removes may become a directory (remove "a", write "a/b"), and a
// directory whose files it removes a file: the staging file then waits in
// the nearest existing directory, and the commit makes room before the
// rename. A failed call discards everything it staged.
// A write whose content and mode already match the target stages nothing
// and tells the plugin so, which lets plugins request hooks only on change.
// Hook requests are only recorded; running them is the caller's job.
// [SweepStaged] removes the staging files a crash left behind.
//
// # Compilation cache
//
// [Config.CacheDir] holds compiled native code that later processes load and
// run as the agent. Each entry is checked against the engine's ledger of
// what it compiled (module sha256 → entry sha256) before wazero may load it;
// an entry that fails is removed and the module compiled again. The
// directory must be writable by the agent's user only. Compiles through one
// engine with a cache directory run one at a time.
//
// # Concurrency
//
// Engine and Plugin are safe for concurrent use. An Instance serializes its
// calls; a Result must be committed or discarded by one goroutine.
package host
