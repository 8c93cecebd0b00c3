package agent

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/slipstreamkv/slipstream/internal/logtest"
	"github.com/slipstreamkv/slipstream/internal/plugintest"
	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/plugins/host"
	"github.com/slipstreamkv/slipstream/snapshot/pebblefold"
)

// driftConfig is filesConfig with drift checks every 200ms.
func driftConfig(f *fixture) *Config {
	return f.config(strings.Replace(filesConfig, `batch { window = "20ms" }`, `batch { window = "20ms" }
  drift_check = "200ms"`, 1))
}

// waitReady waits for the agent's first render. It allows longer than
// waitFor: the first agent of a test binary compiles the plugin, which
// takes minutes on a loaded machine with the race detector.
func waitReady(t *testing.T, a *Agent) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !a.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for the initial render")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// driftRepaired reads slipagent_drift_repaired_total of the watch "cfg".
func driftRepaired(a *Agent) float64 {
	return counter(a, "slipagent_drift_repaired_total", map[string]string{"watch": "cfg"})
}

// settledDriftCount reads driftRepaired once it stopped changing for a few
// drift checks (200ms apart in these tests).
func settledDriftCount(t *testing.T, a *Agent) float64 {
	t.Helper()
	n, same := driftRepaired(a), 0
	waitFor(t, "the drift count to settle", func() bool {
		time.Sleep(300 * time.Millisecond)
		if m := driftRepaired(a); m != n || m == 0 {
			n, same = m, 0
			return false
		}
		same++
		return same >= 3
	})
	return n
}

// counter reads the counter name with the given labels (0 if absent).
func counter(a *Agent, name string, labels map[string]string) float64 {
	return metricValue(a, name, labels, func(m *dto.Metric) float64 { return m.GetCounter().GetValue() })
}

// gauge reads the gauge name with the given labels (0 if absent).
func gauge(a *Agent, name string, labels map[string]string) float64 {
	return metricValue(a, name, labels, func(m *dto.Metric) float64 { return m.GetGauge().GetValue() })
}

// metricValue reads value of the metric name with the given labels: 0 if
// absent, -1 if the metrics cannot be gathered.
func metricValue(a *Agent, name string, labels map[string]string, value func(*dto.Metric) float64) float64 {
	mfs, err := a.metrics.reg.Gather()
	if err != nil {
		return -1
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue metrics
				}
			}
			return value(m)
		}
	}
	return 0
}

func TestDriftIsRepairedWhileRunning(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "alpha")
	f.put("cfg", "files.b.conf", "bravo")
	f.put("cfg", "files.c.conf", "charlie")
	f.put("cfg", "files.d.conf", "delta")
	a, stop := f.start(driftConfig(f))
	waitReady(t, a)
	out := filepath.Join(f.dir, "out")

	// One file removed, one edited by hand.
	if err := os.Remove(filepath.Join(out, "a.conf")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "b.conf"), []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both files restored", func() bool {
		return readFile(filepath.Join(out, "a.conf")) == "alpha" && readFile(filepath.Join(out, "b.conf")) == "bravo"
	})
	// A check may run between the two changes: its render then restores
	// b.conf too, before a check sees it drifted, and counts only a.conf.
	counted := settledDriftCount(t, a)
	if counted != 1 && counted != 2 {
		t.Fatalf("%v repaired files counted, want 2 (or 1 when one render restored both)", counted)
	}

	// A mode changed by hand.
	if err := os.Chmod(filepath.Join(out, "c.conf"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the mode restored", func() bool {
		fi, err := os.Stat(filepath.Join(out, "c.conf"))
		return err == nil && fi.Mode().Perm() == 0o644
	})
	waitFor(t, "the repair counted", func() bool { return driftRepaired(a) == counted+1 })

	// A file the plugin removed (its key was deleted) stays removed: a later
	// repair (of a.conf) renders the watch without bringing it back.
	last := f.put("cfg", "files.d.conf", "delta")
	f.delete("cfg", "files.d.conf")
	waitFor(t, "the delete applied", func() bool { return a.Status()[0].Revision > last })
	if _, err := os.Stat(filepath.Join(out, "d.conf")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("d.conf still there after its key was deleted (%v)", err)
	}
	if err := os.Remove(filepath.Join(out, "a.conf")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a.conf restored again", func() bool { return readFile(filepath.Join(out, "a.conf")) == "alpha" })
	waitFor(t, "the repair counted", func() bool { return driftRepaired(a) == counted+2 })
	if _, err := os.Stat(filepath.Join(out, "d.conf")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("d.conf came back after its key was deleted (%v)", err)
	}
	stop()

	rec := openTestRecord(t, FoldMemory, filepath.Join(f.dir, "data", "watches", "cfg"), out)
	if _, ok, err := rec.get("files/d.conf"); err != nil || ok {
		t.Errorf("the record still holds the removed d.conf (%v, %v)", ok, err)
	}
	if _, ok, err := rec.get("files/a.conf"); err != nil || !ok {
		t.Errorf("the record lacks a.conf (%v, %v)", ok, err)
	}
}

