package agent

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/internal/plugintest"
)

// TestTemplatePluginFromFiles runs the template example as an operator
// would: two templates read with file() from beside the configuration, each
// with its own destination and mode, rendered from a live bucket.
func TestTemplatePluginFromFiles(t *testing.T) {
	f := newFixture(t)
	for name, content := range map[string][]byte{
		"template.wasm":  plugintest.Module(t, "plugins/examples/template"),
		"upstreams.tmpl": []byte("{{ range ls \"web\" }}server {{ .Value }};\n{{ end }}"),
		"settings.tmpl":  []byte(`{{ with parseJSON (key "settings") }}level={{ .level | toUpper }}{{ end }}`),
	} {
		if err := os.WriteFile(filepath.Join(f.dir, name), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := f.config(`
data_dir = "$DIR/data"
nats { servers = ["$NATS"] }
plugin "template" {
  module = "template.wasm"
  config = {
    hook = ""
    templates = [
      { source = file("upstreams.tmpl"), destination = "upstreams.conf", perms = "0640" },
      { source = file("settings.tmpl"), destination = "conf.d/settings", name = "settings.tmpl" },
    ]
  }
}
watch "app" {
  bucket = "app"
  plugin = "template"
  output "out" { dir = "out" }
}`)
	f.put("app", "web/a", "10.0.0.1")
	f.put("app", "settings", `{"level": "info"}`)
	_, stop := f.start(cfg)
	defer stop()
	upstreams, settings := filepath.Join(f.dir, "out/upstreams.conf"), filepath.Join(f.dir, "out/conf.d/settings")
	// The first render waits for the module's compilation: slow with -race
	// on a loaded host.
	deadline := time.Now().Add(3 * time.Minute)
	for readFile(upstreams) != "server 10.0.0.1;\n" || readFile(settings) != "level=INFO" {
		if time.Now().After(deadline) {
			t.Fatalf("no first render: upstreams.conf %q, settings %q", readFile(upstreams), readFile(settings))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if fi, err := os.Stat(upstreams); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("upstreams.conf: %v %v", fi, err)
	}
	f.put("app", "web/b", "10.0.0.2")
	f.put("app", "settings", `{"level": "debug"}`)
	waitFor(t, "a batch", func() bool {
		return readFile(upstreams) == "server 10.0.0.1;\nserver 10.0.0.2;\n" && readFile(settings) == "level=DEBUG"
	})
}
