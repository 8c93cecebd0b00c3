package agent

import (
	"slices"
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

// A hook's or check's program given by a relative path is resolved against
// the configuration's directory, as every other path in it (not against
// the agent's working directory, "/" under systemd); a bare name is left
// for PATH, and arguments are passed as written.
func TestHookProgramsRelativeToTheConfiguration(t *testing.T) {
	const src = `
plugin "p" { module = "p.wasm" }
watch "w" {
  bucket = "b"
  plugin = "p"
  hook "relative" {
    command = ["bin/reload.sh", "conf/x"]
    check   = ["./check.sh", "./y"]
  }
  hook "bare" {
    command = ["systemctl", "reload", "nginx"]
    check   = ["/usr/sbin/nginx", "-t"]
  }
}`
	cfg, err := Parse("/etc/slipagent/agent.hcl", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2][]string{
		"relative": {{"/etc/slipagent/bin/reload.sh", "conf/x"}, {"/etc/slipagent/check.sh", "./y"}},
		"bare":     {{"systemctl", "reload", "nginx"}, {"/usr/sbin/nginx", "-t"}},
	}
	for _, h := range cfg.Watches[0].Hooks {
		if w := want[h.Name]; !slices.Equal(h.Command, w[0]) || !slices.Equal(h.Check, w[1]) {
			t.Errorf("hook %s: command %q, check %q; want %q and %q", h.Name, h.Command, h.Check, w[0], w[1])
		}
	}
}
