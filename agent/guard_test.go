package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/snapshot"
)

// putFiles puts n keys files.kNN.conf into bucket cfg and returns the last
// revision.
func (f *fixture) putFiles(n int) uint64 {
	var last uint64
	for i := range n {
		last = f.put("cfg", fmt.Sprintf("files.k%02d.conf", i), fmt.Sprint(i))
	}
	return last
}

// outputFiles counts the files the files plugin wrote.
func (f *fixture) outputFiles() int {
	entries, _ := os.ReadDir(filepath.Join(f.dir, "out"))
	n := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".conf") {
			n++
		}
	}
	return n
}

// guardConfig is filesConfig with a batch window long enough for a test's
// deletions to land in one batch.
var guardConfig = strings.Replace(filesConfig, `window = "20ms"`, `window = "500ms"`, 1)

// heldNow reports whether the watch holds a batch in this run of the agent.
func heldNow(a *Agent) bool {
	s := a.Status()[0]
	return s.State == stateHeld && s.Held != nil && !s.Held.Checked.IsZero()
}

func TestGuardHoldsMassDeletionUntilConfirmed(t *testing.T) {
	f := newFixture(t)
	last := f.putFiles(20)
	cfg := f.config(guardConfig)
	a, stop := f.start(cfg)
	waitFor(t, "the first render", func() bool { return a.Ready() && f.outputFiles() == 20 })

	for i := range 20 {
		f.delete("cfg", fmt.Sprintf("files.k%02d.conf", i))
	}
	waitFor(t, "the watch to hold the deletion", func() bool { return heldNow(a) })
	s := a.Status()[0]
	// The deletions normally land in one batch; a slow machine may let a
	// first few through below min_deletes.
	if s.Held.Removals < 10 || s.Held.KeysBefore != s.Held.Removals || s.Ready || s.Revision >= last+20 {
		t.Fatalf("held status: %+v (held %+v), want every remaining key held before revision %d", s, s.Held, last+20)
	}
	held := s.Held.KeysBefore
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	code, body := readyz(t, srv.URL)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "resync --confirm cfg") {
		t.Errorf("/readyz while held = %d %s", code, body)
	}
	if n := f.outputFiles(); n != held {
		t.Fatalf("%d outputs left while held, want all %d", n, held)
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{`slipagent_watch_held{bucket="cfg",watch="cfg"} 1`, `slipagent_watch_state{bucket="cfg",state="held",watch="cfg"} 1`, `slipagent_watch_ready{bucket="cfg",watch="cfg"} 0`} {
		if !strings.Contains(string(metrics), m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	if err := ConfirmHold(cfg, "nope"); !errors.Is(err, ErrUnknownWatch) {
		t.Errorf("ConfirmHold of an unknown watch: %v", err)
	}

	// The hold survives a restart: the fold already lost the keys, but the
	// hold file remembers.
	stop()
	a, _ = f.start(f.config(guardConfig))
	waitFor(t, "the restarted watch to hold again", func() bool { return heldNow(a) })
	if n := f.outputFiles(); n != held {
		t.Fatalf("%d outputs left after a restart while held, want all %d", n, held)
	}

	if err := ConfirmHold(cfg, "cfg"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the confirmed deletion", func() bool { return a.Ready() && f.outputFiles() == 0 })
	if s := a.Status()[0]; s.Held != nil || s.Revision <= last {
		t.Errorf("after confirmation: %+v", s)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "data", "watches", "cfg", heldFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("hold file left after confirmation (%v)", err)
	}
	if err := ConfirmHold(cfg, "cfg"); !errors.Is(err, ErrNotHeld) {
		t.Errorf("ConfirmHold of a watch no longer held: %v", err)
	}

	// A hold file that does not parse cannot be applied: confirming it
	// fails, naming it, and writes no confirmation.
	dir := filepath.Join(f.dir, "data", "watches", "cfg")
	if err := os.WriteFile(filepath.Join(dir, heldFile), []byte("{garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ConfirmHold(cfg, "cfg"); err == nil || !strings.Contains(err.Error(), "held.json is corrupt") {
		t.Errorf("ConfirmHold of a corrupt hold: %v, want it refused", err)
	}
	if _, err := os.Stat(filepath.Join(dir, confirmFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a confirmation was written for a corrupt hold (%v)", err)
	}
}

func TestGuardLetsOrdinaryDeletesThrough(t *testing.T) {
	f := newFixture(t)
	f.putFiles(30)
	a, _ := f.start(f.config(guardConfig))
	waitFor(t, "the first render", func() bool { return a.Ready() && f.outputFiles() == 30 })
	// 12 of 30 is at least min_deletes but below max_delete_fraction.
	for i := range 12 {
		f.delete("cfg", fmt.Sprintf("files.k%02d.conf", i))
	}
	waitFor(t, "the deletions", func() bool { return f.outputFiles() == 18 })
	if s := a.Status()[0]; s.Held != nil || !s.Ready {
		t.Errorf("after ordinary deletes: %+v", s)
	}
}

func TestGuardAllowAppliesMassDeletion(t *testing.T) {
	f := newFixture(t)
	f.putFiles(20)
	src := strings.Replace(filesConfig, `batch { window = "20ms" }`, `batch { window = "20ms" }
  guard { allow = true }`, 1)
	a, _ := f.start(f.config(src))
	waitFor(t, "the first render", func() bool { return a.Ready() && f.outputFiles() == 20 })
	for i := range 20 {
		f.delete("cfg", fmt.Sprintf("files.k%02d.conf", i))
	}
	waitFor(t, "the deletions", func() bool { return f.outputFiles() == 0 })
}

// A bucket re-created empty makes the watch resync; the resync's synthetic
// deletes are held, across a restart (when the fold, already empty, gives
// the new resync nothing to delete), and restoring the bucket releases the
// hold by itself.
func TestGuardHoldsAReCreatedEmptyBucketAndReleasesOnRestore(t *testing.T) {
	f := newFixture(t)
	f.putFiles(20)
	a, stop := f.start(f.config(guardConfig))
	waitFor(t, "the first render", func() bool { return a.Ready() && f.outputFiles() == 20 })

	js := f.jetstream()
	if err := js.DeleteKeyValue(context.Background(), "cfg"); err != nil {
		t.Fatal(err)
	}
	f.put("cfg", "unrelated", "x") // re-creates the bucket, without the files
	waitFor(t, "the resync to be held", func() bool { return heldNow(a) })
	if n := f.outputFiles(); n != 20 {
		t.Fatalf("%d outputs left after the bucket was re-created empty, want all 20", n)
	}
	stop()
	a, _ = f.start(f.config(guardConfig))
	waitFor(t, "the restarted watch to hold again", func() bool { return heldNow(a) })
	if n := f.outputFiles(); n != 20 {
		t.Fatalf("%d outputs left after a restart while held, want all 20", n)
	}

	f.putFiles(20) // someone restores the bucket
	waitFor(t, "the hold to lift by itself", func() bool { return a.Ready() })
	if n := f.outputFiles(); n != 20 {
		t.Errorf("%d outputs after the restore, want 20", n)
	}
}

func TestGuardAndStaleAfterSettings(t *testing.T) {
	base := `
plugin "p" { module = "p.wasm" }
watch "w" {
  bucket = "b"
  plugin = "p"
  output "o" { dir = "/tmp/o" }
  %s
}
`
	parse := func(body string) (*Config, error) {
		return Parse("/etc/slipagent/agent.hcl", []byte(fmt.Sprintf(base, body)))
	}
	cfg, err := parse("")
	if err != nil {
		t.Fatal(err)
	}
	if w := cfg.Watches[0]; w.StaleAfter != DefaultStaleAfter || w.Guard.Fraction != DefaultMaxDeleteFraction || w.Guard.Min != DefaultMinDeletes || w.Guard.Allow {
		t.Errorf("defaults: stale_after %v, guard %+v", w.StaleAfter, w.Guard)
	}
	cfg, err = parse(`stale_after = "0"
  guard {
    max_delete_fraction = 0.25
    min_deletes         = 3
    allow               = true
  }`)
	if err != nil {
		t.Fatal(err)
	}
	if w := cfg.Watches[0]; w.StaleAfter != 0 || w.Guard.Fraction != 0.25 || w.Guard.Min != 3 || !w.Guard.Allow {
		t.Errorf("set: stale_after %v, guard %+v", w.StaleAfter, w.Guard)
	}
	for _, bad := range []string{`stale_after = "soon"`, `guard { max_delete_fraction = 1.5 }`, `guard { max_delete_fraction = 0 }`, `guard { min_deletes = 0 }`} {
		if _, err := parse(bad); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

// The look at commit holds a result that removes most output files even
// when the keys' count looks fine (a bucket replaced by one with other
// keys), and only a confirmation lets it through.
func TestGuardHoldsAResultRemovingMostFiles(t *testing.T) {
	dir := t.TempDir()
	w := &WatchConf{Name: "w", Guard: &GuardConf{Fraction: 0.5, Min: 3}}
	g := &guard{watch: "w", conf: w.Guard, dir: dir, log: slog.New(slog.DiscardHandler), status: newWatchStatus(w, make(chan struct{}, 1), time.Now), now: time.Now}
	files := func() (int, error) { return 8, nil }
	if err := g.checkCommit(2, files); err != nil {
		t.Fatalf("2 of 8 (below min_deletes): %v", err)
	}
	if err := g.checkCommit(4, files); err != nil {
		t.Fatalf("4 of 8 (not above the fraction): %v", err)
	}
	var held *HeldError
	if err := g.checkCommit(5, files); !errors.As(err, &held) || held.Removals != 5 || held.KeysBefore != 8 {
		t.Fatalf("5 of 8: %v, want a HeldError counting 5 of 8", err)
	}
	if _, err := os.Stat(filepath.Join(dir, heldFile)); err != nil {
		t.Fatalf("the hold is not recorded: %v", err)
	}
	if !g.held.Outputs {
		t.Error("a hold taken at commit does not say it counts files")
	}
	if !strings.Contains(held.Error(), "5 of 8 output files") {
		t.Errorf("held error %q, want it to count output files", held.Error())
	}
	if s := g.status.get(); s.Held == nil || !s.Held.Outputs || !strings.Contains(s.Reason, "5 of the watch's 8 output files") {
		t.Errorf("status %+v reason %q, want the hold counting output files", s.Held, s.Reason)
	}
	// Keys coming back do not lift it: only the fold's count would say so.
	g.held.KeysBefore = 8
	if err := os.WriteFile(filepath.Join(dir, confirmFile), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if full, err := g.wait(context.Background(), nil, nil); err != nil || !full || !g.confirmed {
		t.Fatalf("confirmed hold: full %v err %v confirmed %v", full, err, g.confirmed)
	}
	if err := g.checkCommit(5, files); err != nil {
		t.Fatalf("a confirmed hold is held again at commit: %v", err)
	}
	if err := g.committed(); err != nil || g.held != nil || g.confirmed {
		t.Fatalf("committed: %v, held %v confirmed %v", err, g.held, g.confirmed)
	}
}

// newGuardFold returns a fold at revision 20 whose 20 keys the batch it also
// returns deletes (already folded, as WatchApplied does before apply).
func newGuardFold(t *testing.T) (kvcore.Fold, kvcore.Batch) {
	t.Helper()
	ctx := context.Background()
	fold, err := snapshot.Open(filepath.Join(t.TempDir(), "fold.snap"), snapshot.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fold.Close() })
	var puts, deletes []kvcore.Update
	for i := range 20 {
		key := fmt.Sprintf("k%02d", i)
		puts = append(puts, kvcore.Update{Op: kvcore.OpPut, Key: key, Value: []byte("v"), Version: kvcore.RevisionVersion(uint64(i + 1))})
		deletes = append(deletes, kvcore.Update{Op: kvcore.OpDelete, Key: key, Version: kvcore.RevisionVersion(uint64(i + 21))})
	}
	if err := fold.Apply(ctx, puts, kvcore.RevisionCursor(20)); err != nil {
		t.Fatal(err)
	}
	if err := fold.Apply(ctx, deletes, kvcore.RevisionCursor(20)); err != nil {
		t.Fatal(err)
	}
	return fold, kvcore.Batch{Updates: deletes, Cursor: kvcore.RevisionCursor(40)}
}

// A confirmation left from an earlier hold (a crash between lifting a hold
// and removing it, or a confirmation racing the bucket's restore) must not
// confirm the next hold.
func TestGuardIgnoresAnOldConfirmation(t *testing.T) {
	fold, b := newGuardFold(t)
	st, _ := newTestStatus(0)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, confirmFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	g := &guard{watch: "w", conf: &GuardConf{Fraction: 0.5, Min: 10}, scope: kvcore.AllKeys(), dir: dir, log: slog.New(slog.DiscardHandler), status: st, now: time.Now}
	stop, cancel := context.WithCancel(context.Background())
	go func() {
		defer cancel()
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if s := st.get(); s.Held != nil && !s.Held.Checked.IsZero() {
				return
			}
		}
	}()
	full, err := g.check(stop, fold, nil, b)
	if !errors.Is(err, context.Canceled) || full {
		t.Fatalf("check = %v, %v; want it held until stopped", full, err)
	}
	if h := st.get().Held; h == nil || h.Removals != 20 || h.KeysBefore != 20 {
		t.Errorf("held = %+v", h)
	}
}

func TestRemovedKeysCountsKeysLeftRemoved(t *testing.T) {
	u := func(op kvcore.Op, key string) kvcore.Update { return kvcore.Update{Op: op, Key: key} }
	got := removedKeys([]kvcore.Update{
		u(kvcore.OpDelete, "a"), u(kvcore.OpDelete, "a"), // twice: one key
		u(kvcore.OpPurge, "b"),
		u(kvcore.OpDelete, "c"), u(kvcore.OpPut, "c"), // put back
		u(kvcore.OpPut, "d"),
		{Op: kvcore.OpDelete, Key: "e"}, // a synthetic delete (unknown version)
	})
	if got != 3 {
		t.Errorf("removedKeys = %d, want 3 (a, b, e)", got)
	}
}

// A watch that starts with a hold counting output files renders in full for
// the look at commit to judge it again: held again, it keeps its first time
// and takes the new count, and a confirmation given meanwhile stays; a
// result that no longer removes most files lifts it. A hold already
// confirmed is left for wait to apply.
func TestGuardJudgesAFilesHoldAgainAtStart(t *testing.T) {
	dir := t.TempDir()
	w := &WatchConf{Name: "w", Guard: &GuardConf{Fraction: 0.5, Min: 3}}
	g := &guard{watch: "w", conf: w.Guard, dir: dir, log: slog.New(slog.DiscardHandler), status: newWatchStatus(w, make(chan struct{}, 1), time.Now), now: time.Now}
	files := func() (int, error) { return 8, nil }
	if err := g.checkCommit(5, files); err == nil {
		t.Fatal("5 of 8 files: not held")
	}
	since := g.held.Since.Add(-time.Hour)
	g.held.Since = since

	if err := g.reevaluate(); err != nil || !g.released || g.confirmed {
		t.Fatalf("reevaluate: %v, released %v confirmed %v; want a release for the look at commit only", err, g.released, g.confirmed)
	}
	if err := os.WriteFile(filepath.Join(dir, confirmFile), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var held *HeldError
	if err := g.checkCommit(6, files); !errors.As(err, &held) || held.Removals != 6 {
		t.Fatalf("judged again, 6 of 8: %v, want held counting 6", err)
	}
	if !g.held.Since.Equal(since) || g.held.Removals != 6 || g.released {
		t.Errorf("held again: %+v released %v, want the first time and the new count", g.held, g.released)
	}
	if _, err := os.Stat(filepath.Join(dir, confirmFile)); err != nil {
		t.Errorf("a confirmation given while the hold was judged again was dropped: %v", err)
	}
	// Confirmed: the start leaves it to wait.
	if err := g.reevaluate(); err != nil || g.released {
		t.Fatalf("reevaluate of a confirmed hold: %v, released %v", err, g.released)
	}
	if err := os.Remove(filepath.Join(dir, confirmFile)); err != nil {
		t.Fatal(err)
	}

	if err := g.reevaluate(); err != nil || !g.released {
		t.Fatalf("reevaluate: %v, released %v", err, g.released)
	}
	if err := g.checkCommit(1, files); err != nil {
		t.Fatalf("judged again, 1 of 8: %v", err)
	}
	if err := g.committed(); err != nil || g.held != nil || g.status.get().Held != nil {
		t.Fatalf("committed: %v, held %+v", err, g.held)
	}
	if _, err := os.Stat(filepath.Join(dir, heldFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("held.json after the hold was lifted: %v", err)
	}
}