func TestDriftWhileStoppedIsRepairedAtStart(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "alpha")
	f.put("cfg", "files.b.conf", "bravo")
	// The default interval: only the check after catching up can repair.
	// The disk fold keeps the record in Pebble too.
	cfg := strings.Replace(filesConfig, `bucket = "cfg"`, `bucket = "cfg"
  fold   = "disk"`, 1)
	a, stop := f.start(f.config(cfg))
	waitReady(t, a)
	stop()

	out := filepath.Join(f.dir, "out")
	if err := os.Remove(filepath.Join(out, "a.conf")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "b.conf"), []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A pending entry, as a crash before the rename of ghost.conf leaves
	// it: the plugin does not write it back, and the record forgets it.
	watchDir := filepath.Join(f.dir, "data", "watches", "cfg")
	rec := openTestRecord(t, FoldDisk, watchDir, out)
	ghost := stageFile(t, out, "ghost.conf", "boo")
	rec.committed(context.Background(), []host.StagedFile{ghost}, rec.hash([]host.StagedFile{ghost}))
	if err := errors.Join(os.Remove(ghost.File), rec.Close()); err != nil {
		t.Fatal(err)
	}

	a, stop = f.start(f.config(cfg))
	// Ready means repaired: the first drift check is over.
	waitReady(t, a)
	if a, b := readFile(filepath.Join(out, "a.conf")), readFile(filepath.Join(out, "b.conf")); a != "alpha" || b != "bravo" {
		t.Fatalf("ready with a.conf %q and b.conf %q, want them restored", a, b)
	}
	waitFor(t, "the repair counted", func() bool { return driftRepaired(a) == 2 })
	stop()
	if _, err := os.Stat(filepath.Join(out, "ghost.conf")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ghost.conf was written (%v)", err)
	}
	rec = openTestRecord(t, FoldDisk, watchDir, out)
	if _, ok, err := rec.get("files/ghost.conf"); err != nil || ok {
		t.Errorf("the record still holds ghost.conf (%v, %v)", ok, err)
	}
	if _, ok, err := rec.get("files/a.conf"); err != nil || !ok {
		t.Errorf("the record lacks a.conf (%v, %v)", ok, err)
	}
}

// A record of committed outputs deleted while the agent was down (or
// absent because drift checks were off) knows none of the files committed
// before: the watch renders in full, which repairs those edited meanwhile
// and records them all, rather than leaving them unchecked for good.
func TestDeletedOutputRecordIsRebuiltByAFullRender(t *testing.T) {
	for _, tc := range []struct{ kind, how string }{{FoldMemory, "deleted"}, {FoldDisk, "deleted"}, {FoldDisk, "emptied"}} {
		kind := tc.kind
		t.Run(kind+" "+tc.how, func(t *testing.T) {
			f := newFixture(t)
			f.put("cfg", "files.a.conf", "alpha")
			f.put("cfg", "files.b.conf", "bravo")
			cfg := f.config(filesConfig) // drift checked at start, then every 5m
			cfg.Watches[0].Fold = kind
			a, stop := f.start(cfg)
			waitReady(t, a)
			stop()
			watchDir := filepath.Join(f.dir, "data", "watches", "cfg")
			if err := os.RemoveAll(outputRecordPath(watchDir, kind)); err != nil {
				t.Fatal(err)
			}
			if tc.how == "emptied" { // Pebble would open it as a new database
				if err := os.Mkdir(outputRecordPath(watchDir, kind), 0o700); err != nil {
					t.Fatal(err)
				}
			}
			out := filepath.Join(f.dir, "out")
			if err := os.WriteFile(filepath.Join(out, "a.conf"), []byte("edited"), 0o644); err != nil {
				t.Fatal(err)
			}

			a, stop = f.start(cfg)
			waitReady(t, a)
			stop()
			if got := readFile(filepath.Join(out, "a.conf")); got != "alpha" {
				t.Errorf("a.conf = %q once ready, want it restored", got)
			}
			rec := openTestRecord(t, kind, watchDir, out)
			for _, key := range []string{"files/a.conf", "files/b.conf"} {
				if _, ok, err := rec.get(key); err != nil || !ok {
					t.Errorf("the rebuilt record lacks %s (%v, %v)", key, ok, err)
				}
			}
		})
	}
}

