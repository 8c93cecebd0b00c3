package agent

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/slipstreamkv/slipstream/internal/plugintest"
)

// serving is Serve run in the background by a test: reloadTo makes the
// next reload load cfg, stop ends it.
type serving struct {
	t      *testing.T
	mu     sync.Mutex
	next   *Config
	reload chan struct{}
	cancel context.CancelFunc
	done   chan error
}

// serve runs Serve on first, logging to the test.
func (f *fixture) serve(first *Config) *serving {
	ctx, cancel := context.WithCancel(context.Background())
	f.t.Cleanup(cancel)
	s := &serving{t: f.t, reload: make(chan struct{}), cancel: cancel, done: make(chan error, 1)}
	load := func() (*Config, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.next, nil
	}
	go func() {
		s.done <- Serve(ctx, first, load, s.reload, nil,
			Options{Logger: slog.New(slog.NewTextHandler(testWriter{f.t}, nil)), Notify: func(string) error { return nil }, PluginCacheDir: plugintest.CacheDir(f.t)})
	}()
	return s
}

// reloadTo asks for a reload that loads cfg.
func (s *serving) reloadTo(cfg *Config) {
	s.mu.Lock()
	s.next = cfg
	s.mu.Unlock()
	s.reload <- struct{}{}
}

// stop cancels Serve and fails the test if it returned an error.
func (s *serving) stop() {
	s.t.Helper()
	s.cancel()
	if err := <-s.done; err != nil {
		s.t.Fatal(err)
	}
}

// TestServeReturnsRunsError: an agent that cannot start returns Run's
// error as it is, "agent: FILE:1: data_dir …" (not "agent: agent: …").
func TestServeReturnsRunsError(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	hcl := filepath.Join(dir, "agent.hcl")
	cfg, err := Parse(hcl, []byte(`data_dir = "`+file+`/data"`+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	err = Serve(context.Background(), cfg, nil, nil, nil, Options{Logger: slog.New(slog.DiscardHandler), Notify: func(string) error { return nil }, PluginCacheDir: t.TempDir()})
	if want := "agent: " + hcl + ":1: data_dir "; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Serve = %v, want it to start with %q", err, want)
	}
}
