package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/internal/plugintest"
	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/kvcore/natskv"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(childConfigEnv); path != "" {
		os.Exit(runChild(path))
	}
	plugintest.Main(m)
}

// childConfigEnv makes the test binary run an agent on the configuration it
// names instead of the tests: the crash tests kill that process.
const childConfigEnv = "SLIPAGENT_TEST_CHILD_CONFIG"

func runChild(path string) int {
	cfg, err := Load(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	a, err := New(cfg, Options{Notify: func(string) error { return nil }, PluginCacheDir: os.Getenv("SLIPAGENT_TEST_CACHE")})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := a.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// fixture is an embedded NATS server, a writer on it, and a directory with
// the example plugins, for end-to-end tests of the agent.
type fixture struct {
	t    *testing.T
	srv  *natstest.Server
	conn *natskv.Conn
	dir  string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureOn(t, natstest.Run(t))
}

// newFixtureOn is newFixture on the server srv.
func newFixtureOn(t *testing.T, srv *natstest.Server) *fixture {
	t.Helper()
	f := &fixture{t: t, srv: srv, dir: t.TempDir()}
	f.conn = natskv.New(natskv.Options{Servers: []string{f.srv.URL()}, Timeout: 5 * time.Second})
	if err := f.conn.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.conn.Close() })
	if err := os.WriteFile(filepath.Join(f.dir, "files.wasm"), plugintest.Module(t, "plugins/examples/files"), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) store(bucket string) kvcore.Store {
	f.t.Helper()
	s, err := f.conn.Store(context.Background(), kvcore.StoreConfig{Bucket: bucket})
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

func (f *fixture) put(bucket, key, value string) uint64 {
	f.t.Helper()
	v, err := f.store(bucket).Put(context.Background(), key, []byte(value))
	if err != nil {
		f.t.Fatal(err)
	}
	rev, _ := v.Revision()
	return rev
}

func (f *fixture) delete(bucket, key string) {
	f.t.Helper()
	if err := f.store(bucket).Delete(context.Background(), key); err != nil {
		f.t.Fatal(err)
	}
}

// config parses src after replacing $DIR with the fixture's directory and
// $NATS with the server's URL.
func (f *fixture) config(src string) *Config {
	f.t.Helper()
	src = strings.NewReplacer("$DIR", f.dir, "$NATS", f.srv.URL()).Replace(src)
	cfg, err := Parse(filepath.Join(f.dir, "agent.hcl"), []byte(src))
	if err != nil {
		f.t.Fatal(err)
	}
	return cfg
}

// start runs an agent on cfg; stop cancels it and waits for Run to return.
func (f *fixture) start(cfg *Config) (a *Agent, stop func()) {
	f.t.Helper()
	return f.run(f.agent(cfg))
}

// agent prepares an agent on cfg for run.
func (f *fixture) agent(cfg *Config) *Agent {
	f.t.Helper()
	a, err := New(cfg, Options{
		Logger:         slog.New(slog.NewTextHandler(testWriter{f.t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Notify:         func(string) error { return nil },
		PluginCacheDir: plugintest.CacheDir(f.t),
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return a
}

// run runs a; stop cancels it and waits for Run to return.
func (f *fixture) run(a *Agent) (_ *Agent, stop func()) {
	f.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					f.t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				f.t.Error("Run did not return 30s after cancel")
			}
		})
	}
	f.t.Cleanup(stop)
	return a, stop
}

// testWriter sends logs to t.Log, so they show with a failing test only.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

func lines(path string) []string {
	s := strings.TrimSpace(readFile(path))
	if strings.HasPrefix(s, "<") {
		return nil
	}
	return strings.Split(s, "\n")
}

// filesConfig is one watch of bucket cfg through the files plugin, with a
// hook that appends the revision to $DIR/hooks.log.
const filesConfig = `
data_dir = "$DIR/data"
nats { servers = ["$NATS"] }
plugin "files" {
  module = "$DIR/files.wasm"
  config = { prefix = "files.", hook = "changed" }
}
watch "cfg" {
  bucket = "cfg"
  plugin = "files"
  batch { window = "20ms" }
  output "files" { dir = "$DIR/out" }
  hook "changed" {
    command = ["sh", "-c", "echo $SLIPAGENT_REVISION >> $DIR/hooks.log"]
  }
}
`

func TestEndToEndFilesFollowTheBucket(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "alpha")
	f.put("cfg", "files.b.conf", "bravo")
	f.put("cfg", "other.x", "ignored by the plugin")
	out := filepath.Join(f.dir, "out")
	// A staging file a crash left behind is swept before the first batch.
	leftover := filepath.Join(out, ".slipstream-crashed.tmp")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(leftover, []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	a, stop := f.start(f.config(filesConfig))

	waitFor(t, "the initial render", func() bool { return a.Ready() })
	if got := readFile(filepath.Join(out, "a.conf")) + "," + readFile(filepath.Join(out, "b.conf")); got != "alpha,bravo" {
		t.Fatalf("after the initial sync: %s", got)
	}
	if hooks := lines(filepath.Join(f.dir, "hooks.log")); len(hooks) != 1 {
		t.Fatalf("hooks after the initial sync: %q, want one run", hooks)
	}
	if _, err := os.Stat(leftover); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("staging leftover not swept (%v)", err)
	}

	f.put("cfg", "files.a.conf", "alpha2")
	f.delete("cfg", "files.b.conf")
	last := f.put("cfg", "files.c.conf", "charlie")
	waitFor(t, "the live changes", func() bool { return a.Status()[0].Revision == last })
	if got := readFile(filepath.Join(out, "a.conf")); got != "alpha2" {
		t.Errorf("a.conf = %q", got)
	}
	if _, err := os.Stat(filepath.Join(out, "b.conf")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("b.conf still there after its key was deleted (%v)", err)
	}
	if got := readFile(filepath.Join(out, "c.conf")); got != "charlie" {
		t.Errorf("c.conf = %q", got)
	}
	hooks := lines(filepath.Join(f.dir, "hooks.log"))
	if len(hooks) < 2 || hooks[len(hooks)-1] != fmt.Sprint(last) {
		t.Errorf("hooks.log = %q, want the last run at revision %d", hooks, last)
	}

	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/status": 200, "/metrics": 200} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, want)
		}
		if path != "/metrics" {
			continue
		}
		for _, m := range []string{
			`slipagent_watch_ready{bucket="cfg",watch="cfg"} 1`,
			fmt.Sprintf(`slipagent_watch_revision{bucket="cfg",watch="cfg"} %d`, last),
			`slipagent_plugin_calls_total{kind="render",result="ok",watch="cfg"} 1`,
			`slipagent_commands_total{hook="changed",kind="hook",result="ok",watch="cfg"}`,
		} {
			if !strings.Contains(string(body), m) {
				t.Errorf("/metrics lacks %s", m)
			}
		}
	}
	stop()
}

