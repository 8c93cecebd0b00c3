package snapshot

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/slipstreamkv/slipstream/snapshot/internal/foldtest"
)

// `slipagent snapshot repair` (Repair) on the file of a running Log used to
// rename a compacted copy over it: the Log kept writing to the replaced
// inode, and its later, fsynced Applies were lost. Repair now refuses while
// the Log holds the file, and leaves it untouched.
func TestRepairRefusedWhileLogHoldsTheFile(t *testing.T) {
	p := newPath(t)
	l := openLog(t, p, Options{})
	apply(t, l, cur(1), put("a", "1", 1))
	apply(t, l, cur(2), put("a", "2", 2)) // dirty: a repair would rewrite it
	before := readFile(t, p)
	if _, err := Repair(p); !errors.Is(err, ErrLocked) {
		t.Fatalf("Repair of an open log: %v, want ErrLocked", err)
	}
	assertFile(t, p, before)
	apply(t, l, cur(3), put("b", "3", 3))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := dumpLog(t, p); !slices.Equal(got, []string{"a=2@rev 2", "b=3@rev 3", "cursor rev 3"}) {
		t.Fatalf("after Close the file holds %q", got)
	}
	if rep, err := Repair(p); err != nil || rep.Action != ActionCompact {
		t.Fatalf("Repair once the log is closed: %+v, %v", rep, err)
	}
}

// One writer at a time: a Log or Writer refuses a path another Log or Writer
// holds (in this process too), and Close releases it.
func TestSecondWriterRefused(t *testing.T) {
	openers := map[string]func(p string) (func() error, error){
		"Open": func(p string) (func() error, error) {
			l, err := Open(p, Options{})
			if err != nil {
				return nil, err
			}
			return l.Close, nil
		},
		"OpenWriter": func(p string) (func() error, error) {
			w, err := OpenWriter(p, Options{})
			if err != nil {
				return nil, err
			}
			return w.Close, nil
		},
	}
	for first, open1 := range openers {
		for second, open2 := range openers {
			t.Run(first+"/"+second, func(t *testing.T) {
				p := newPath(t)
				close1, err := open1(p)
				if err != nil {
					t.Fatal(err)
				}
				if close2, err := open2(p); !errors.Is(err, ErrLocked) {
					if err == nil {
						close2()
					}
					t.Fatalf("second opener: %v, want ErrLocked", err)
				}
				if err := close1(); err != nil {
					t.Fatal(err)
				}
				close2, err := open2(p)
				if err != nil {
					t.Fatalf("opener after Close: %v", err)
				}
				close2()
			})
		}
	}
}

// A refused second Open does not touch the holder's files: it used to run
// the crash clean-up first and delete the temporary file of the holder's
// compaction in flight.
func TestRefusedOpenKeepsCompactionInFlight(t *testing.T) {
	p := newPath(t)
	l := openLog(t, p, Options{})
	apply(t, l, cur(1), put("a", "1", 1), put("b", "1", 1))
	started, release := blockImage(l)
	done := make(chan error, 1)
	go func() { done <- l.Compact() }()
	<-started
	temps, _ := filepath.Glob(filepath.Join(filepath.Dir(p), ".fold.snap.tmp-*"))
	if len(temps) != 1 {
		t.Fatalf("temporary files %q, want the compaction's", temps)
	}
	if _, err := Open(p, Options{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	if _, err := os.Stat(temps[0]); err != nil {
		t.Fatalf("the refused Open removed the compaction's temporary file: %v", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	apply(t, l, cur(2), put("c", "2", 2))
	if got := dumpLog(t, p); !slices.Equal(got, []string{"a=1@rev 1", "b=1@rev 1", "c=2@rev 2", "cursor rev 2"}) {
		t.Fatalf("file holds %q", got)
	}
}

// While a Log holds the file, the read-only paths still work: Inspect, and
// Load, which then returns the content without rewriting the file.
func TestReadersWorkWhileLogHoldsTheFile(t *testing.T) {
	p := newPath(t)
	l := openLog(t, p, Options{})
	apply(t, l, cur(1), put("a", "1", 1))
	apply(t, l, cur(2), put("a", "2", 2), put("b", "2", 2))
	before := readFile(t, p)
	rep, err := Inspect(p)
	if err != nil || rep.Action != ActionCompact || rep.Keys != 2 {
		t.Fatalf("Inspect: %+v, %v", rep, err)
	}
	s, err := Load(p)
	if err != nil {
		t.Fatalf("Load of a held file: %v", err)
	}
	if got := kvs(s.Entries); !slices.Equal(got, []string{"a=2@rev 2", "b=2@rev 2"}) || s.Cursor != cur(2) {
		t.Fatalf("Load = %q at %v", got, s.Cursor)
	}
	assertFile(t, p, before)
	apply(t, l, cur(3), put("c", "3", 3))
	if got := foldtest.Dump(t, l, ""); !slices.Equal(got, []string{"a=2", "b=2", "c=3"}) {
		t.Fatalf("fold %q", got)
	}
}

// Load takes the lock to rewrite a dirty file and releases it.
func TestLoadRewritesUnderTheLock(t *testing.T) {
	p := writeTemp(t, image(put("a", "1", 1), cur(1), put("a", "2", 2), cur(2)))
	mustLoad(t, p)
	assertFile(t, p, image(put("a", "2", 2), cur(2)))
	openLog(t, p, Options{}) // the lock was released
}

// The tail a compaction copies is read through the log's open file, not by
// path: it is the file the records were written to.
func TestCompactionReadsTheTailThroughTheOpenFile(t *testing.T) {
	p := newPath(t)
	l := openLog(t, p, Options{})
	apply(t, l, cur(1), put("a", "1", 1))
	started, release := blockImage(l)
	done := make(chan error, 1)
	go func() { done <- l.Compact() }()
	<-started
	apply(t, l, cur(2), put("b", "2", 2)) // the tail the job copies
	if err := os.Remove(p); err != nil {  // nothing left to open by path
		t.Fatal(err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Compact: %v", err)
	}
	if got := dumpLog(t, p); !slices.Equal(got, []string{"a=1@rev 1", "b=2@rev 2", "cursor rev 2"}) {
		t.Fatalf("file holds %q", got)
	}
}

// Writer.Compact reads the log through its open file as well.
func TestWriterCompactReadsThroughTheOpenFile(t *testing.T) {
	p := newPath(t)
	w := openW(t, p, 0)
	write(t, w, put("a", "1", 1), put("a", "2", 2), cur(2))
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := w.Compact(); err != nil {
		t.Fatalf("Compact: %v", err)
	}
	w.Close()
	assertFile(t, p, image(put("a", "2", 2), cur(2)))
}

// An empty path is refused before anything is created: not a lock file
// named ".lock" in the working directory.
func TestEmptyPathIsRefused(t *testing.T) {
	t.Chdir(t.TempDir())
	if _, err := Open("", Options{}); err == nil || !strings.Contains(err.Error(), "no log path") {
		t.Errorf("Open(\"\") = %v, want an error saying the path is empty", err)
	}
	if _, err := os.Stat(lockSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open(\"\") left %s in the working directory (stat: %v)", lockSuffix, err)
	}
}
