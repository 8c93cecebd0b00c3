package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// slowHookConfig is filesConfig with a hook that runs at most once an hour.
var slowHookConfig = strings.Replace(filesConfig, `hook "changed" {`, `hook "changed" {
    min_interval = "1h"`, 1)

// owingAHook starts an agent on slowHookConfig and commits a second change
// whose hook waits for its min_interval; it returns that change's revision.
func (f *fixture) owingAHook() (*Agent, uint64) {
	f.t.Helper()
	f.put("cfg", "files.a.conf", "1")
	a, _ := f.start(f.config(slowHookConfig))
	waitFor(f.t, "the first sync", func() bool { return a.Ready() })
	rev := f.put("cfg", "files.a.conf", "2")
	waitFor(f.t, "the second change's hook to wait for its interval", func() bool {
		return pendingRounds(a) == 1 && readFile(filepath.Join(f.dir, "out", "a.conf")) == "2"
	})
	if hooks := lines(filepath.Join(f.dir, "hooks.log")); len(hooks) != 1 {
		f.t.Fatalf("hooks.log = %q, want only the first run", hooks)
	}
	return a, rev
}

// pendingRounds counts the hook rounds of a that wait for their turn.
func pendingRounds(a *Agent) int {
	a.mu.Lock()
	s := a.hooks
	a.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.cmds {
		if c.pending != nil {
			n++
		}
	}
	return n
}

// TestReloadDropsTheScheduledRunOfARemovedHook: a reload that removes a hook
// waiting for its min_interval drops it (the restarted watch logs it as
// dropped): it never runs after the reload.
func TestReloadDropsTheScheduledRunOfARemovedHook(t *testing.T) {
	f := newFixture(t)
	a, rev := f.owingAHook()
	src := strings.Replace(slowHookConfig, `, hook = "changed"`, "", 1)
	src = src[:strings.Index(src, `  hook "changed"`)] + "}\n"
	if err := a.Reload(context.Background(), f.config(src)); err != nil {
		t.Fatal(err)
	}
	journal := filepath.Join(f.dir, "data", "watches", "cfg", journalFile)
	waitFor(t, "the scheduled run to be dropped", func() bool {
		_, err := os.Stat(journal)
		return pendingRounds(a) == 0 && errors.Is(err, os.ErrNotExist) && a.Ready() && a.Status()[0].Revision == rev
	})
	f.put("cfg", "files.a.conf", "3")
	waitFor(t, "the next change", func() bool { return readFile(filepath.Join(f.dir, "out", "a.conf")) == "3" })
	if hooks := lines(filepath.Join(f.dir, "hooks.log")); len(hooks) != 1 {
		t.Errorf("hooks.log = %q, want only the run before the reload", hooks)
	}
}

// TestReloadThatRemovesMinIntervalRunsTheOwedHookAtOnce: the restarted
// watch runs the hook it owes with its new settings, not after the old
// min_interval, and is ready meanwhile rather than starting.
func TestReloadThatRemovesMinIntervalRunsTheOwedHookAtOnce(t *testing.T) {
	f := newFixture(t)
	a, rev := f.owingAHook()
	if err := a.Reload(context.Background(), f.config(filesConfig)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the owed hook to run after the reload", func() bool {
		return slices.Contains(lines(filepath.Join(f.dir, "hooks.log")), fmt.Sprint(rev)) && a.Ready() && a.Status()[0].Revision == rev
	})
}