// The full render a lost record asks for is owed until it is done: a start
// whose render fails (here a value over max_file_size) creates the record
// anew, empty, and the next start must render in full all the same (the
// simulator found it unrepaired, seed 6673).
func TestRenderOwedForALostRecordOutlivesAFailedAttempt(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "alpha")
	cfg := f.config(strings.Replace(filesConfig, `config = { prefix = "files.", hook = "changed" }`, `config = { prefix = "files.", hook = "changed" }
  limits { max_file_size = 64 }`, 1))
	a, stop := f.start(cfg)
	waitReady(t, a)
	stop()
	watchDir := filepath.Join(f.dir, "data", "watches", "cfg")
	if err := os.Remove(outputRecordPath(watchDir, FoldMemory)); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(f.dir, "out")
	if err := os.WriteFile(filepath.Join(out, "a.conf"), []byte("edited"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.put("cfg", "files.big", strings.Repeat("x", 100))
	a, stop = f.start(cfg)
	waitFor(t, "the render to fail on the big value", func() bool { return a.Status()[0].Failures >= 1 })
	stop()

	f.put("cfg", "files.big", "small")
	a, stop = f.start(cfg)
	defer stop()
	waitReady(t, a)
	if got := readFile(filepath.Join(out, "a.conf")); got != "alpha" {
		t.Errorf("a.conf = %q once ready, want it restored", got)
	}
}

// The full render a record starting empty owes is owed (owe returns)
// before that record exists, missing or quarantined: a stop in between
// would otherwise leave an empty record and nothing owed (review finding).
func TestOweComesBeforeTheNewRecord(t *testing.T) {
	for _, damage := range []string{"missing", "garbage"} {
		t.Run(damage, func(t *testing.T) {
			f := newFixture(t)
			a := f.agent(driftConfig(f))
			r := a.watches[0]
			if err := os.MkdirAll(r.dir, 0o700); err != nil {
				t.Fatal(err)
			}
			path := outputRecordPath(r.dir, FoldMemory)
			if damage == "garbage" {
				writeGarbage(t, path)
			}
			stopped := errors.New("stopped before the render key was saved")
			if _, err := openDriftRecord(t.Context(), r, nil, func() error {
				if _, err := os.Stat(path); damage == "missing" && err == nil {
					t.Error("the new record exists before the render is owed")
				}
				return stopped
			}); !errors.Is(err, stopped) {
				t.Fatalf("openDriftRecord = %v, want owe's error", err)
			}
			if _, err := os.Stat(path); damage == "missing" && err == nil {
				t.Error("a record was created although owing the render failed")
			}
			if b, err := os.ReadFile(path); damage == "garbage" && (err != nil || strings.HasPrefix(string(b), "PGSS")) {
				t.Errorf("the damaged record was replaced (%q, %v) although owing the render failed", b, err)
			}
		})
	}
}

// Outputs already in place as rendered when the record starts out empty (a
// data_dir wiped, as local state is a cache; a host provisioned with its
// files) stage nothing at the first render, and must be recorded all the
// same: drift of them is repaired like drift of files the agent wrote.
func TestDriftOfOutputsInPlaceBeforeTheRecordIsRepaired(t *testing.T) {
	for _, kind := range []string{FoldMemory, FoldDisk} {
		t.Run(kind, func(t *testing.T) {
			f := newFixture(t)
			f.put("cfg", "files.a.conf", "alpha")
			f.put("cfg", "files.b.conf", "bravo")
			cfg := driftConfig(f)
			cfg.Watches[0].Fold = kind
			a, stop := f.start(cfg)
			waitReady(t, a)
			stop()
			if err := os.RemoveAll(filepath.Join(f.dir, "data")); err != nil {
				t.Fatal(err)
			}

			a, stop = f.start(cfg)
			defer stop()
			waitReady(t, a)
			out := filepath.Join(f.dir, "out")
			if err := os.WriteFile(filepath.Join(out, "b.conf"), []byte("tampered"), 0o644); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "b.conf restored", func() bool { return readFile(filepath.Join(out, "b.conf")) == "bravo" })
			waitFor(t, "the repair counted", func() bool { return driftRepaired(a) == 1 })
		})
	}
}

