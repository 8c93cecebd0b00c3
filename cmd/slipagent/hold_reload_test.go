package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/internal/natstest"
)

// TestReloadJudgesAFilesHoldAgain: narrowing a watch's prefixes holds it
// (the render would remove most output files), and status counts output
// files, not keys. A reload that restarts the watch judges the hold again
// with the new configuration: one that still removes most files keeps it
// held with the new count, one that removes none lifts it, without a
// `resync --confirm`.
func TestReloadJudgesAFilesHoldAgain(t *testing.T) {
	srv := natstest.Run(t)
	dir := filesAgentDir(t)
	// 10 keys under files.a., 30 under files.b. (5 of them under files.b.x.).
	for i := range 40 {
		key := fmt.Sprintf("files.a.%02d.conf", i)
		switch {
		case i >= 15:
			key = fmt.Sprintf("files.b.y.%02d.conf", i)
		case i >= 10:
			key = fmt.Sprintf("files.b.x.%02d.conf", i)
		}
		if code, _, errOut := runCmd(t, "kv", "-server", srv.URL(), "put", "cfg", key, "v"); code != exitOK {
			t.Fatalf("kv put %s = %d %s", key, code, errOut)
		}
	}
	out := filepath.Join(dir, "out")
	outputFiles := func() int {
		entries, _ := os.ReadDir(out)
		n := 0
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".conf") {
				n++
			}
		}
		return n
	}
	configure := func(prefixes string) string {
		return filesAgentConfig(t, dir, srv.URL(), "", "prefixes = "+prefixes)
	}
	cfg := configure(`["files.a.", "files.b."]`)
	p := startSlipagent(t, dir, "run", "-config", cfg)
	waitStatus(t, "-config", cfg)
	if n := outputFiles(); n != 40 {
		t.Fatalf("%d output files after the first render, want 40", n)
	}
	reload := func(prefixes string) {
		t.Helper()
		configure(prefixes)
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}

	reload(`["files.a."]`)
	waitStatusFailing(t, cfg, "cfg: held since", "30 of 40 output files would be removed")
	_, before, _ := runCmd(t, "status", "-config", cfg)
	since := before[strings.Index(before, "held since"):]
	since = since[:strings.Index(since, ": ")]

	reload(`["files.a.", "files.b.x."]`)
	waitStatusFailing(t, cfg, since+": 25 of 40 output files would be removed")

	reload(`["files.a.", "files.b."]`)
	deadline := time.Now().Add(time.Minute)
	for {
		code, st, errOut := runCmd(t, "status", "-config", cfg)
		if code == exitOK && !strings.Contains(st, "held") {
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(p.log)
			t.Fatalf("the reload back to the first prefixes left the watch held: status = %d\n%s%s\nlog:\n%s", code, st, errOut, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := outputFiles(); n != 40 {
		t.Errorf("%d output files once the hold was lifted, want 40", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "watches", "cfg", "held.json")); !os.IsNotExist(err) {
		t.Errorf("held.json is still there (%v)", err)
	}
}
