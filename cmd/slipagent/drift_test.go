package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/internal/plugintest"
)

// A drift repair the host refuses (an output subdirectory replaced by a
// symlink leaving the output) shows in `slipagent status`: the watch is
// failing, exit 1, naming the drift repair and why. Once the symlink is gone
// the next drift check repairs the files and status exits 0 again.
func TestStatusShowsAFailingDriftRepair(t *testing.T) {
	srv := natstest.Run(t)
	dir, err := os.MkdirTemp("", "sa") // a socket's path is short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.WriteFile(filepath.Join(dir, "files.wasm"), plugintest.Module(t, "plugins/examples/files"), 0o644); err != nil {
		t.Fatal(err)
	}
	for key, value := range map[string]string{"files.a.conf": "alpha", "files.sub/b.conf": "bravo"} {
		if code, _, errOut := runCmd(t, "kv", "-server", srv.URL(), "put", "cfg", key, value); code != exitOK {
			t.Fatalf("kv put %s = %d: %s", key, code, errOut)
		}
	}
	cfg := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(cfg, []byte(`data_dir = "data"
nats { servers = ["`+srv.URL()+`"] }
plugin "files" {
  module = "files.wasm"
  config = { prefix = "files." }
}
watch "cfg" {
  bucket      = "cfg"
  plugin      = "files"
  drift_check = "1s"
  output "files" { dir = "out" }
}
http { listen = "unix:run/http.sock" }
`), 0o644); err != nil {
		t.Fatal(err)
	}
	runAgent(t, cfg)
	waitStatus(t, "-config", cfg)
	sub := filepath.Join(dir, "out", "sub")
	if got, _ := os.ReadFile(filepath.Join(sub, "b.conf")); string(got) != "bravo" {
		t.Fatalf("sub/b.conf = %q after the first render", got)
	}

	if err := os.RemoveAll(sub); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(t.TempDir(), sub); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		code, out, errOut := runCmd(t, "status", "-config", cfg)
		if code == exitFailure && strings.Contains(out, "failing") && strings.Contains(out, "repairing drift") && strings.Contains(out, "leaves the output directory") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status while the drift repair fails = %d, want 1 naming the failed repair:\n%s%s", code, out, errOut)
		}
		time.Sleep(100 * time.Millisecond)
	}

	if err := os.Remove(sub); err != nil {
		t.Fatal(err)
	}
	if out := waitStatus(t, "-config", cfg); !strings.Contains(out, "ready") {
		t.Errorf("status once the symlink is gone:\n%s", out)
	}
	if got, _ := os.ReadFile(filepath.Join(sub, "b.conf")); string(got) != "bravo" {
		t.Errorf("sub/b.conf = %q once the symlink is gone, want it repaired", got)
	}
}
