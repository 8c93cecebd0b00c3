package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/slipstreamkv/slipstream/internal/logtest"
	"github.com/slipstreamkv/slipstream/internal/plugintest"
	"github.com/slipstreamkv/slipstream/plugins/host"
)

// twoWatches is two watches, a and b, of buckets a and b through the files
// plugin, each into its own directory.
const twoWatches = `
data_dir = "$DIR/data"
nats { servers = ["$NATS"] }
plugin "files" {
  module = "$DIR/files.wasm"
  config = { prefix = "files.", hook = "changed" }
}
watch "a" {
  bucket = "a"
  plugin = "files"
  output "files" { dir = "$DIR/out-a" }
  hook "changed" { command = ["true"] }
}
watch "b" {
  bucket = "b"
  plugin = "files"
  output "files" { dir = "$DIR/out-b" }
  hook "changed" { command = ["true"] }
}
`

// instanceCounts counts the plugin instances created per watch: a watch
// that restarts creates a new one.
type instanceCounts struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *instanceCounts) get(watch string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[watch]
}

type countingModule struct {
	module
	counts *instanceCounts
}

func (m countingModule) NewInstance(ctx context.Context, cfg host.InstanceConfig) (instance, error) {
	m.counts.mu.Lock()
	m.counts.n[cfg.Watch]++
	m.counts.mu.Unlock()
	return m.module.NewInstance(ctx, cfg)
}

// countingAgent runs an agent on cfg whose plugins count their instances.
func (f *fixture) countingAgent(cfg *Config) (*Agent, *instanceCounts) {
	f.t.Helper()
	counts := &instanceCounts{n: map[string]int{}}
	a := f.agent(cfg)
	compile := a.compile
	a.compile = func(ctx context.Context, p *PluginConf) (module, error) {
		m, err := compile(ctx, p)
		if err != nil {
			return nil, err
		}
		return countingModule{m, counts}, nil
	}
	f.run(a)
	return a, counts
}

func statusOf(t *testing.T, a *Agent, name string) WatchStatus {
	t.Helper()
	for _, s := range a.Status() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no watch %q in the status", name)
	return WatchStatus{}
}

func TestReloadRestartsOnlyTheWatchThatChanged(t *testing.T) {
	f := newFixture(t)
	f.put("a", "files.x", "1")
	f.put("b", "files.x", "1")
	a, counts := f.countingAgent(f.config(twoWatches))
	waitFor(t, "both watches to sync", func() bool { return a.Ready() && len(a.Status()) == 2 })
	before := a.runners()

	next := f.config(strings.Replace(twoWatches, `output "files" { dir = "$DIR/out-b" }`, `output "files" {
    dir  = "$DIR/out-b"
    mode = "0600"
  }`, 1))
	if err := a.Reload(context.Background(), next); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b to render again with its new mode", func() bool {
		fi, err := os.Stat(filepath.Join(f.dir, "out-b", "x"))
		return err == nil && fi.Mode().Perm() == 0o600 && a.Ready()
	})
	after := a.runners()
	if after[0] != before[0] || counts.get("a") != 1 {
		t.Errorf("watch a was restarted (same runner: %v, plugin instances: %d)", after[0] == before[0], counts.get("a"))
	}
	if after[1] == before[1] || counts.get("b") != 2 {
		t.Errorf("watch b was not restarted (plugin instances: %d)", counts.get("b"))
	}
	rs := a.ReloadStatus()
	if rs.Reloads != 1 || !slices.Equal(rs.Kept, []string{"a"}) || !slices.Equal(rs.Restarted, []string{"b"}) {
		t.Errorf("reload status %+v, want a kept and b restarted", rs)
	}
	// Both still follow their buckets.
	f.put("a", "files.x", "2")
	f.put("b", "files.x", "2")
	waitFor(t, "both watches to apply new changes", func() bool {
		return readFile(filepath.Join(f.dir, "out-a", "x")) == "2" && readFile(filepath.Join(f.dir, "out-b", "x")) == "2"
	})
}

