package agent

import (
	"strings"
	"testing"
	"time"
)

func TestHookTimingSettings(t *testing.T) {
	const src = `
plugin "p" { module = "p.wasm" }
watch "w" {
  bucket = "b"
  plugin = "p"
  hook "spaced" {
    command      = ["systemctl", "reload", "nginx"]
    splay        = "10s"
    min_interval = "30s"
  }
  hook "plain" { command = ["true"] }
  hook "zero" {
    command = ["true"]
    splay   = "0"
  }
}`
	cfg, err := Parse("agent.hcl", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	hooks := cfg.Watches[0].Hooks
	if hooks[0].Splay != 10*time.Second || hooks[0].MinInterval != 30*time.Second {
		t.Errorf("spaced: splay %v, min_interval %v; want 10s and 30s", hooks[0].Splay, hooks[0].MinInterval)
	}
	for _, h := range hooks[1:] {
		if h.Splay != 0 || h.MinInterval != 0 {
			t.Errorf("%s: splay %v, min_interval %v; want none", h.Name, h.Splay, h.MinInterval)
		}
	}
	for _, bad := range []string{`splay = "soon"`, `min_interval = "-1s"`} {
		_, err := Parse("agent.hcl", []byte(strings.Replace(src, `splay   = "0"`, bad, 1)))
		if err == nil || !strings.Contains(err.Error(), "Invalid") {
			t.Errorf("%s: err = %v, want it refused", bad, err)
		}
	}
}
