package agent

import (
	"path/filepath"
	"testing"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// A watch whose state says it was folding records at or before its cursor
// when it stopped (a sync or a reconciliation's fixes, not committed)
// syncs first on its next start, and clears the mark once that sync is
// committed: the state file carries the mark between the loop's runs.
func TestRestartWithTheFoldingMarkSyncsAndClearsIt(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "1")
	dir, st := f.renderedOnce()
	if st.Folding {
		t.Fatal("the mark is set after a committed first sync")
	}
	st.Folding = true
	if err := st.save(dir); err != nil {
		t.Fatal(err)
	}
	a, _ := f.start(f.config(filesConfig))
	waitFor(t, "the restarted watch ready", a.Ready)
	waitFor(t, "the mark cleared by the sync's commit", func() bool {
		st, err := loadState(dir)
		return err == nil && !st.Folding
	})
	if got := readFile(filepath.Join(f.dir, "out", "a.conf")); got != "1" {
		t.Errorf("a.conf = %q after the sync, want 1", got)
	}
}

// The cursor a watch's session resumed from without reconciling its fold
// with the bucket yet is kept in state.json, so that the reconciliation
// after a restart also reads back what the fold held before it
// (kvcore.AppliedConfig.Unreconciled): a first sync leaves none, a resume
// records its cursor before it folds a record.
func TestTheStateKeepsWhereAnUnreconciledSessionResumed(t *testing.T) {
	f := newFixture(t)
	rev := f.put("cfg", "files.a.conf", "1")
	dir, st := f.renderedOnce()
	if !st.Unreconciled.IsNone() {
		t.Errorf("after a sync, the state records an unreconciled session at %v", st.Unreconciled)
	}
	a, _ := f.start(f.config(filesConfig))
	waitFor(t, "the restarted watch ready", a.Ready)
	st, err := loadState(dir)
	if err != nil || st.Unreconciled != kvcore.RevisionCursor(rev) {
		t.Errorf("after a resume from revision %d, the state records %v (%v)", rev, st.Unreconciled, err)
	}
}

// renderedOnce runs the files watch until it rendered a.conf = 1, stops
// it, and returns its directory and state.
func (f *fixture) renderedOnce() (string, watchState) {
	f.t.Helper()
	a, stop := f.start(f.config(filesConfig))
	waitFor(f.t, "the first render", func() bool { return a.Ready() && readFile(filepath.Join(f.dir, "out", "a.conf")) == "1" })
	stop()
	dir := filepath.Join(f.dir, "data", "watches", "cfg")
	st, err := loadState(dir)
	if err != nil {
		f.t.Fatal(err)
	}
	return dir, st
}
