package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/internal/plugintest"
)

// templateDestination is one watch through the template example writing
// the key "port" to the file DEST in the output "out", requesting the hook
// "changed", which counts its runs in hooks.log; GUARD is the watch's
// guard block.
const templateDestination = `
data_dir = "$DIR/data"
nats { servers = ["$NATS"] }
plugin "template" {
  module = "$DIR/template.wasm"
  config = {
    hook      = "changed"
    templates = [{ source = "port {{ key \"port\" }}\n", destination = "DEST" }]
  }
}
watch "app" {
  bucket = "app"
  plugin = "template"
  output "out" { dir = "$DIR/out" }
  hook "changed" { command = ["sh", "-c", "echo run >> $DIR/hooks.log"] }
  GUARD
}`

func (f *fixture) templateConfig(dest, guard string) *Config {
	f.t.Helper()
	return f.config(strings.NewReplacer("DEST", dest, "GUARD", guard).Replace(templateDestination))
}

// waitRendered waits until the output holds exactly the files want, each
// with the rendered port.
func (f *fixture) waitRendered(what string, want ...string) {
	f.t.Helper()
	deadline := time.Now().Add(3 * time.Minute) // a first render compiles the module
	for {
		var got []string
		_ = filepath.WalkDir(filepath.Join(f.dir, "out"), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(filepath.Join(f.dir, "out"), p)
				got = append(got, rel)
			}
			return nil
		})
		ok := strings.Join(got, ",") == strings.Join(want, ",")
		for _, name := range want {
			ok = ok && readFile(filepath.Join(f.dir, "out", name)) == "port 80\n"
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%s: the output holds %q, want %q", what, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (f *fixture) hookRuns() int {
	return strings.Count(readFile(filepath.Join(f.dir, "hooks.log")), "run")
}

// TestTemplateRenamedDestinationIsRemoved renames a template's destination
// in the plugin's config, by a reload and by a restart: the outputs then
// equal what a fresh full render gives (the old file removed, the hook run),
// as the output directory belongs to the plugin.
func TestTemplateRenamedDestinationIsRemoved(t *testing.T) {
	f := newFixture(t)
	if err := os.WriteFile(filepath.Join(f.dir, "template.wasm"), plugintest.Module(t, "plugins/examples/template"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.put("app", "port", "80")
	a, stop := f.start(f.templateConfig("ports.conf", ""))
	f.waitRendered("first render", "ports.conf")
	waitFor(t, "the first hook", func() bool { return f.hookRuns() == 1 })

	if err := a.Reload(context.Background(), f.templateConfig("ports2.conf", "")); err != nil {
		t.Fatal(err)
	}
	f.waitRendered("reload", "ports2.conf")
	waitFor(t, "the reload's hook", func() bool { return f.hookRuns() == 2 })
	stop()

	_, stop = f.start(f.templateConfig("conf.d/ports3.conf", ""))
	defer stop()
	f.waitRendered("restart", "conf.d/ports3.conf")
	waitFor(t, "the restart's hook", func() bool { return f.hookRuns() == 3 })
}

// TestTemplateRenamedDestinationIsGuarded: the removal a renamed
// destination asks for is judged by the deletion guard like any other.
func TestTemplateRenamedDestinationIsGuarded(t *testing.T) {
	f := newFixture(t)
	if err := os.WriteFile(filepath.Join(f.dir, "template.wasm"), plugintest.Module(t, "plugins/examples/template"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.put("app", "port", "80")
	guard := `guard {
    min_deletes         = 1
    max_delete_fraction = 0.5
  }`
	a, _ := f.start(f.templateConfig("ports.conf", guard))
	f.waitRendered("first render", "ports.conf")
	if err := a.Reload(context.Background(), f.templateConfig("ports2.conf", guard)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the watch to hold the removal", func() bool {
		st := statusOf(t, a, "app")
		return st.Held != nil && st.Held.Outputs
	})
	f.waitRendered("held", "ports.conf")
}