func TestReloadWithABrokenModuleKeepsTheRunningOne(t *testing.T) {
	f := newFixture(t)
	f.put("a", "files.x", "1")
	f.put("b", "files.x", "1")
	a, counts := f.countingAgent(f.config(twoWatches))
	waitFor(t, "the first sync", func() bool { return a.Ready() })
	broken := filepath.Join(f.dir, "broken.wasm")
	if err := os.WriteFile(broken, []byte("\x00asm not really"), 0o644); err != nil {
		t.Fatal(err)
	}
	next := f.config(strings.Replace(twoWatches, "$DIR/files.wasm", broken, 1))
	err := a.Reload(context.Background(), next)
	if err == nil || errors.Is(err, ErrReloadNeedsRestart) || !strings.Contains(err.Error(), "files") {
		t.Fatalf("Reload = %v, want refused naming the plugin", err)
	}
	if counts.get("a") != 1 || counts.get("b") != 1 {
		t.Errorf("plugin instances a %d, b %d: a refused reload restarted watches", counts.get("a"), counts.get("b"))
	}
	f.put("a", "files.x", "2")
	waitFor(t, "the running plugin to apply a change", func() bool { return readFile(filepath.Join(f.dir, "out-a", "x")) == "2" })

	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/status", nil))
	var body struct {
		Reload ReloadStatus `json:"reload"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if body.Reload.Failures != 1 || !strings.Contains(body.Reload.LastError, "files") {
		t.Errorf("/status reload = %+v, want one failure naming the plugin", body.Reload)
	}
	// last_error is why: the reload object and slipagent status say it was
	// refused.
	if strings.Contains(body.Reload.LastError, "refused") {
		t.Errorf("/status reload last_error %q says refused again", body.Reload.LastError)
	}
	rec = httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if !strings.Contains(rec.Body.String(), `slipagent_reloads_total{result="error"} 1`) {
		t.Error("slipagent_reloads_total does not count the refused reload")
	}

	// So is one that also changes what restarts the whole agent: the
	// running agent would stop for one whose watches cannot start.
	next = f.config(strings.Replace(strings.Replace(twoWatches, "$DIR/files.wasm", broken, 1), `data_dir = "$DIR/data"`, `data_dir = "$DIR/data2"`, 1))
	err = a.Reload(context.Background(), next)
	if err == nil || errors.Is(err, ErrReloadNeedsRestart) || !strings.Contains(err.Error(), "files") {
		t.Fatalf("Reload with a new data_dir = %v, want refused naming the plugin", err)
	}
}

func TestReloadRemovesAndAddsWatches(t *testing.T) {
	f := newFixture(t)
	f.put("a", "files.x", "1")
	f.put("b", "files.x", "1")
	f.put("c", "files.x", "1")
	a, counts := f.countingAgent(f.config(twoWatches))
	waitFor(t, "both watches to sync", func() bool { return a.Ready() && len(a.Status()) == 2 })
	removed := a.runners()[1]

	src := strings.Replace(twoWatches, `watch "b" {
  bucket = "b"`, `watch "c" {
  bucket = "c"`, 1)
	src = strings.Replace(src, "$DIR/out-b", "$DIR/out-c", 1)
	if err := a.Reload(context.Background(), f.config(src)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-removed.done:
	default:
		t.Fatal("the removed watch still runs after Reload returned")
	}
	waitFor(t, "the new watch to sync", func() bool {
		return readFile(filepath.Join(f.dir, "out-c", "x")) == "1" && a.Ready()
	})
	if names := []string{a.Status()[0].Name, a.Status()[1].Name}; !slices.Equal(names, []string{"a", "c"}) || len(a.Status()) != 2 {
		t.Errorf("watches %q, want a and c", names)
	}
	if counts.get("a") != 1 {
		t.Errorf("watch a restarted (%d plugin instances)", counts.get("a"))
	}
	f.put("b", "files.x", "2")
	f.put("a", "files.x", "2")
	waitFor(t, "a to apply", func() bool { return readFile(filepath.Join(f.dir, "out-a", "x")) == "2" })
	if got := readFile(filepath.Join(f.dir, "out-b", "x")); got != "1" {
		t.Errorf("out-b/x = %q: the removed watch still applies changes", got)
	}
}

func TestReloadOfAgentSettingsNeedsARestart(t *testing.T) {
	f := newFixture(t)
	f.put("a", "files.x", "1")
	f.put("b", "files.x", "1")
	a, _ := f.start(f.config(twoWatches))
	waitFor(t, "both watches to sync", func() bool { return a.Ready() && len(a.Status()) == 2 })
	next := f.config(strings.Replace(twoWatches, `data_dir = "$DIR/data"`, `data_dir = "$DIR/data2"`, 1))
	if err := a.Reload(context.Background(), next); !errors.Is(err, ErrReloadNeedsRestart) {
		t.Errorf("Reload = %v, want ErrReloadNeedsRestart", err)
	}
	same := f.config(twoWatches)
	if err := a.Reload(context.Background(), same); err != nil {
		t.Fatal(err)
	}
	if rs := a.ReloadStatus(); !slices.Equal(rs.Kept, []string{"a", "b"}) {
		t.Errorf("an identical configuration: %+v, want every watch kept", rs)
	}
}

// TestServeRefusedReloadStillEndsWithReady: systemd waits for READY=1 after
// RELOADING=1 even when the reload is refused at its module check.
func TestServeRefusedReloadStillEndsWithReady(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "1")
	broken := filepath.Join(f.dir, "broken.wasm")
	if err := os.WriteFile(broken, []byte("not wasm"), 0o644); err != nil {
		t.Fatal(err)
	}
	next := f.config(strings.Replace(filesConfig, "$DIR/files.wasm", broken, 1))
	var mu sync.Mutex
	var notes []string
	notify := func(s string) error {
		mu.Lock()
		defer mu.Unlock()
		notes = append(notes, strings.SplitN(s, "\n", 2)[0])
		return nil
	}
	ready := func() []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for _, n := range notes {
			if n == "READY=1" || n == "RELOADING=1" {
				out = append(out, n)
			}
		}
		return out
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reload := make(chan struct{})
	done := make(chan error, 1)
	var logs logtest.Buffer
	go func() {
		done <- Serve(ctx, f.config(filesConfig), func() (*Config, error) { return next, nil }, reload, nil,
			Options{Logger: slog.New(slog.NewTextHandler(io.MultiWriter(testWriter{t}, &logs), nil)), Notify: notify, PluginCacheDir: plugintest.CacheDir(t)})
	}()
	waitFor(t, "the agent to be ready", func() bool { return len(ready()) == 1 })
	reload <- struct{}{}
	waitFor(t, "READY=1 after the refused reload", func() bool { return slices.Equal(ready(), []string{"READY=1", "RELOADING=1", "READY=1"}) })
	// The log line says the reload was refused once, and why.
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, "refused") && (strings.Count(line, "refused") != 1 || !strings.Contains(line, "broken.wasm")) {
			t.Errorf("log line %q: want the refusal said once, with its cause", line)
		}
	}
	f.put("cfg", "files.a.conf", "2")
	waitFor(t, "the running agent to go on", func() bool { return readFile(filepath.Join(f.dir, "out", "a.conf")) == "2" })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestReloadRestartsTheWatchesOfARebuiltModule: the same configuration with
// a different module file at the same path (a new sha256) restarts the
// watches of that plugin.
func TestReloadRestartsTheWatchesOfARebuiltModule(t *testing.T) {
	f := newFixture(t)
	f.put("a", "files.x", "1")
	f.put("b", "files.x", "1")
	a, counts := f.countingAgent(f.config(twoWatches))
	waitFor(t, "both watches to sync", func() bool { return a.Ready() && len(a.Status()) == 2 })
	path := filepath.Join(f.dir, "files.wasm")
	wasm, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// A custom section "note": the same plugin, another sha256.
	if err := os.WriteFile(path, append(wasm, 0x00, 0x06, 0x04, 'n', 'o', 't', 'e', 0x01), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(context.Background(), f.config(twoWatches)); err != nil {
		t.Fatal(err)
	}
	if rs := a.ReloadStatus(); !slices.Equal(rs.Restarted, []string{"a", "b"}) {
		t.Errorf("reload status %+v, want a and b restarted", rs)
	}
	waitFor(t, "both watches to run the new module", func() bool {
		return counts.get("a") == 2 && counts.get("b") == 2 && a.Ready()
	})
}

// TestReloadRefusesWhatTheNewAgentCouldNotStart: a reload whose http TLS
// files cannot be read, or whose data_dir is a file, used to pass as a
// change of agent settings: the running agent was stopped for a new one
// that could not start. It is refused before anything stops, naming the
// setting, and the running watches go on.
func TestReloadRefusesWhatTheNewAgentCouldNotStart(t *testing.T) {
	f := newFixture(t)
	f.put("a", "files.x", "1")
	f.put("b", "files.x", "1")
	if err := os.WriteFile(filepath.Join(f.dir, "afile"), []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, counts := f.countingAgent(f.config(twoWatches))
	waitFor(t, "both watches to sync", func() bool { return a.Ready() && len(a.Status()) == 2 })
	for i, tc := range []struct{ name, src, want string }{
		{"a missing http TLS certificate", twoWatches + `
http {
  listen = "127.0.0.1:0"
  tls {
    cert_file = "$DIR/missing.crt"
    key_file  = "$DIR/missing.key"
  }
}`, "http tls: cert_file " + filepath.Join(f.dir, "missing.crt")},
		{"a data_dir that is a file", strings.Replace(twoWatches, `data_dir = "$DIR/data"`, `data_dir = "$DIR/afile"`, 1),
			"data_dir " + filepath.Join(f.dir, "afile") + ": not a directory"},
		// A module that does not compile: named with its plugin block.
		{"a module that is not WebAssembly", strings.Replace(twoWatches, `module = "$DIR/files.wasm"`, `module = "$DIR/afile"`, 1),
			filepath.Join(f.dir, "agent.hcl") + ":4: module " + filepath.Join(f.dir, "afile") + ": "},
	} {
		err := a.Reload(context.Background(), f.config(tc.src))
		var refused *RefusedError
		if !errors.As(err, &refused) || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: Reload = %v, want it refused saying %q", tc.name, err, tc.want)
		}
		if rs := a.ReloadStatus(); rs.Failures != uint64(i+1) || !strings.Contains(rs.LastError, tc.want) {
			t.Errorf("%s: reload status %+v, want the refusal", tc.name, rs)
		}
	}
	if counts.get("a") != 1 || counts.get("b") != 1 {
		t.Errorf("plugin instances a %d, b %d: a refused reload restarted watches", counts.get("a"), counts.get("b"))
	}
	f.put("a", "files.x", "2")
	waitFor(t, "the running configuration to apply a change", func() bool { return readFile(filepath.Join(f.dir, "out-a", "x")) == "2" })
}

// TestServeRefusesAReloadWithAnUnknownOutputOwner: an output owner that
// does not exist used to load, and a reload restarted the watch into
// failing for ever. Now the configuration does not load: the reload is
// refused, naming the output and the setting, and the running watch goes on.
func TestServeRefusesAReloadWithAnUnknownOutputOwner(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "1")
	src := strings.NewReplacer("$DIR", f.dir, "$NATS", f.srv.URL()).Replace(
		strings.Replace(filesConfig, `output "files" { dir = "$DIR/out" }`, `output "files" {
    dir   = "$DIR/out"
    owner = "slipagent-no-such-user"
  }`, 1))
	load := func() (*Config, error) { return Parse(filepath.Join(f.dir, "agent.hcl"), []byte(src)) }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reload := make(chan struct{})
	done := make(chan error, 1)
	var logs logtest.Buffer
	go func() {
		done <- Serve(ctx, f.config(filesConfig), load, reload, nil,
			Options{Logger: slog.New(slog.NewTextHandler(io.MultiWriter(testWriter{t}, &logs), nil)), Notify: func(string) error { return nil }, PluginCacheDir: plugintest.CacheDir(t)})
	}()
	out := filepath.Join(f.dir, "out", "a.conf")
	waitFor(t, "the watch to apply", func() bool { return readFile(out) == "1" })
	reload <- struct{}{}
	want := `output \"files\" of watch \"cfg\": owner = \"slipagent-no-such-user\"`
	waitFor(t, "the reload refused", func() bool { return strings.Contains(logs.String(), "reload refused") })
	if text := logs.String(); !strings.Contains(text, want) || strings.Contains(text, "configuration reloaded") {
		t.Errorf("logs:\n%s\nwant the reload refused saying %s, and nothing reloaded", text, want)
	}
	f.put("cfg", "files.a.conf", "2")
	waitFor(t, "the running watch to go on", func() bool { return readFile(out) == "2" })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// The output directories a reload leaves (a removed watch's, an output's
// old dir) are named: their files stay, and no watch manages them.
func TestAbandonedOutputs(t *testing.T) {
	watch := func(name string, dirs ...string) *WatchConf {
		w := &WatchConf{Name: name}
		for _, d := range dirs {
			w.Outputs = append(w.Outputs, &OutputConf{Dir: d})
		}
		return w
	}
	stopped := []*watchRunner{{conf: watch("a", "/out/a")}, {conf: watch("b", "/out/b", "/out/shared")}}
	cfg := &Config{Watches: []*WatchConf{watch("a", "/out/a2"), watch("c", "/out/shared")}}
	if got, want := abandonedOutputs(stopped, cfg), []string{"/out/a", "/out/b"}; !slices.Equal(got, want) {
		t.Errorf("abandoned outputs %q, want %q", got, want)
	}
}
