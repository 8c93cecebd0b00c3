package agent

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A module that does not load is reported with its path, naming the plugin
// once (the engine's error names it).
func TestPluginLoadErrorNamesThePluginOnce(t *testing.T) {
	dir := t.TempDir()
	module := filepath.Join(dir, "garbage.wasm")
	if err := os.WriteFile(module, []byte("not wasm"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(filepath.Join(dir, "agent.hcl"), []byte(`
data_dir = "data"
plugin "bad" { module = "garbage.wasm" }
watch "w" {
  bucket = "b"
  plugin = "bad"
  output "o" { dir = "out" }
}
`))
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, Options{Logger: slog.New(slog.DiscardHandler), PluginCacheDir: filepath.Join(dir, "cache")})
	if err != nil {
		t.Fatal(err)
	}
	engine, err := a.startEngine(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer engine.Close(context.Background())
	_, err = a.compilePlugin(context.Background(), cfg.Plugins[0])
	if err == nil {
		t.Fatal("a module that is not WebAssembly loaded")
	}
	msg := err.Error()
	if strings.Count(msg, "bad") != 1 || !strings.Contains(msg, `plugin "bad"`) || !strings.Contains(msg, module) {
		t.Fatalf("error %q: want the module's path and the plugin named once", msg)
	}
}
