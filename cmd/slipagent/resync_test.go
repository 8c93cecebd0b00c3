package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/internal/plugintest"
	"github.com/slipstreamkv/slipstream/kvcore/natskv"
)

// TestResyncConfirmsAHeldDeletion runs an agent, empties its bucket so that
// the guard holds the deletion, and confirms it with "slipagent resync".
func TestResyncConfirmsAHeldDeletion(t *testing.T) {
	srv := natstest.Run(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "files.wasm"), plugintest.Module(t, "plugins/examples/files"), 0o644)
	cfg := filepath.Join(dir, "agent.hcl")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
data_dir = "%[1]s/data"
nats { servers = ["%[2]s"] }
plugin "files" {
  module = "files.wasm"
  config = { prefix = "files." }
}
watch "cfg" {
  bucket = "cfg"
  plugin = "files"
  batch { window = "1s" }
  output "files" { dir = "%[1]s/out" }
}
`, dir, srv.URL())), 0o644)
	const n = 20
	for i := range n {
		if code, _, errOut := runCmd(t, "kv", "-server", srv.URL(), "put", "cfg", fmt.Sprintf("files.k%02d", i), "v"); code != exitOK {
			t.Fatalf("kv put: %s", errOut)
		}
	}
	outputs := func() int {
		entries, _ := os.ReadDir(filepath.Join(dir, "out"))
		return len(entries)
	}
	held := filepath.Join(dir, "data", "watches", "cfg", "held.json")
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var stderr bytes.Buffer
	go func() { done <- run(ctx, []string{"run", "-config", cfg}, &bytes.Buffer{}, &stderr) }()
	defer func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("run exited %d; stderr:\n%s", code, stderr.String())
		}
	}()
	waitUntil("the first render", func() bool { return outputs() == n })

	if code, _, errOut := runCmd(t, "resync", "--confirm", "cfg", "-config", cfg); code != exitFailure || !strings.Contains(errOut, "not held") || !strings.Contains(errOut, "of "+cfg+" (data_dir ") {
		t.Errorf("resync of a watch that is not held = %d %q", code, errOut)
	}
	if code, _, errOut := runCmd(t, "resync", "--confirm", "nope", "-config", cfg); code != exitFailure || !strings.Contains(errOut, cfg) || !strings.Contains(errOut, `"nope"`) {
		t.Errorf("resync of an unknown watch = %d %q", code, errOut)
	}
	if code, _, _ := runCmd(t, "resync", "-config", cfg); code != exitUsage {
		t.Errorf("resync without --confirm = %d, want %d", code, exitUsage)
	}

	// The deletions go out at once, on one connection, to land in one batch.
	conn := natskv.New(natskv.Options{Servers: []string{srv.URL()}, Timeout: 5 * time.Second})
	if err := conn.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	store, err := conn.Open(ctx, "cfg")
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := store.Delete(ctx, fmt.Sprintf("files.k%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil("the hold", func() bool { _, err := os.Stat(held); return err == nil })
	if got := outputs(); got != n {
		t.Fatalf("%d outputs while held, want %d", got, n)
	}
	code, out, errOut := runCmd(t, "resync", "--confirm", "cfg", "-config", cfg)
	if code != exitOK || !strings.Contains(out, "confirmed") {
		t.Fatalf("resync --confirm = %d %q %q", code, out, errOut)
	}
	waitUntil("the confirmed deletion", func() bool {
		_, err := os.Stat(held)
		return outputs() == 0 && os.IsNotExist(err)
	})
}