func TestDriftDuringARetriedBatchIsRepairedByItsNextAttempt(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "alpha")
	// The hook fails while $DIR/broken exists.
	broken := filepath.Join(f.dir, "broken")
	cfg := f.config(strings.Replace(strings.Replace(filesConfig, `batch { window = "20ms" }`, `batch { window = "20ms" }
  drift_check = "200ms"`, 1), `"echo $SLIPAGENT_REVISION >> $DIR/hooks.log"`, `"test ! -e $DIR/broken && echo $SLIPAGENT_REVISION >> $DIR/hooks.log"`, 1))
	a, _ := f.start(cfg)
	waitReady(t, a)
	out := filepath.Join(f.dir, "out")

	// A batch whose hook fails is retried; the fold holds it already, so
	// a drift render now would render what is not applied yet: the repair
	// is left to the batch's next attempt, which renders everything.
	if err := os.WriteFile(broken, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f.put("cfg", "files.b.conf", "bravo")
	waitFor(t, "the batch to fail", func() bool { return a.Status()[0].Failures >= 1 })
	if err := os.Remove(filepath.Join(out, "a.conf")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a.conf restored while the batch is retried", func() bool { return readFile(filepath.Join(out, "a.conf")) == "alpha" })
	if s := a.Status()[0]; s.Healthy() {
		t.Errorf("the hook still fails, yet the watch is healthy: %+v", s)
	}
	if err := os.Remove(broken); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "recovery", func() bool { s := a.Status()[0]; return s.Healthy() && s.Failures == 0 })
}

func TestDriftRepairWhoseHookFailedRunsItWithoutABatch(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "alpha")
	// The hook fails while $DIR/broken exists.
	broken := filepath.Join(f.dir, "broken")
	out := filepath.Join(f.dir, "out")
	cfg := f.config(strings.Replace(strings.Replace(filesConfig, `batch { window = "20ms" }`, `batch { window = "20ms" }
  drift_check = "200ms"`, 1), `"echo $SLIPAGENT_REVISION >> $DIR/hooks.log"`, `"test ! -e $DIR/broken && echo $SLIPAGENT_REVISION >> $DIR/hooks.log"`, 1))
	a, _ := f.start(cfg)
	waitReady(t, a)
	if hooks := lines(filepath.Join(f.dir, "hooks.log")); len(hooks) != 1 {
		t.Fatalf("hooks after the initial render: %q", hooks)
	}

	if err := os.WriteFile(broken, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(out, "a.conf")); err != nil {
		t.Fatal(err)
	}
	// The repair commits a.conf, then its hook fails and stays owed; the
	// file is in place, so only the failed repair makes the next checks
	// render (and run the owed hook) again.
	hookFailed := map[string]string{"watch": "cfg", "hook": "changed", "kind": "hook", "result": "error"}
	waitFor(t, "the repair's hook to fail", func() bool { return counter(a, "slipagent_commands_total", hookFailed) >= 1 })
	if got := readFile(filepath.Join(out, "a.conf")); got != "alpha" {
		t.Fatalf("a.conf = %q after the repair", got)
	}
	if err := os.Remove(broken); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the repair's hook run once it works", func() bool { return len(lines(filepath.Join(f.dir, "hooks.log"))) == 2 })
	// The journal is cleared just after the hook returns.
	waitFor(t, "the hook journal to be cleared after success", func() bool {
		_, err := os.Stat(filepath.Join(f.dir, "data", "watches", "cfg", journalFile))
		return errors.Is(err, fs.ErrNotExist)
	})
}

