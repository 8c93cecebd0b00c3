package agent

import (
	"path/filepath"
	"testing"
)

// A watch whose state says it was folding records at or before its cursor
// when it stopped (a sync or a reconciliation's fixes, not committed)
// syncs first on its next start, and clears the mark once that sync is
// committed: the state file carries the mark between the loop's runs.
func TestRestartWithTheFoldingMarkSyncsAndClearsIt(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "1")
	a, stop := f.start(f.config(filesConfig))
	waitFor(t, "the first render", func() bool { return a.Ready() && readFile(filepath.Join(f.dir, "out", "a.conf")) == "1" })
	stop()

	dir := filepath.Join(f.dir, "data", "watches", "cfg")
	st, err := loadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Folding {
		t.Fatal("the mark is set after a committed first sync")
	}
	st.Folding = true
	if err := st.save(dir); err != nil {
		t.Fatal(err)
	}
	a, _ = f.start(f.config(filesConfig))
	waitFor(t, "the restarted watch ready", a.Ready)
	waitFor(t, "the mark cleared by the sync's commit", func() bool {
		st, err := loadState(dir)
		return err == nil && !st.Folding
	})
	if got := readFile(filepath.Join(f.dir, "out", "a.conf")); got != "1" {
		t.Errorf("a.conf = %q after the sync, want 1", got)
	}
}