func TestRestartResumesFromTheFold(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "1")
	cfg := f.config(filesConfig)
	a, stop := f.start(cfg)
	waitFor(t, "the first run to catch up", func() bool { return a.Ready() })
	stop()

	// While the agent is down: one change, one delete.
	f.put("cfg", "files.b.conf", "2")
	f.delete("cfg", "files.a.conf")
	last := f.put("cfg", "files.c.conf", "3")

	a, stop = f.start(f.config(filesConfig))
	defer stop()
	waitFor(t, "the restart to catch up", func() bool { s := a.Status()[0]; return s.Synced && s.Revision == last })
	s := a.Status()[0]
	if s.Updates != 3 {
		t.Errorf("the restart applied %d updates, want exactly the 3 made while it was down (a delta, not a resync)", s.Updates)
	}
	out := filepath.Join(f.dir, "out")
	if _, err := os.Stat(filepath.Join(out, "a.conf")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a.conf survived the delete made while the agent was down")
	}
	if got := readFile(filepath.Join(out, "b.conf")) + readFile(filepath.Join(out, "c.conf")); got != "23" {
		t.Errorf("b, c = %q", got)
	}
}

func TestFailingHookHoldsTheCursorAndIsRetried(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "1")
	// The hook fails while $DIR/broken exists.
	broken := filepath.Join(f.dir, "broken")
	if err := os.WriteFile(broken, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := f.config(strings.Replace(filesConfig, `"echo $SLIPAGENT_REVISION >> $DIR/hooks.log"`, `"test ! -e $DIR/broken && echo $SLIPAGENT_REVISION >> $DIR/hooks.log"`, 1))
	cfg.Watches[0].Hooks[0].Timeout = 5 * time.Second
	a, _ := f.start(cfg)
	waitFor(t, "the hook to fail a few times", func() bool { return a.Status()[0].Failures >= 2 })
	s := a.Status()[0]
	if s.Synced || s.Revision != 0 || s.Healthy() {
		t.Fatalf("while the hook fails: %+v; want no cursor, not synced, unhealthy", s)
	}
	if got := readFile(filepath.Join(f.dir, "out", "a.conf")); got != "1" {
		t.Errorf("a.conf = %q: files are committed before hooks run", got)
	}
	// The plugin now finds its file in place and requests nothing; the
	// journal still owes the hook.
	if err := os.Remove(broken); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "recovery", func() bool { return a.Ready() })
	if hooks := lines(filepath.Join(f.dir, "hooks.log")); len(hooks) != 1 {
		t.Errorf("hooks.log = %q, want the owed hook run once", hooks)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "data", "watches", "cfg", journalFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("hook journal left behind after success (%v)", err)
	}
}

