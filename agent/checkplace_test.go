package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// inPlaceCheck is a check that reads the live files, as `nginx -t` reads
// nginx.conf and what it includes: it refuses any output file holding "bad".
// Run on staged files it would see only the old ones.
const inPlaceCheck = `hook "changed" {
    check_in_place = true
    check = ["sh", "-c", "! cat $DIR/out/*.conf | grep -q bad"]`

func outputNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestCheckInPlaceReadsTheNewFilesAndRestoresTheOld(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "good")
	a, _ := f.start(f.config(strings.Replace(filesConfig, `hook "changed" {`, inPlaceCheck, 1)))
	waitFor(t, "the initial render", func() bool { return a.Ready() })

	// A new file the check reads at its final path, and refuses.
	rev := f.put("cfg", "files.b.conf", "bad news")
	waitFor(t, "the check to refuse the change", func() bool { return a.Status()[0].Failures >= 1 })
	out := filepath.Join(f.dir, "out")
	if got := readFile(filepath.Join(out, "a.conf")); got != "good" {
		t.Errorf("a.conf = %q after a refused check, want the old content", got)
	}
	if names := outputNames(t, out); len(names) != 1 || names[0] != "a.conf" {
		t.Errorf("output files after a refused check: %q, want a.conf alone (no new file, staging or backup)", names)
	}
	if s := a.Status()[0]; s.Revision >= rev || !strings.Contains(s.LastError, "check") {
		t.Errorf("status %+v: want the cursor held before rev %d and the check named", s, rev)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "data", "watches", "cfg", placementFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("placement journal left after the undo (%v)", err)
	}

	last := f.put("cfg", "files.b.conf", "fine")
	waitFor(t, "the fix to land", func() bool { s := a.Status()[0]; return s.Revision == last && s.Ready })
	if got := readFile(filepath.Join(out, "b.conf")); got != "fine" {
		t.Errorf("b.conf = %q", got)
	}
	if names := outputNames(t, out); len(names) != 2 {
		t.Errorf("output files: %q, want a.conf and b.conf (no backup left)", names)
	}
	if hooks := lines(filepath.Join(f.dir, "hooks.log")); len(hooks) != 2 {
		t.Errorf("hooks.log = %q, want the initial render's run and the fix's", hooks)
	}
}

// TestCrashDuringCheckInPlaceRestoresAtStart kills the agent (SIGKILL, from
// inside the check) while the new files are in place. The next start must
// put the old files back before anything else: a retry of the batch alone
// would take the unchecked files in place for the old ones.
func TestCrashDuringCheckInPlaceRestoresAtStart(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "good")
	src := strings.Replace(filesConfig, `hook "changed" {`, `hook "changed" {
    check_in_place = true
    check = ["sh", "-c", "if grep -q bad $DIR/out/a.conf; then if [ ! -e $DIR/crashed ]; then touch $DIR/crashed; kill -KILL $PPID; sleep 5; fi; exit 1; fi"]`, 1)
	cfg := f.config(src)
	a, stop := f.start(cfg)
	waitFor(t, "the initial render", func() bool { return a.Ready() })
	stop()

	rev := f.put("cfg", "files.a.conf", "bad")
	f.runUntilKilled(src, "check")
	out := filepath.Join(f.dir, "out")
	if got := readFile(filepath.Join(out, "a.conf")); got != "bad" {
		t.Fatalf("a.conf = %q at the crash, want the new file in place for the check", got)
	}

	// plan shows the undo the start does, and does not do it: it said "no
	// changes", the batch's file being already in place.
	var plans []*WatchPlan
	if err := f.agent(cfg).Plan(context.Background(), nil, func(p *WatchPlan) error { plans = append(plans, p); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(plans) != 1 || !plans[0].Full || !plans[0].Changed() || !slices.Equal(plans[0].Restored, []string{filepath.Join(out, "a.conf")}) || len(plans[0].Files) != 0 {
		t.Errorf("plan after the crash: %+v; want a full render restoring a.conf, then writing it back (no file change)", plans)
	}
	if got := readFile(filepath.Join(out, "a.conf")); got != "bad" {
		t.Errorf("a.conf = %q after plan, want it left as it was", got)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "data", "watches", "cfg", placementFile)); err != nil {
		t.Errorf("plan removed the placement journal: %v", err)
	}

	a, _ = f.start(cfg)
	waitFor(t, "the restarted agent to retry and refuse the batch", func() bool { return a.Status()[0].Failures >= 1 })
	if got := readFile(filepath.Join(out, "a.conf")); got != "good" {
		t.Errorf("a.conf = %q after the restart, want the old content restored", got)
	}
	if names := outputNames(t, out); len(names) != 1 {
		t.Errorf("output files: %q, want a.conf alone (no backup left)", names)
	}
	if s := a.Status()[0]; s.Revision >= rev {
		t.Errorf("cursor at %d, want it before the refused revision %d", s.Revision, rev)
	}
}

