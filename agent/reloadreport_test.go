package agent

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/slipstreamkv/slipstream/internal/plugintest"
)

// A reload that adds a report block, or changes its host, takes effect:
// the agent is rebuilt and reports as the new configuration says.
func TestServeReloadAppliesTheReportBlock(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "1")
	var mu sync.Mutex
	next := f.config(filesConfig)
	load := func() (*Config, error) {
		mu.Lock()
		defer mu.Unlock()
		return next, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reload := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, f.config(filesConfig), load, reload, nil,
			Options{Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)), Notify: func(string) error { return nil }, PluginCacheDir: plugintest.CacheDir(t)})
	}()
	waitFor(t, "the first agent to render", func() bool { return readFile(filepath.Join(f.dir, "out", "a.conf")) == "1" })

	for _, h := range []string{"h1", "h2"} {
		mu.Lock()
		next = f.config(filesConfig + strings.Replace(reportBlock, `"h1"`, `"`+h+`"`, 1))
		mu.Unlock()
		reload <- struct{}{}
		waitFor(t, "the report of host "+h, func() bool { return f.fleetRecordOf(h).State != "" })
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