func TestFailingCheckKeepsTheOldFiles(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "good")
	src := strings.Replace(filesConfig, `hook "changed" {`, `hook "changed" {
    check = ["sh", "-c", "for f in $(printf '%s' \"$SLIPAGENT_STAGED\" | cut -f1); do ! grep -q bad $f || exit 1; done"]`, 1)
	a, _ := f.start(f.config(src))
	waitFor(t, "the initial render", func() bool { return a.Ready() })

	rev := f.put("cfg", "files.a.conf", "bad value")
	waitFor(t, "the check to refuse the change", func() bool { return a.Status()[0].Failures >= 1 })
	if got := readFile(filepath.Join(f.dir, "out", "a.conf")); got != "good" {
		t.Fatalf("a.conf = %q after a failed check, want the old content", got)
	}
	if s := a.Status()[0]; s.Revision >= rev || !strings.Contains(s.LastError, "check") {
		t.Fatalf("status %+v: want the cursor held before rev %d and the check named", s, rev)
	}
	entries, _ := os.ReadDir(filepath.Join(f.dir, "out"))
	for _, e := range entries {
		if e.Name() != "a.conf" {
			t.Errorf("staged file %s left behind after the refused check", e.Name())
		}
	}
	last := f.put("cfg", "files.a.conf", "fixed")
	waitFor(t, "the fix to land", func() bool { return a.Status()[0].Revision == last && a.Status()[0].Healthy() })
	if got := readFile(filepath.Join(f.dir, "out", "a.conf")); got != "fixed" {
		t.Errorf("a.conf = %q", got)
	}
}

