package agent

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// An edit that keeps the size and puts the mtime back (touch -r) changes
// only the ctime, which nothing in user space can set: the drift check
// sees it and repairs the file.
func TestDriftSeesAnEditKeepingSizeAndMtime(t *testing.T) {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" && runtime.GOOS != "freebsd" && runtime.GOOS != "netbsd" {
		t.Skip("the ctime is read on linux and the BSDs only")
	}
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "1")
	a, stop := f.start(driftConfig(f))
	defer stop()
	waitReady(t, a)
	path := filepath.Join(f.dir, "out", "a.conf")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// Let the record's ctime be older than the edit by a clock tick.
	time.Sleep(20 * time.Millisecond)
	if err := os.WriteFile(path, []byte("9"), 0o644); err != nil { // in place: same inode
		t.Fatal(err)
	}
	if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the edit repaired", func() bool { return readFile(path) == "1" })
	waitFor(t, "the repair counted", func() bool { return driftRepaired(a) >= 1 })
}

// A commit records each file's ctime after its rename (which moves it): a
// drift check after a plain commit finds the files as recorded from their
// stat alone, without hashing them, and certainly without drift.
func TestCommittedFilesMatchTheirRecordWithoutHashing(t *testing.T) {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" && runtime.GOOS != "freebsd" && runtime.GOOS != "netbsd" {
		t.Skip("the ctime is read on linux and the BSDs only")
	}
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "alpha")
	a, stop := f.start(f.config(filesConfig)) // one drift check after the catch-up, the next in 5m
	waitReady(t, a)
	time.Sleep(20 * time.Millisecond) // the rename's ctime a clock tick after the staging's
	last := f.put("cfg", "files.b.conf", "bravo")
	waitFor(t, "b.conf committed", func() bool { return a.Status()[0].Revision >= last })
	stop()

	out := filepath.Join(f.dir, "out")
	rec := openTestRecord(t, FoldMemory, filepath.Join(f.dir, "data", "watches", "cfg"), out)
	for _, name := range []string{"a.conf", "b.conf"} {
		want, ok, err := rec.get("files/" + name)
		if err != nil || !ok {
			t.Fatalf("the record lacks %s (%v, %v)", name, ok, err)
		}
		if want.ctime == 0 {
			t.Errorf("the record of %s has no ctime", name)
		}
		reason, now, err := driftOf(filepath.Join(out, name), false, want)
		if err != nil || reason != "" || now != nil {
			t.Errorf("drift of %s = %q, %+v, %v; want none, found from its stat alone (recorded ctime %d)", name, reason, now, err, want.ctime)
		}
	}
}

// Records written before the ctime was (format 1) still load, and their
// files are compared without it.
func TestOutputRecordWithoutCtimeIsRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.conf")
	if err := os.WriteFile(path, []byte("alpha"), 0o644); err != nil {
		t.Fatal(err)
	}
	rec, err := readFileRecord(path)
	if err != nil {
		t.Fatal(err)
	}
	v1 := rec.encode()[:fileRecordLenV1]
	v1[0] = 1
	old, err := decodeFileRecord(v1)
	if err != nil {
		t.Fatalf("a format 1 record: %v", err)
	}
	rec.ctime = 0
	if old != rec {
		t.Errorf("format 1 record decoded as %+v, want %+v", old, rec)
	}
	if err := os.Chmod(path, 0o600); err != nil { // moves the ctime alone...
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil { // ...once the mode is back
		t.Fatal(err)
	}
	if reason, now, err := driftOf(path, false, old); err != nil || reason != "" || now != nil {
		t.Errorf("drift against a record without ctime = %q, %+v, %v; want none, from the stat alone", reason, now, err)
	}
}
