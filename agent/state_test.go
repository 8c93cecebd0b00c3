package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipstreamkv/slipstream/internal/logtest"
)

// A fold that no state.json ties to the watch (one imported by hand with
// `slipagent snapshot import`, or whose state file was removed) is
// discarded with a warning that says how to start a host from an artifact,
// and the watch syncs from the bucket.
func TestAFoldWithoutStateIsDiscardedLoudly(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "1")
	a, stop := f.start(f.config(filesConfig))
	waitFor(t, "the first render", func() bool { return a.Ready() && readFile(filepath.Join(f.dir, "out", "a.conf")) == "1" })
	stop()
	dir := filepath.Join(f.dir, "data", "watches", "cfg")
	if err := os.Remove(filepath.Join(dir, stateFile)); err != nil {
		t.Fatal(err)
	}
	f.put("cfg", "files.a.conf", "2")
	var logs logtest.Buffer
	a, _ = f.startLogging(f.config(filesConfig), &logs)
	waitFor(t, "the sync from the bucket", func() bool { return a.Ready() && readFile(filepath.Join(f.dir, "out", "a.conf")) == "2" })
	if want := `level=WARN msg="discarding a fold kept for another bucket, prefixes or fold kind, or that no state.json describes`; !strings.Contains(logs.String(), want) {
		t.Errorf("logs lack %s", want)
	}
}

// A fold that is gone while the state file says a checkpoint was taken on
// it (removed by hand, lost with its disk) is rebuilt from the bucket, with
// a warning: it is not a fresh watch.
func TestAMissingFoldIsRebuiltLoudly(t *testing.T) {
	for _, fold := range []string{FoldMemory, FoldDisk} {
		t.Run(fold, func(t *testing.T) {
			f := newFixture(t)
			f.put("cfg", "files.a.conf", "1")
			src := strings.Replace(filesConfig, "plugin = \"files\"\n  batch", "plugin = \"files\"\n  fold   = \""+fold+"\"\n  batch", 1)
			a, stop := f.start(f.config(src))
			waitFor(t, "the first render", func() bool { return a.Ready() && readFile(filepath.Join(f.dir, "out", "a.conf")) == "1" })
			stop()
			path := filepath.Join(f.dir, "data", "watches", "cfg", logFoldFile)
			if fold == FoldDisk {
				path = filepath.Join(f.dir, "data", "watches", "cfg", diskFoldDir)
			}
			if err := os.RemoveAll(path); err != nil {
				t.Fatal(err)
			}
			f.put("cfg", "files.a.conf", "2")
			var logs logtest.Buffer
			a, _ = f.startLogging(f.config(src), &logs)
			waitFor(t, "the sync from the bucket", func() bool { return a.Ready() && readFile(filepath.Join(f.dir, "out", "a.conf")) == "2" })
			if want := `level=WARN msg="the watch's fold is missing; syncing it from the bucket" watch=cfg fold=` + path; !strings.Contains(logs.String(), want) {
				t.Errorf("logs lack %s", want)
			}
		})
	}
}