func TestBrokenWatchDoesNotStopOthers(t *testing.T) {
	f := newFixture(t)
	if err := os.WriteFile(filepath.Join(f.dir, "garbage.wasm"), []byte("not wasm"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.put("cfg", "files.a.conf", "1")
	f.put("other", "files.z", "2")
	cfg := f.config(filesConfig + `
plugin "broken" { module = "$DIR/garbage.wasm" }
watch "bad" {
  bucket = "other"
  plugin = "broken"
}
`)
	a, _ := f.start(cfg)
	waitFor(t, "the good watch to catch up and the bad one to fail", func() bool {
		st := a.Status()
		return st[0].Synced && st[1].Failures >= 1
	})
	if a.Ready() {
		t.Error("agent ready while a watch cannot start")
	}
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Watches []WatchStatus `json:"watches"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || len(body.Watches) != 1 || body.Watches[0].Name != "bad" || !strings.Contains(body.Watches[0].LastError, "invalid WebAssembly module") {
		t.Errorf("/healthz = %d %+v, want 503 naming the bad watch and its module error", resp.StatusCode, body.Watches)
	}
	// The good watch keeps following its bucket.
	last := f.put("cfg", "files.b.conf", "still working")
	waitFor(t, "the good watch to apply a live change", func() bool { return a.Status()[0].Revision == last })
}

func TestPluginConfigChangeRendersEverything(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "1")
	a, stop := f.start(f.config(filesConfig))
	waitFor(t, "the first run", func() bool { return a.Ready() })
	stop()
	mode := func() os.FileMode {
		fi, err := os.Stat(filepath.Join(f.dir, "out", "a.conf"))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}
	if mode() != 0o644 {
		t.Fatalf("mode = %v", mode())
	}
	// Same bucket and cursor, new plugin configuration: nothing changed in
	// the bucket, but the outputs must be rendered again.
	a, stop = f.start(f.config(strings.Replace(filesConfig, `hook = "changed" }`, `hook = "changed", mode = "0600" }`, 1)))
	defer stop()
	waitFor(t, "the restart", func() bool { return a.Ready() })
	if mode() != 0o600 {
		t.Errorf("mode after the config change = %v, want 0600 (a full render)", mode())
	}
}

// runUntilKilled runs the agent configured by src in a child process (this
// test binary, see childConfigEnv) and waits for what (its hook or check)
// to SIGKILL it.
func (f *fixture) runUntilKilled(src, what string) {
	f.t.Helper()
	path := filepath.Join(f.dir, "agent.hcl")
	if err := os.WriteFile(path, []byte(strings.NewReplacer("$DIR", f.dir, "$NATS", f.srv.URL()).Replace(src)), 0o644); err != nil {
		f.t.Fatal(err)
	}
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), childConfigEnv+"="+path, "SLIPAGENT_TEST_CACHE="+plugintest.CacheDir(f.t))
	var stderr bytes.Buffer
	child.Stderr = &stderr
	if err := child.Start(); err != nil {
		f.t.Fatal(err)
	}
	err := child.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ProcessState.String() != "signal: killed" {
		f.t.Fatalf("child agent ended with %v, want killed by its %s; stderr:\n%s", err, what, stderr.String())
	}
}

// TestCrashDuringHookRunsItAfterRestart kills the agent (SIGKILL, from inside
// the hook) after the files of a batch were committed and while their hook
// runs. The restarted agent finds the files already in place, so the plugin
// asks for nothing; the hook journal must still make the hook run, and the
// cursor must not pass the batch before it did (invariant 1).
func TestCrashDuringHookRunsItAfterRestart(t *testing.T) {
	f := newFixture(t)
	rev := f.put("cfg", "files.a.conf", "1")
	crashed := filepath.Join(f.dir, "crashed")
	src := strings.Replace(filesConfig, `"echo $SLIPAGENT_REVISION >> $DIR/hooks.log"`,
		`"if [ ! -e $DIR/crashed ]; then touch $DIR/crashed; kill -KILL $PPID; sleep 5; fi; echo $SLIPAGENT_REVISION >> $DIR/hooks.log"`, 1)
	cfg := f.config(src)
	f.runUntilKilled(src, "hook")
	if got := readFile(filepath.Join(f.dir, "out", "a.conf")); got != "1" {
		t.Fatalf("a.conf = %q: the crash came after the commit", got)
	}
	if _, err := os.Stat(crashed); err != nil {
		t.Fatal("the hook did not run before the crash")
	}
	if len(lines(filepath.Join(f.dir, "hooks.log"))) != 0 {
		t.Fatal("the hook completed before the crash")
	}

	a, stop := f.start(cfg)
	defer stop()
	waitFor(t, "the restarted agent to catch up", func() bool { return a.Ready() })
	if hooks := lines(filepath.Join(f.dir, "hooks.log")); len(hooks) != 1 || hooks[0] != fmt.Sprint(rev) {
		t.Errorf("hooks.log = %q, want the interrupted hook completed once, at revision %d", hooks, rev)
	}
	if s := a.Status()[0]; s.Revision != rev {
		t.Errorf("cursor at %d, want %d", s.Revision, rev)
	}
}

func TestServeReloadsConfiguration(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "1")
	first := f.config(filesConfig)
	next := f.config(strings.Replace(filesConfig, `hook = "changed" }`, `hook = "changed", mode = "0600" }`, 1))
	var loads int
	var mu sync.Mutex
	load := func() (*Config, error) {
		mu.Lock()
		defer mu.Unlock()
		loads++
		if loads == 1 {
			return nil, errors.New("a broken edit")
		}
		return next, nil
	}
	var notes []string
	notify := func(s string) error { mu.Lock(); notes = append(notes, s); mu.Unlock(); return nil }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reload := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, first, load, reload, nil, Options{Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)), Notify: notify, PluginCacheDir: plugintest.CacheDir(t)})
	}()
	mode := func() os.FileMode {
		fi, err := os.Stat(filepath.Join(f.dir, "out", "a.conf"))
		if err != nil {
			return 0
		}
		return fi.Mode().Perm()
	}
	readies := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, note := range notes {
			if note == "READY=1" {
				n++
			}
		}
		return n
	}
	waitFor(t, "the first agent to be ready", func() bool { return mode() == 0o644 && readies() == 1 })
	reload <- struct{}{} // refused: the running agent keeps going
	reload <- struct{}{} // accepted
	waitFor(t, "the reloaded agent to render with the new mode and be ready", func() bool { return mode() == 0o600 && readies() == 2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve = %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	reloading := 0
	for _, n := range notes {
		if strings.HasPrefix(n, "RELOADING=1") {
			reloading++
		}
	}
	if loads != 2 || reloading != 1 {
		t.Errorf("loads %d, RELOADING notifications %d; want 2 and 1 (the broken edit is refused)", loads, reloading)
	}
	// READY comes once per agent: before the reload and after it.
	var order []string
	for _, n := range notes {
		if n == "READY=1" || strings.HasPrefix(n, "RELOADING=1") {
			order = append(order, strings.SplitN(n, "\n", 2)[0])
		}
	}
	if !slices.Equal(order, []string{"READY=1", "RELOADING=1", "READY=1"}) {
		t.Errorf("READY/RELOADING notifications %q, want READY, RELOADING, READY", order)
	}
	// systemd takes STOPPING=1 as the service going away: it may only come
	// last, when Serve itself stops, never during a reload.
	for i, n := range notes {
		if strings.HasPrefix(n, "STOPPING=1") && i != len(notes)-1 {
			t.Errorf("STOPPING=1 sent before the end: %q", notes)
		}
	}
	if len(notes) == 0 || !strings.HasPrefix(notes[len(notes)-1], "STOPPING=1") {
		t.Errorf("notifications %q do not end with STOPPING=1", notes)
	}
}

func TestServerRestartIsRiddenThrough(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "1")
	a, _ := f.start(f.config(filesConfig))
	waitFor(t, "the first sync", func() bool { return a.Ready() })

	f.srv.Restart()
	last := f.put("cfg", "files.a.conf", "after restart")
	waitFor(t, "the change made after the server restart", func() bool {
		return readFile(filepath.Join(f.dir, "out", "a.conf")) == "after restart" && a.Status()[0].Revision == last
	})
}

func TestDiskFold(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "1")
	src := strings.Replace(filesConfig, `plugin = "files"
  batch`, `plugin = "files"
  fold   = "disk"
  batch`, 1)
	a, stop := f.start(f.config(src))
	waitFor(t, "the first sync", func() bool { return a.Ready() })
	stop()
	last := f.put("cfg", "files.b.conf", "2")
	a, _ = f.start(f.config(src))
	waitFor(t, "the restart", func() bool { s := a.Status()[0]; return s.Synced && s.Revision == last })
	if s := a.Status()[0]; s.Updates != 1 {
		t.Errorf("restart applied %d updates, want the 1-update delta from the on-disk fold", s.Updates)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "data", "watches", "cfg", diskFoldDir)); err != nil {
		t.Errorf("no on-disk fold: %v", err)
	}
}

func TestMissingBucketIsWaitedForNeverCreated(t *testing.T) {
	f := newFixture(t)
	out := filepath.Join(f.dir, "out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "precious.conf"), []byte("hand-made"), 0o644); err != nil {
		t.Fatal(err)
	}
	a, _ := f.start(f.config(filesConfig)) // bucket cfg does not exist yet
	waitFor(t, "the watch to report the missing bucket", func() bool {
		s := a.Status()[0]
		return s.Failures >= 1 && strings.Contains(s.LastError, "bucket not found")
	})
	if _, err := f.conn.Open(context.Background(), "cfg"); !errors.Is(err, kvcore.ErrBucketNotFound) {
		t.Fatalf("the agent created the bucket (Open: %v)", err)
	}
	if got := readFile(filepath.Join(out, "precious.conf")); got != "hand-made" {
		t.Fatalf("precious.conf = %q: an empty render pruned the outputs", got)
	}
	// Once the operator provisions the bucket, the watch catches up.
	f.put("cfg", "files.a.conf", "1")
	waitFor(t, "the watch to sync the new bucket", func() bool { return a.Ready() })
	if got := readFile(filepath.Join(out, "a.conf")); got != "1" {
		t.Errorf("a.conf = %q", got)
	}
}

// A hook that keeps failing across a restart must not wedge the watch: a
// change to the bucket that makes it pass must still get through.
func TestOwedHookAfterRestartDoesNotWedgeTheWatch(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "good")
	// The hook refuses a committed a.conf that says "bad", as nginx -s reload
	// would refuse a bad file.
	src := strings.Replace(filesConfig, `"echo $SLIPAGENT_REVISION >> $DIR/hooks.log"`,
		`"! grep -q bad $DIR/out/a.conf && echo $SLIPAGENT_REVISION >> $DIR/hooks.log"`, 1)
	a, stop := f.start(f.config(src))
	waitFor(t, "the initial render", func() bool { return a.Ready() })
	f.put("cfg", "files.a.conf", "bad")
	waitFor(t, "the hook to fail", func() bool { return a.Status()[0].Failures >= 1 })
	stop() // a reboot or a reload while the hook fails

	a, _ = f.start(f.config(src))
	waitFor(t, "the restarted watch to retry the owed hook", func() bool { return a.Status()[0].Failures >= 1 })
	last := f.put("cfg", "files.a.conf", "fixed") // the operator's fix, through the bucket
	waitFor(t, "the fix to reach the outputs and the hook to pass", func() bool {
		s := a.Status()[0]
		return readFile(filepath.Join(f.dir, "out", "a.conf")) == "fixed" && s.Revision == last && s.Healthy()
	})
}

func TestServeReturnsWhenTheAgentCannotStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	cfg, err := Parse(filepath.Join(dir, "agent.hcl"), []byte(`
data_dir = "data"
http { listen = "`+ln.Addr().String()+`" }
`))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- Serve(context.Background(), cfg, func() (*Config, error) { return cfg, nil }, nil, nil,
			Options{Logger: slog.New(slog.DiscardHandler), Notify: func(string) error { return nil }})
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "address already in use") || !strings.Contains(err.Error(), "change http.listen") {
			t.Errorf("Serve = %v, want the listener's error and what to change", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the agent failed to start")
	}
}

func TestWatchdogStopsOnlyForAStuckBatch(t *testing.T) {
	f := newFixture(t)
	cfg := f.config(filesConfig)
	a, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	budget := cfg.Plugins[0].Timeout + stuckGrace + 2*cfg.Watches[0].Hooks[0].Timeout
	for _, tt := range []struct {
		name  string
		busy  time.Time
		stuck bool
	}{
		{"idle", time.Time{}, false},
		{"applying within budget", now.Add(-budget + time.Second), false},
		{"applying past budget", now.Add(-budget - time.Second), true},
	} {
		st := []WatchStatus{{Name: "cfg", BusySince: tt.busy}}
		if got := a.stuck(st, now); got != tt.stuck {
			t.Errorf("%s: stuck = %v, want %v", tt.name, got, tt.stuck)
		}
	}
}

// TestClusterLeaderLossIsRiddenThrough runs a watch of an R3 bucket on a
// 3-node cluster and stops the bucket's stream leader: changes made through
// the survivors keep reaching the outputs.
func TestClusterLeaderLossIsRiddenThrough(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test skipped in -short mode")
	}
	c := natstest.RunCluster(t, 3)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "files.wasm"), plugintest.Module(t, "plugins/examples/files"), 0o644); err != nil {
		t.Fatal(err)
	}
	writer := natskv.New(natskv.Options{Servers: c.URLs(), Timeout: 10 * time.Second, ReconnectWait: 50 * time.Millisecond})
	if err := writer.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	store, err := writer.Store(t.Context(), kvcore.StoreConfig{Bucket: "cfg", Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	put := func(key, value string) uint64 {
		t.Helper()
		v, err := store.Put(t.Context(), key, []byte(value))
		if err != nil {
			t.Fatal(err)
		}
		rev, _ := v.Revision()
		return rev
	}
	put("files.a.conf", "1")
	servers := `"` + strings.Join(c.URLs(), `", "`) + `"`
	f := &fixture{t: t, dir: dir}
	cfg, err := Parse(filepath.Join(dir, "agent.hcl"), []byte(strings.NewReplacer("$DIR", dir, `["$NATS"]`, "["+servers+"]").Replace(filesConfig)))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := f.start(cfg)
	waitFor(t, "the first sync", func() bool { return a.Ready() })

	c.StreamLeader("$G", "KV_cfg").Shutdown()
	c.StreamLeader("$G", "KV_cfg") // waits for a surviving node to lead
	// The writer's first put may still race the election on a busy machine;
	// it is the agent, not the writer, that this test is about.
	var last uint64
	waitFor(t, "a put through the survivors", func() bool {
		v, err := store.Put(t.Context(), "files.a.conf", []byte("after the leader left"))
		if err != nil {
			t.Logf("put after the leader left: %v (retrying)", err)
			return false
		}
		last, _ = v.Revision()
		return true
	})
	waitFor(t, "the change made after the leader loss", func() bool {
		return readFile(filepath.Join(dir, "out", "a.conf")) == "after the leader left" && a.Status()[0].Revision == last
	})
}
