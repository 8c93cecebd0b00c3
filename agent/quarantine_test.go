package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/slipstreamkv/slipstream/internal/atomicfile"
	"github.com/slipstreamkv/slipstream/internal/bitrot"
	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/snapshot"
)

// Damaged local state is moved aside, never fatal: the watch becomes ready
// with outputs that match the bucket, the damaged file is kept in the watch
// directory under a quarantine name, and /status and /metrics say so.
func TestDamagedLocalStateIsQuarantined(t *testing.T) {
	appendBytes := func(t *testing.T, path string, b []byte) {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name   string
		disk   bool   // fold = "disk"
		file   string // what is damaged, in the watch directory
		kind   string
		damage func(t *testing.T, path string)
		// changes made to the bucket while the agent is down (off for the
		// journal, whose test counts the hook runs)
		changes bool
	}{
		{name: "fold with a torn tail holding a hole", file: logFoldFile, kind: stateKindFold, changes: true,
			damage: func(t *testing.T, p string) {
				// A power loss can leave a zero run where unsynced data
				// was, followed by what did reach the disk.
				hole := make([]byte, 64)
				appendBytes(t, p, append(hole, 0x5a, 0x17, 0x01, 0x01, 0x00, 'x', 0x01))
			}},
		{name: "garbage fold", file: logFoldFile, kind: stateKindFold, changes: true,
			damage: func(t *testing.T, p string) { writeGarbage(t, p) }},
		{name: "garbage disk fold", disk: true, file: diskFoldDir, kind: stateKindFold, changes: true,
			damage: garbageManifests},
		// The record of committed outputs: lost, it would have left the
		// files edited meanwhile unrepaired (the drift check knows no
		// file), so the watch renders in full and records them again.
		// Damage a read found while the agent ran (a flipped bit in a
		// table) is marked in the fold's directory (pebblefold).
		{name: "disk fold found damaged", disk: true, file: diskFoldDir, kind: stateKindFold, changes: true,
			damage: func(t *testing.T, p string) { writeGarbage(t, filepath.Join(p, "CORRUPT")) }},
		{name: "garbage record", file: outputsRecordFile, kind: stateKindRecord, changes: true,
			damage: func(t *testing.T, p string) { writeGarbage(t, p) }},
		{name: "garbage disk record", disk: true, file: outputsRecordDir, kind: stateKindRecord, changes: true,
			damage: garbageManifests},
		// A record entry of a format this version does not know (a newer
		// slipagent ran on the data_dir before a downgrade): skipped, it
		// left a.conf unchecked for drift.
		{name: "record entry of a newer version", file: outputsRecordFile, kind: stateKindRecord, changes: true,
			damage: newerRecordEntry(FoldMemory)},
		{name: "disk record entry of a newer version", disk: true, file: outputsRecordDir, kind: stateKindRecord, changes: true,
			damage: newerRecordEntry(FoldDisk)},
		{name: "garbage journal", file: journalFile, kind: stateKindJournal,
			damage: func(t *testing.T, p string) { writeGarbage(t, p) }},
		{name: "garbage state file", file: stateFile, kind: stateKindState, changes: true,
			damage: func(t *testing.T, p string) { writeGarbage(t, p) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.put("cfg", "files.a.conf", "alpha")
			f.put("cfg", "files.b.conf", "bravo")
			src := filesConfig
			if tc.disk {
				src = strings.Replace(src, "plugin = \"files\"\n  batch", "plugin = \"files\"\n  fold   = \"disk\"\n  batch", 1)
			}
			a, stop := f.start(f.config(src))
			waitFor(t, "the first sync", func() bool { return a.Ready() })
			stop()

			watchDir := filepath.Join(f.dir, "data", "watches", "cfg")
			damaged := filepath.Join(watchDir, tc.file)
			tc.damage(t, damaged)
			out := filepath.Join(f.dir, "out")
			if tc.kind != stateKindJournal { // (whose test counts the hook runs)
				// Edited while the agent was down: the watch's start repairs it.
				if err := os.WriteFile(filepath.Join(out, "a.conf"), []byte("edited"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want := map[string]string{"a.conf": "alpha", "b.conf": "bravo"}
			last := a.Status()[0].Revision
			if tc.changes {
				f.delete("cfg", "files.b.conf")
				last = f.put("cfg", "files.c.conf", "charlie")
				want = map[string]string{"a.conf": "alpha", "c.conf": "charlie"}
			}

			a, _ = f.start(f.config(src))
			waitFor(t, "the watch to become ready", func() bool {
				s := a.Status()[0]
				return a.Ready() && s.Revision == last
			})
			entries, _ := os.ReadDir(out)
			got := map[string]string{}
			for _, e := range entries {
				got[e.Name()] = readFile(filepath.Join(out, e.Name()))
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("outputs = %v, want %v", got, want)
			}
			if tc.kind == stateKindJournal {
				// The journal's hooks are unknown: every hook runs once more.
				if hooks := lines(filepath.Join(f.dir, "hooks.log")); len(hooks) != 2 {
					t.Errorf("hooks.log = %q, want the initial run and one more", hooks)
				}
				if _, err := os.Stat(damaged); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the journal is still owed after its hooks ran (%v)", err)
				}
			}

			moved, _ := filepath.Glob(damaged + atomicfile.QuarantineSuffix + "*")
			if len(moved) != 1 {
				t.Fatalf("quarantined copies of %s: %v, want one", tc.file, moved)
			}
			s := a.Status()[0]
			if len(s.Quarantined) != 1 || s.Quarantined[0].Path != moved[0] || s.Quarantined[0].Kind != tc.kind || s.Quarantined[0].Reason == "" {
				t.Errorf("status quarantined = %+v, want %s at %s", s.Quarantined, tc.kind, moved[0])
			}

			srv := httptest.NewServer(a.Handler())
			defer srv.Close()
			var status struct {
				Watches []struct {
					Quarantined []struct{ Path, Reason, Kind string }
				}
			}
			if body := get(t, srv.URL+"/status"); json.Unmarshal([]byte(body), &status) != nil ||
				len(status.Watches) != 1 || len(status.Watches[0].Quarantined) != 1 || status.Watches[0].Quarantined[0].Path != moved[0] {
				t.Errorf("/status does not show the quarantine:\n%s", body)
			}
			metric := fmt.Sprintf(`slipagent_quarantined_total{kind=%q,watch="cfg"} 1`, tc.kind)
			if body := get(t, srv.URL+"/metrics"); !strings.Contains(body, metric) {
				t.Errorf("/metrics lacks %s", metric)
			}
		})
	}
}

// newerRecordEntry writes the record of a.conf, in the record of
// committed outputs at p, in a format no version knows yet.
func newerRecordEntry(kind string) func(t *testing.T, p string) {
	return func(t *testing.T, p string) {
		rec, err := openOutputRecord(t.Context(), filepath.Dir(p), kind, nil, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		defer rec.Close()
		newer := kvcore.Update{Op: kvcore.OpPut, Key: recordKey("files", "a.conf"), Value: []byte{0x7f, 1, 2, 3}}
		if err := rec.apply(t.Context(), []kvcore.Update{newer}); err != nil {
			t.Fatal(err)
		}
	}
}

// garbageManifests overwrites the manifests of the Pebble directory p.
func garbageManifests(t *testing.T, p string) {
	t.Helper()
	manifests, _ := filepath.Glob(filepath.Join(p, "MANIFEST-*"))
	if len(manifests) == 0 {
		t.Fatal("no Pebble manifest to damage")
	}
	for _, m := range manifests {
		writeGarbage(t, m)
	}
}

func writeGarbage(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("\x00garbage{\xff not a fold, journal or state\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// Only content that does not load is quarantined: an error of the system
// reading it (permissions, I/O, a full disk, another owner's lock) fails
// the session, which retries, and leaves the file where it is.
func TestFoldCorruptTellsDamageFromIOErrors(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fold.snap")
	if err := os.WriteFile(p, []byte("PGSS\x02\x00\x00\x00\x00\x00\x00\x01"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, holeErr := snapshot.Open(p, snapshot.Options{})
	ioErr := func(errno syscall.Errno) error {
		return fmt.Errorf("snapshot: load %s: %w", p, &os.PathError{Op: "read", Path: p, Err: errno})
	}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{holeErr, true},
		{fmt.Errorf("pebblefold: open: %w", pebble.ErrCorruption), true},
		{fmt.Errorf("pebblefold: open: %w", errors.New("lock held by current process")), false},
		{ioErr(syscall.EISDIR), true},
		{ioErr(syscall.EACCES), false},
		{ioErr(syscall.EIO), false},
		{ioErr(syscall.ENOSPC), false},
		{fmt.Errorf("%w: held by another agent", snapshot.ErrLocked), false},
	} {
		if got := foldCorrupt(tc.err); got != tc.want {
			t.Errorf("foldCorrupt(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
	if !errors.Is(holeErr, snapshot.ErrInvalidFormat) {
		t.Fatalf("a hole in front of data loads: %v", holeErr)
	}
}

// A state file the system cannot read (here a symlink loop: ELOOP, as EIO
// or EACCES would be) is not quarantined: the watch fails and retries, and
// the file stays where it is.
func TestUnreadableStateFailsTheWatchWithoutQuarantine(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "alpha")
	watchDir := filepath.Join(f.dir, "data", "watches", "cfg")
	if err := os.MkdirAll(watchDir, 0o700); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(watchDir, stateFile)
	if err := os.Symlink(p, p); err != nil {
		t.Fatal(err)
	}
	a, _ := f.start(f.config(filesConfig))
	waitFor(t, "the watch to fail on its state file", func() bool {
		s := a.Status()[0]
		return s.Failures >= 2 && strings.Contains(s.LastError, stateFile)
	})
	if s := a.Status()[0]; len(s.Quarantined) != 0 || a.Ready() {
		t.Errorf("status %+v: an I/O error was taken for damage", s)
	}
	if moved, _ := filepath.Glob(p + atomicfile.QuarantineSuffix + "*"); len(moved) != 0 {
		t.Errorf("quarantined %v", moved)
	}
	if _, err := os.Lstat(p); err != nil {
		t.Errorf("the state file moved: %v", err)
	}
}

// A disk fold whose table is damaged after it was written (bits flipped on
// the disk) loads, since Pebble reads a table only when it needs it. The
// first read that finds the damage ends the watch's session; the next one
// moves the fold aside and rebuilds it, and the files follow the bucket,
// without a restart of the agent. The read is a full render's (the record
// of the outputs was lost) or a drift repair's (an output was removed).
func TestADiskFoldDamagedAtRunTimeIsRebuilt(t *testing.T) {
	for _, trigger := range []string{"full render", "drift repair"} {
		t.Run(trigger, func(t *testing.T) {
			f := newFixture(t)
			value := strings.Repeat("v", 16<<10)
			for i := range 320 { // more than pebblefold's flush on close: a table
				f.put("cfg", fmt.Sprintf("files.k%03d.conf", i), value)
			}
			src := strings.Replace(filesConfig, "plugin = \"files\"\n  batch { window = \"20ms\" }", "plugin = \"files\"\n  fold   = \"disk\"\n  batch { window = \"20ms\" }\n  drift_check = \"200ms\"", 1)
			a, stop := f.start(f.config(src))
			waitFor(t, "the first sync", func() bool { return a.Ready() && f.outputFiles() == 320 })
			stop()

			watchDir := filepath.Join(f.dir, "data", "watches", "cfg")
			damageTables(t, filepath.Join(watchDir, diskFoldDir))
			last := a.Status()[0].Revision
			if trigger == "full render" {
				if err := os.RemoveAll(filepath.Join(watchDir, outputsRecordDir)); err != nil {
					t.Fatal(err)
				}
				last = f.put("cfg", "files.new.conf", "new")
			}

			a, _ = f.start(f.config(src))
			if trigger == "drift repair" {
				waitFor(t, "ready", a.Ready)
				if err := os.Remove(filepath.Join(f.dir, "out", "k007.conf")); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, "the rebuilt watch", func() bool {
				s := a.Status()[0]
				return a.Ready() && s.Revision == last && len(s.Quarantined) > 0 && f.outputFiles() >= 320
			})
			if got := readFile(filepath.Join(f.dir, "out", "k007.conf")); got != value {
				t.Errorf("k007.conf holds %d bytes, want the bucket's %d", len(got), len(value))
			}
			if q := a.Status()[0].Quarantined; q[0].Kind != stateKindFold {
				t.Errorf("quarantined %+v, want the fold", q)
			}
		})
	}
}

// A disk record of committed outputs whose table is damaged on the disk
// is quarantined when the watch opens it: the read of every entry (see
// outputRecord.unreadable) finds the damage, which is no I/O error to
// retry.
func TestADamagedDiskRecordIsQuarantinedAtOpen(t *testing.T) {
	dir := t.TempDir()
	rec, err := openOutputRecord(t.Context(), dir, FoldDisk, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var updates []kvcore.Update
	for i := range 60000 { // more than a record's memtable: tables
		updates = append(updates, fileRecord{fileState: fileState{size: int64(i)}}.update(fmt.Sprintf("files/k%06d.conf", i)))
	}
	if err := rec.apply(t.Context(), updates); err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	damageTables(t, filepath.Join(dir, outputsRecordDir))
	_, err = openOutputRecord(t.Context(), dir, FoldDisk, nil, slog.New(slog.DiscardHandler))
	if ce, ok := errors.AsType[*corruptError](err); !ok || ce.kind != stateKindRecord {
		t.Fatalf("opening a damaged record = %v, want a *corruptError of the record", err)
	}
}

// damageTables flips the bits of the second quarter of every table of the
// Pebble directory dir, as a failing disk would.
func damageTables(t *testing.T, dir string) {
	t.Helper()
	tables, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	if len(tables) == 0 {
		t.Fatalf("%s has no table to damage", dir)
	}
	for _, table := range tables {
		bitrot.Flip(t, table)
	}
}
