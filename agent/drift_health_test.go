package agent

import (
	"os"
	"path/filepath"
	"testing"
)

// An output directory removed by hand (rm -rf) is created again and
// rendered in full at the next drift check, not left missing until someone
// creates it.
func TestDriftRepairRecreatesARemovedOutputDirectory(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "alpha")
	f.put("cfg", "files.sub/b.conf", "bravo")
	a, _ := f.start(driftConfig(f))
	waitReady(t, a)
	out := filepath.Join(f.dir, "out")

	if err := os.RemoveAll(out); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the output directory and its files restored", func() bool {
		return readFile(filepath.Join(out, "a.conf")) == "alpha" && readFile(filepath.Join(out, "sub", "b.conf")) == "bravo"
	})
	waitFor(t, "the watch ready after the repair", func() bool { s := a.Status()[0]; return s.Ready && s.Failures == 0 })
}
