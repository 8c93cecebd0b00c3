// Package harness runs a plugin module through the real host (plugins/host)
// for tests: a shared engine per test process, a temporary directory per
// output, an in-memory view, and helpers to apply, render and commit.
//
// It is separate from package plugintest because plugins/host's own tests
// use plugintest, and this package imports plugins/host. Test packages using
// it call plugintest.Main from TestMain.
package harness

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/slipstreamkv/slipstream/internal/plugintest"
	"github.com/slipstreamkv/slipstream/plugins/abi"
	"github.com/slipstreamkv/slipstream/plugins/host"
)

var (
	engineOnce sync.Once
	engine     *host.Engine
	engineErr  error
)

// Engine returns the test process's engine, whose compilation cache lives in
// plugintest.CacheDir: each module compiles once per process.
func Engine(tb testing.TB) *host.Engine {
	tb.Helper()
	engineOnce.Do(func() {
		engine, engineErr = host.New(context.Background(), host.Config{CacheDir: plugintest.CacheDir(tb)})
	})
	if engineErr != nil {
		tb.Fatal(engineErr)
	}
	return engine
}

// Options configure a Harness.
type Options struct {
	Watch   string   // default "test"
	Outputs []string // output names; each gets its own temporary directory
	Hooks   []string
	// Plugin is the plugin's configuration (Name defaults to "test").
	Plugin host.PluginConfig
}

// Harness is one plugin instance under test.
type Harness struct {
	tb      testing.TB
	Plugin  *host.Plugin
	Inst    *host.Instance
	View    *host.MemView
	Outputs map[string]string // output name -> directory
	rev     uint64
}

// New loads wasm and creates an instance with opts.
func New(tb testing.TB, wasm []byte, opts Options) *Harness {
	tb.Helper()
	ctx := context.Background()
	if opts.Watch == "" {
		opts.Watch = "test"
	}
	if opts.Plugin.Name == "" {
		opts.Plugin.Name = "test"
	}
	p, err := Engine(tb).Load(ctx, wasm, opts.Plugin)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Close(ctx) })
	h := &Harness{tb: tb, Plugin: p, View: host.NewMemView(), Outputs: map[string]string{}}
	outs := map[string]host.Output{}
	for _, name := range opts.Outputs {
		h.Outputs[name] = tb.TempDir()
		outs[name] = host.Output{Dir: h.Outputs[name]}
	}
	h.Inst, err = p.NewInstance(ctx, host.InstanceConfig{Watch: opts.Watch, Outputs: outs, Hooks: opts.Hooks})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.Inst.Close(ctx) })
	return h
}

// Put returns a put update with the next revision.
func (h *Harness) Put(key, value string) host.Update {
	h.rev++
	return host.Update{Op: host.OpPut, Key: key, Value: []byte(value), Revision: h.rev}
}

// Delete returns a delete update with the next revision.
func (h *Harness) Delete(key string) host.Update {
	h.rev++
	return host.Update{Op: host.OpDelete, Key: key, Revision: h.rev}
}

// Apply folds updates into the view and runs them through the plugin.
func (h *Harness) Apply(updates ...host.Update) (*host.Result, error) {
	h.View.Apply(updates)
	return h.Inst.Apply(context.Background(), host.Batch{Cursor: host.Cursor{Revision: h.rev}, Updates: updates}, h.View)
}

// Render runs a full render over the view.
func (h *Harness) Render() (*host.Result, error) {
	return h.Inst.Render(context.Background(), host.Cursor{Revision: h.rev}, h.View)
}

// Commit fails the test unless the call succeeded and its result commits.
func (h *Harness) Commit(res *host.Result, err error) *host.Result {
	h.tb.Helper()
	if err != nil {
		h.tb.Fatal(err)
	}
	if err := res.Commit(context.Background()); err != nil {
		h.tb.Fatal(err)
	}
	return res
}

// Read returns the content of path in an output (false if absent).
func (h *Harness) Read(output, path string) (string, bool) {
	b, err := os.ReadFile(filepath.Join(h.Outputs[output], filepath.FromSlash(path)))
	return string(b), err == nil
}

// Files lists the regular files of an output, relative and slash-separated,
// sorted, and fails the test if a staging file is left behind.
func (h *Harness) Files(output string) []string {
	h.tb.Helper()
	var files []string
	root := h.Outputs[output]
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if strings.HasPrefix(d.Name(), abi.StagePrefix) {
			h.tb.Errorf("staging file left behind: %s", rel)
		}
		files = append(files, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		h.tb.Fatal(err)
	}
	return files
}
