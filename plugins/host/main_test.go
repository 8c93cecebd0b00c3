package host

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/slipstreamkv/slipstream/internal/plugintest"
)

func TestMain(m *testing.M) { plugintest.Main(m) }

var (
	engineOnce sync.Once
	engine     *Engine
	engineErr  error
)

// testEngine is shared by the package's tests so each module compiles once.
func testEngine(t testing.TB) *Engine {
	t.Helper()
	engineOnce.Do(func() { engine, engineErr = New(context.Background(), Config{CacheDir: plugintest.CacheDir(t)}) })
	if engineErr != nil {
		t.Fatal(engineErr)
	}
	return engine
}

func guestWasm(t testing.TB) []byte {
	t.Helper()
	return plugintest.Module(t, "plugins/host/testdata/guest")
}

// logRecorder is a slog handler that keeps every record.
type logRecorder struct {
	mu      sync.Mutex
	records []string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	s := rec.Level.String() + " " + rec.Message
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key != "stream" {
			s += " " + a.String()
		}
		return true
	})
	r.mu.Lock()
	r.records = append(r.records, s)
	r.mu.Unlock()
	return nil
}

func (r *logRecorder) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.records)
}

func (r *logRecorder) count(substr string) int {
	n := 0
	for _, l := range r.lines() {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

// fixture is one plugin instance of the test guest with one output "out".
type fixture struct {
	t    testing.TB
	p    *Plugin
	inst *Instance
	out  string
	view *MemView
	logs *logRecorder
	rev  uint64
	// onLog holds what InstanceConfig.OnLog was called with: "LEVEL msg".
	onLogMu sync.Mutex
	onLog   []string
}

func newFixture(t testing.TB, cfg PluginConfig) *fixture {
	t.Helper()
	return newFixtureWith(t, guestWasm(t), cfg)
}

func newFixtureWith(t testing.TB, wasm []byte, cfg PluginConfig) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{t: t, out: t.TempDir(), view: NewMemView(), logs: &logRecorder{}}
	if cfg.Name == "" {
		cfg.Name = "guest"
	}
	cfg.Logger = slog.New(f.logs)
	p, err := testEngine(t).Load(ctx, wasm, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(ctx) })
	f.p = p
	f.inst, err = p.NewInstance(ctx, InstanceConfig{
		Watch:   "w",
		Outputs: map[string]Output{"out": {Dir: f.out}},
		Hooks:   []string{"reload"},
		OnLog: func(level slog.Level, msg string) {
			f.onLogMu.Lock()
			f.onLog = append(f.onLog, level.String()+" "+msg)
			f.onLogMu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.inst.Close(ctx) })
	return f
}

// batch turns "action=arg" strings into put updates (keys made unique) and
// folds them into the view.
func (f *fixture) batch(actions ...string) Batch {
	var b Batch
	for i, a := range actions {
		k, v, _ := strings.Cut(a, "=")
		f.rev++
		b.Updates = append(b.Updates, Update{Op: OpPut, Key: fmt.Sprintf("%s#%d.%d", k, f.rev, i), Value: []byte(v), Revision: f.rev})
	}
	b.Cursor = Cursor{Revision: f.rev}
	f.view.Apply(b.Updates)
	return b
}

func (f *fixture) apply(actions ...string) (*Result, error) {
	f.t.Helper()
	return f.inst.Apply(context.Background(), f.batch(actions...), f.view)
}

// mustCommit applies actions and commits the result.
func (f *fixture) mustCommit(actions ...string) *Result {
	f.t.Helper()
	res, err := f.apply(actions...)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := res.Commit(context.Background()); err != nil {
		f.t.Fatal(err)
	}
	return res
}

// read returns the content of a file in the output ("" and false if absent).
func (f *fixture) read(rel string) (string, bool) {
	b, err := os.ReadFile(filepath.Join(f.out, rel))
	return string(b), err == nil
}

// noStaged fails the test if a staging file is left anywhere under dir.
func noStaged(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".slipstream-") {
			t.Errorf("staging file left behind: %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
