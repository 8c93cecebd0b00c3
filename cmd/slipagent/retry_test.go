package main

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/internal/plugintest"
)

// A value the host refuses (a file over max_file_size) fails the watch;
// correcting it in the bucket makes the running agent ready again with the
// corrected file, and a later change of another key gets through too, with
// no restart: the retried batch does not carry the refused value.
func TestAFixInTheBucketUnsticksAFailingWatch(t *testing.T) {
	srv := natstest.Run(t)
	dir, err := os.MkdirTemp("", "sa") // a socket's path is short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.WriteFile(filepath.Join(dir, "files.wasm"), plugintest.Module(t, "plugins/examples/files"), 0o644); err != nil {
		t.Fatal(err)
	}
	put := func(key, value string) {
		t.Helper()
		if code, _, errOut := runCmd(t, "kv", "-server", srv.URL(), "put", "cfg", key, value); code != exitOK {
			t.Fatalf("kv put %s = %d: %s", key, code, errOut)
		}
	}
	put("files.ok", "fine")
	cfg := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(cfg, []byte(`data_dir = "data"
cache_dir = "`+plugintest.CacheDir(t)+`"
nats { servers = ["`+srv.URL()+`"] }
plugin "files" {
  module = "files.wasm"
  config = { prefix = "files." }
  limits { max_file_size = "16" }
}
watch "cfg" {
  bucket = "cfg"
  plugin = "files"
  output "files" { dir = "out" }
}
http { listen = "unix:run/http.sock" }
`), 0o644); err != nil {
		t.Fatal(err)
	}
	runAgent(t, cfg)
	waitStatus(t, "-config", cfg)

	put("files.big", "0123456789abcdefXYZ") // 19 bytes
	deadline := time.Now().Add(time.Minute)
	for {
		code, out, errOut := runCmd(t, "status", "-config", cfg)
		if code == exitFailure && strings.Contains(out, "failing") && strings.Contains(out, "max_file_size") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status with a value over max_file_size = %d, want 1 naming the limit:\n%s%s", code, out, errOut)
		}
		time.Sleep(100 * time.Millisecond)
	}

	put("files.big", "small")
	put("files.other", "x")
	want := map[string]string{"big": "small", "other": "x", "ok": "fine"}
	deadline = time.Now().Add(time.Minute)
	for {
		got := map[string]string{}
		for name := range want {
			b, _ := os.ReadFile(filepath.Join(dir, "out", name))
			got[name] = string(b)
		}
		if maps.Equal(got, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outputs after the fix = %v, want %v", got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out := waitStatus(t, "-config", cfg); !strings.Contains(out, "ready") {
		t.Errorf("status after the fix:\n%s", out)
	}
}