func TestDriftAgainRightAfterRepairIsReportedNotCounted(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "alpha")
	// The hook, which runs after every commit that changed files, spoils
	// a.conf once while $DIR/tamper exists.
	tamper := filepath.Join(f.dir, "tamper")
	out := filepath.Join(f.dir, "out")
	cfg := f.config(strings.Replace(strings.Replace(filesConfig, `batch { window = "20ms" }`, `batch { window = "20ms" }
  drift_check = "200ms"`, 1), `"echo $SLIPAGENT_REVISION >> $DIR/hooks.log"`, `"if [ -e $DIR/tamper ]; then rm $DIR/tamper; echo evil > $DIR/out/a.conf; fi"`, 1))
	logs := &logtest.Buffer{}
	a, err := New(cfg, Options{
		Logger:         slog.New(slog.NewTextHandler(io.MultiWriter(testWriter{t}, logs), nil)),
		Notify:         func(string) error { return nil },
		PluginCacheDir: plugintest.CacheDir(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	waitReady(t, a)

	if err := os.WriteFile(tamper, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(out, "a.conf")); err != nil {
		t.Fatal(err)
	}
	// The first repair is spoiled at once: reported, not counted (the count
	// is taken before the report).
	waitFor(t, "the spoiled repair reported", func() bool { return strings.Contains(logs.String(), "changed again right after its repair") })
	if n := driftRepaired(a); n != 0 {
		t.Errorf("after a spoiled repair slipagent_drift_repaired_total = %v, want 0", n)
	}
	// The next check repairs it for good.
	waitFor(t, "a.conf restored for good", func() bool {
		return readFile(filepath.Join(out, "a.conf")) == "alpha" && driftRepaired(a) == 1
	})
}

func openTestRecord(t *testing.T, kind, dir, out string) *outputRecord {
	t.Helper()
	rec, err := openOutputRecord(t.Context(), dir, kind, map[string]host.Output{"files": {Dir: out}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Close() })
	return rec
}

func mustStat(t *testing.T, path string) os.FileInfo {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

// stageFile writes content to a staging file beside target, as the host
// does, and returns its StagedFile.
func stageFile(t *testing.T, out, path, content string) host.StagedFile {
	t.Helper()
	target := filepath.Join(out, path)
	tmp := filepath.Join(out, ".staged-"+path)
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return host.StagedFile{Output: "files", Path: path, File: tmp, Target: target}
}

func TestOutputRecordPutRemoveReopen(t *testing.T) {
	for _, kind := range []string{FoldMemory, FoldDisk} {
		t.Run(kind, func(t *testing.T) { testOutputRecord(t, kind) })
	}
}

// The record of either kind can be synced (its writes do not wait for
// their fsync): synced then makes it durable before the renames. That Sync
// is durable is the folds' own tests' (snapshot's TestLogSyncModes,
// pebblefold's TestSyncMakesAppliesDurable).
func TestOutputRecordsSyncBeforeTheRenames(t *testing.T) {
	for _, kind := range []string{FoldMemory, FoldDisk} {
		rec := openTestRecord(t, kind, t.TempDir(), t.TempDir())
		if _, ok := rec.log.(syncer); !ok {
			t.Errorf("the %s record (%T) has no Sync: synced cannot make it durable before the renames", kind, rec.log)
		}
	}
}

func testOutputRecord(t *testing.T, kind string) {
	dir, out := t.TempDir(), t.TempDir()
	ctx := context.Background()
	rec := openTestRecord(t, kind, dir, out)

	// A commit of two files, as commit does it: hashed while staged and
	// marked pending before the renames, settled with their ctime (which a
	// rename moves) after them.
	staged := []host.StagedFile{stageFile(t, out, "a", "alpha"), stageFile(t, out, "b", "bravo")}
	updates := rec.hash(staged)
	rec.committed(ctx, staged, updates)
	rec.synced(ctx)
	time.Sleep(10 * time.Millisecond) // the renames a clock tick after the staging
	for _, s := range staged {
		if err := os.Rename(s.File, s.Target); err != nil {
			t.Fatal(err)
		}
	}
	rec.settled(ctx, staged, updates)
	// A second commit removes b: the record marks it pending until the
	// removal is done (a commit that fails before it leaves b recorded, and
	// checked), then drops it.
	removal := []host.StagedFile{{Output: "files", Path: "b", Target: filepath.Join(out, "b"), Remove: true}}
	removed := rec.hash(removal)
	rec.committed(ctx, removal, removed)
	rec.synced(ctx)
	if fr, ok, err := rec.get("files/b"); err != nil || !ok || !fr.pending || !fr.gone {
		t.Fatalf("record of b before its removal: %+v, %v, %v; want it pending removal", fr, ok, err)
	}
	if err := os.Remove(filepath.Join(out, "b")); err != nil {
		t.Fatal(err)
	}
	rec.settled(ctx, removal, removed)
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}

	rec = openTestRecord(t, kind, dir, out)
	var keys []string
	if err := rec.each(ctx, func(key string, _ fileRecord) error { keys = append(keys, key); return nil }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(keys, ",") != "files/a" {
		t.Fatalf("record after reopening holds %q, want only files/a", keys)
	}
	fr, ok, err := rec.get("files/a")
	if err != nil || !ok {
		t.Fatalf("get files/a: %v, %v", ok, err)
	}
	a := filepath.Join(out, "a")
	if path, owned, ok := rec.target("files/a"); !ok || owned || path != a {
		t.Errorf("target of files/a = %q, %v, %v", path, owned, ok)
	}
	if reason, now, err := driftOf(a, false, fr); reason != "" || now != nil || err != nil {
		t.Errorf("untouched file: drift %q, %v, %v", reason, now, err)
	}

	// Touched: the same content, a new fingerprint to record.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(a, later, later); err != nil {
		t.Fatal(err)
	}
	if reason, now, err := driftOf(a, false, fr); reason != "" || now == nil || err != nil || now.sum != fr.sum {
		t.Errorf("touched file: drift %q, %v, %v", reason, now, err)
	}
	// A chown is drift only where the output declares an owner.
	if os.Getuid() == 0 {
		if err := os.Chown(a, 12345, 12345); err != nil {
			t.Fatal(err)
		}
		if reason, _, _ := driftOf(a, true, fr); reason != "owner changed" {
			t.Errorf("chown of an owned file: drift %q, want owner changed", reason)
		}
		if reason, now, err := driftOf(a, false, fr); reason != "" || now == nil || err != nil {
			t.Errorf("chown where no owner is declared: drift %q, %v, %v", reason, now, err)
		}
		if err := os.Chown(a, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	// Edited in place, the size kept and the mtime put back (touch -r):
	// only the ctime tells.
	time.Sleep(10 * time.Millisecond)
	if err := os.WriteFile(a, []byte("ALPHA"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(a, time.Unix(0, fr.mtime), time.Unix(0, fr.mtime)); err != nil {
		t.Fatal(err)
	}
	if reason, _, _ := driftOf(a, false, fr); changeTime(mustStat(t, a)) != 0 && reason != "content changed" {
		t.Errorf("file edited in place, size and mtime kept: drift %q, want content changed", reason)
	}
	// Same size and mtime, other content: the inode tells (a new file).
	if err := os.WriteFile(a+".new", []byte("ALPHA"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(a+".new", time.Unix(0, fr.mtime), time.Unix(0, fr.mtime)); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(a+".new", a); err != nil {
		t.Fatal(err)
	}
	if reason, _, _ := driftOf(a, false, fr); reason != "content changed" {
		t.Errorf("replaced file: drift %q, want content changed", reason)
	}
	if err := os.Chmod(a, 0o600); err != nil {
		t.Fatal(err)
	}
	if reason, _, _ := driftOf(a, false, fr); reason != "mode changed" {
		t.Errorf("chmod: drift %q, want mode changed", reason)
	}
	if err := os.Remove(a); err != nil {
		t.Fatal(err)
	}
	if reason, _, _ := driftOf(a, false, fr); reason != "missing" {
		t.Errorf("removed file: drift %q, want missing", reason)
	}
	// An output the watch no longer declares names no file.
	if _, _, ok := rec.target("gone/a"); ok {
		t.Error("a key of an undeclared output has a target")
	}
}

func TestDriftCheckSetting(t *testing.T) {
	dir := t.TempDir()
	for src, want := range map[string]time.Duration{"": DefaultDriftCheck, `drift_check = "0"`: 0, `drift_check = "0s"`: 0, `drift_check = "90s"`: 90 * time.Second} {
		cfg, err := Parse(filepath.Join(dir, "agent.hcl"), []byte(`
plugin "p" { module = "p.wasm" }
watch "w" {
  bucket = "b"
  plugin = "p"
  `+src+`
}`))
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if got := cfg.Watches[0].DriftCheck; got != want {
			t.Errorf("%s: DriftCheck = %v, want %v", src, got, want)
		}
	}
	if _, err := Parse("agent.hcl", []byte(`
plugin "p" { module = "p.wasm" }
watch "w" {
  bucket      = "b"
  plugin      = "p"
  drift_check = "-1s"
}`)); err == nil || !strings.Contains(err.Error(), "drift_check") && !strings.Contains(err.Error(), "duration") {
		t.Errorf("a negative drift_check: %v, want an error", err)
	}
}

// A record kept in Pebble preallocates a log for a small memtable: with a
// fold's 64 MiB default, every disk-fold watch took a second 70 MB log
// beside its fold's, and filled a small data_dir (audit finding).
func TestDiskOutputRecordPreallocatesASmallLog(t *testing.T) {
	allocated := func(dir string) int64 {
		var n int64
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			var st syscall.Stat_t
			if syscall.Stat(p, &st) == nil {
				n += st.Blocks * 512
			}
			return nil
		})
		return n
	}
	// The contrast: a fold with the default memtable preallocates its log.
	foldDir := filepath.Join(t.TempDir(), "fold")
	fold, err := pebblefold.Open(foldDir, pebblefold.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Pebble preallocates a log at a write that finds it not empty.
	ctx := context.Background()
	one := []kvcore.Update{{Op: kvcore.OpPut, Key: "files/a", Value: []byte("x")}}
	if err := errors.Join(fold.Apply(ctx, one, kvcore.Cursor{}), fold.Apply(ctx, one, kvcore.Cursor{}), fold.Close()); err != nil {
		t.Fatal(err)
	}
	if n := allocated(foldDir); n < 64<<20 {
		t.Skipf("the file system of %s does not preallocate Pebble's log (%d bytes allocated)", foldDir, n)
	}
	dir := t.TempDir()
	rec := openTestRecord(t, FoldDisk, dir, t.TempDir())
	if err := errors.Join(rec.write(ctx, one), rec.sync(ctx), rec.write(ctx, one), rec.sync(ctx), rec.Close()); err != nil {
		t.Fatal(err)
	}
	if n := allocated(filepath.Join(dir, outputsRecordDir)); n > 2*recordMemTableBytes {
		t.Errorf("the open record takes %d bytes of disk, want at most %d", n, 2*recordMemTableBytes)
	}
}

func TestOutputRecordOfTheOtherFoldKindIsRemoved(t *testing.T) {
	dir, out := t.TempDir(), t.TempDir()
	exists := func(name string) bool {
		_, err := os.Stat(filepath.Join(dir, name))
		return err == nil
	}
	if err := openTestRecord(t, FoldMemory, dir, out).Close(); err != nil {
		t.Fatal(err)
	}
	if err := openTestRecord(t, FoldDisk, dir, out).Close(); err != nil {
		t.Fatal(err)
	}
	if exists(outputsRecordFile) || exists(outputsRecordFile+".lock") || !exists(outputsRecordDir) {
		t.Errorf("after opening the disk record: log %v, lock %v, pebble %v; want only pebble", exists(outputsRecordFile), exists(outputsRecordFile+".lock"), exists(outputsRecordDir))
	}
	// drift_check = "0" removes both.
	if err := removeOutputRecords(dir, ""); err != nil {
		t.Fatal(err)
	}
	if exists(outputsRecordDir) {
		t.Error("the disk record survived turning drift checks off")
	}
}