// TestPlacementUndoReshapes: a commit that turned a directory into a file,
// and a file into a directory, is undone to the old tree.
func TestPlacementUndoReshapes(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	os.MkdirAll(filepath.Join(out, "d"), 0o755)
	os.WriteFile(filepath.Join(out, "d", "x"), []byte("old x"), 0o644)
	os.WriteFile(filepath.Join(out, "f"), []byte("old f"), 0o644)
	p := &placement{path: filepath.Join(dir, placementFile), Files: []placedFile{
		{Target: filepath.Join(out, "d", "x"), Backup: filepath.Join(out, ".slipstream-check-1.bak"), Existed: true},
		{Target: filepath.Join(out, "d"), Existed: true, WasDir: true},
		{Target: filepath.Join(out, "f"), Backup: filepath.Join(out, ".slipstream-check-2.bak"), Existed: true},
		{Target: filepath.Join(out, "f", "y")},
	}}
	if err := p.save(); err != nil {
		t.Fatal(err)
	}
	for _, f := range p.Files {
		if f.Backup != "" {
			if err := os.Link(f.Target, f.Backup); err != nil {
				t.Fatal(err)
			}
		}
	}
	// What the commit did: d/x removed, d a file; f removed, f/y written.
	os.RemoveAll(filepath.Join(out, "d"))
	os.WriteFile(filepath.Join(out, "d"), []byte("new d"), 0o644)
	os.Remove(filepath.Join(out, "f"))
	os.MkdirAll(filepath.Join(out, "f"), 0o755)
	os.WriteFile(filepath.Join(out, "f", "y"), []byte("new y"), 0o644)

	if err := p.undo(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(filepath.Join(out, "d", "x")) + "," + readFile(filepath.Join(out, "f")); got != "old x,old f" {
		t.Errorf("after undo: %s", got)
	}
	if names := outputNames(t, out); len(names) != 2 {
		t.Errorf("output entries %q, want d and f alone", names)
	}
	if _, err := os.Stat(p.path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("journal left after the undo (%v)", err)
	}
	if err := p.undo(); err != nil { // idempotent: a crash during undo undoes again
		t.Errorf("second undo: %v", err)
	}
}

// A placement journal naming files outside the watch's outputs is
// quarantined, not followed: undoing it would remove or replace them.
func TestPlacementJournalOutsideTheOutputsIsRefused(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "good")
	victim := filepath.Join(f.dir, "victim")
	os.WriteFile(victim, []byte("keep me"), 0o644)
	out := filepath.Join(f.dir, "out")
	watchDir := filepath.Join(f.dir, "data", "watches", "cfg")
	os.MkdirAll(watchDir, 0o700)
	journal := `{"files":[{"target":` + strconv.Quote(victim) + `,"existed":false},` +
		`{"target":` + strconv.Quote(filepath.Join(out, "b.conf")) + `,"backup":` + strconv.Quote(filepath.Join(f.dir, ".slipstream-check-1.bak")) + `,"existed":true}]}`
	if err := os.WriteFile(filepath.Join(watchDir, placementFile), []byte(journal), 0o600); err != nil {
		t.Fatal(err)
	}
	a, _ := f.start(f.config(filesConfig))
	waitLong(t, "the watch to render", func() bool { return a.Ready() && readFile(filepath.Join(out, "a.conf")) == "good" })
	if got := readFile(victim); got != "keep me" {
		t.Errorf("the file the journal named outside the outputs: %q", got)
	}
	if _, err := os.Stat(filepath.Join(watchDir, placementFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("journal not quarantined (%v)", err)
	}
}

func TestPlacementCheckPaths(t *testing.T) {
	outputs := []*OutputConf{{Name: "files", Dir: "/srv/out/"}, {Name: "more", Dir: "/srv/more"}}
	for _, tc := range []struct {
		f  placedFile
		ok bool
	}{
		{placedFile{Target: "/srv/out/a.conf", Backup: "/srv/out/.slipstream-check-ab.bak", Existed: true}, true},
		{placedFile{Target: "/srv/more/d/x"}, true},
		{placedFile{Target: "/srv/out"}, false},
		{placedFile{Target: "/srv/out/../etc/passwd"}, false},
		{placedFile{Target: "/srv/outside"}, false},
		{placedFile{Target: "srv/out/a"}, false},
		{placedFile{Target: "/srv/out/a.conf", Backup: "/srv/more/.slipstream-check-ab.bak"}, false},
		{placedFile{Target: "/srv/out/a.conf", Backup: "/srv/out/d/.slipstream-check-ab.bak"}, false},
		{placedFile{Target: "/srv/out/a.conf", Backup: "/srv/out/b.conf"}, false},
	} {
		err := (&placement{Files: []placedFile{tc.f}}).checkPaths(outputs)
		if (err == nil) != tc.ok {
			t.Errorf("%+v: %v, want ok %v", tc.f, err, tc.ok)
		}
	}
}
