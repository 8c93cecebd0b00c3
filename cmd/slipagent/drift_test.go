package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipstreamkv/slipstream/internal/natstest"
)

// A drift repair the host refuses (an output subdirectory replaced by a
// symlink leaving the output) shows in `slipagent status`: the watch is
// failing, exit 1, naming the drift repair and why. Once the symlink is gone
// the next drift check repairs the files and status exits 0 again.
func TestStatusShowsAFailingDriftRepair(t *testing.T) {
	srv := natstest.Run(t)
	dir := filesAgentDir(t)
	putRev(t, srv.URL(), "files.a.conf", "alpha")
	putRev(t, srv.URL(), "files.sub/b.conf", "bravo")
	cfg := filesAgentConfig(t, dir, srv.URL(), "", `drift_check = "1s"`)
	runAgent(t, cfg)
	waitStatus(t, "-config", cfg)
	sub := filepath.Join(dir, "out", "sub")
	if got, _ := os.ReadFile(filepath.Join(sub, "b.conf")); string(got) != "bravo" {
		t.Fatalf("sub/b.conf = %q after the first render", got)
	}

	if err := os.RemoveAll(sub); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(t.TempDir(), sub); err != nil {
		t.Fatal(err)
	}
	waitStatusFailing(t, cfg, "failing", "repairing drift", "leaves the output directory")

	if err := os.Remove(sub); err != nil {
		t.Fatal(err)
	}
	if out := waitStatus(t, "-config", cfg); !strings.Contains(out, "ready") {
		t.Errorf("status once the symlink is gone:\n%s", out)
	}
	if got, _ := os.ReadFile(filepath.Join(sub, "b.conf")); string(got) != "bravo" {
		t.Errorf("sub/b.conf = %q once the symlink is gone, want it repaired", got)
	}
}
