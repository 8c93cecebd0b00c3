package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// blockCompile makes a's compiles wait until release closes (or their ctx
// ends).
func blockCompile(a *Agent, release <-chan struct{}) {
	compile := a.compile
	a.compile = func(ctx context.Context, p *PluginConf) (module, error) {
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return compile(ctx, p)
	}
}

// A restart over an up-to-date fold owes the plugin nothing: the watch is
// ready while its module still loads, and applies the next change once it
// has loaded.
func TestRestartIsReadyWhileThePluginLoads(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "1")
	a, stop := f.start(f.config(filesConfig))
	waitFor(t, "the first run to catch up", func() bool { return a.Ready() })
	stop()

	a = f.agent(f.config(filesConfig))
	release := make(chan struct{})
	blockCompile(a, release)
	f.run(a)
	waitFor(t, "the restart to be ready while its plugin is held", func() bool { return a.Ready() })
	if s := a.Status()[0]; s.Batches != 0 {
		t.Errorf("the restart applied %d batches, want none", s.Batches)
	}
	close(release)
	f.put("cfg", "files.a.conf", "2")
	waitFor(t, "the change after the plugin loaded", func() bool { return readFile(filepath.Join(f.dir, "out", "a.conf")) == "2" })
}

// A plugin that fails to load while the watch already runs fails the
// watch with the load's error, and the watch starts over (loading again).
func TestPluginLoadFailureFailsTheRunningWatch(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "1")
	a := f.agent(f.config(filesConfig))
	errBroken := errors.New("module broken for the test")
	compile := a.compile
	var fails int // only the watch's goroutines call it, one load at a time
	a.compile = func(ctx context.Context, p *PluginConf) (module, error) {
		if fails < 2 {
			fails++
			return nil, errBroken
		}
		return compile(ctx, p)
	}
	f.run(a)
	waitFor(t, "the watch to report the load failure", func() bool {
		return strings.Contains(a.Status()[0].LastError, errBroken.Error())
	})
	waitFor(t, "the watch to load its plugin on a later attempt and render", func() bool {
		return a.Ready() && readFile(filepath.Join(f.dir, "out", "a.conf")) == "1"
	})
}

// A watch that has never rendered owes a full render whatever its module:
// it starts loading its plugin before the module's digest (its render key)
// is known, so the compile overlaps the digest, the fold and the sync.
func TestFirstStartLoadsThePluginBeforeTheDigest(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "1")
	a := f.agent(f.config(filesConfig))
	release := make(chan struct{})
	digest := a.digest
	a.digest = func(p *PluginConf) (string, error) {
		<-release
		return digest(p)
	}
	compiling := make(chan struct{})
	var once sync.Once
	compile := a.compile
	a.compile = func(ctx context.Context, p *PluginConf) (module, error) {
		once.Do(func() { close(compiling) })
		return compile(ctx, p)
	}
	f.run(a)
	releaseDigest := sync.OnceFunc(func() { close(release) })
	t.Cleanup(releaseDigest) // before the agent's stop, which waits for the digest
	select {
	case <-compiling:
	case <-time.After(60 * time.Second):
		t.Fatal("the plugin did not start loading while the digest was held")
	}
	releaseDigest()
	waitFor(t, "the first render", func() bool { return a.Ready() && readFile(filepath.Join(f.dir, "out", "a.conf")) == "1" })
}

// A restart with a rebuilt module file renders everything again, although
// the fold is up to date: the module's digest (the engine may know it
// without reading the file) follows the file.
func TestRestartWithARebuiltModuleRendersEverything(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "1")
	a, stop := f.start(f.config(filesConfig))
	waitFor(t, "the first run", func() bool { return a.Ready() })
	stop()
	a, stop = f.start(f.config(filesConfig))
	waitFor(t, "a restart", func() bool { return a.Ready() })
	stop()
	if n := a.Status()[0].Batches; n != 0 {
		t.Fatalf("a restart with the same module applied %d batches, want none", n)
	}

	module := filepath.Join(f.dir, "files.wasm")
	wasm, err := os.ReadFile(module)
	if err != nil {
		t.Fatal(err)
	}
	rebuilt := append(wasm, 0, 3, 1, 'x', 1) // a custom section "x": another module, same behaviour
	if err := os.WriteFile(module, rebuilt, 0o644); err != nil {
		t.Fatal(err)
	}
	a, stop = f.start(f.config(filesConfig))
	defer stop()
	waitFor(t, "the restart with the rebuilt module to render", func() bool {
		return a.Ready() && a.Status()[0].Batches > 0
	})
}
