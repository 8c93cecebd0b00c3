package host

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/plugins/abi"
)

// TestOutputListRefusesNonDirectories: listing a FIFO used to block in
// open(2) until a writer came, inside a host call the timeout cannot
// interrupt. Anything but a directory is now ERR_INVALID at once; a symlink
// to a directory inside the output is still followed.
func TestOutputListRefusesNonDirectories(t *testing.T) {
	s, dir := newTestStage(t, Limits{})
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"file", "sub/f"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("sub", filepath.Join(dir, "linkdir")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		dir    string
		status abi.Status
	}{{"fifo", abi.ErrInvalid}, {"file", abi.ErrInvalid}, {"linkdir", abi.OK}, {"sub", abi.OK}}
	got := make([]abi.Status, len(tests))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i, tt := range tests {
			page, _, ref := s.list("out", tt.dir, "", 4096, scanPageSoft)
			switch {
			case ref != nil:
				got[i] = ref.status
			case page == nil:
				got[i] = abi.ErrIO
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second): // a watchdog, not a measurement
		if w, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
			w.Close() // let the blocked open return
		}
		<-done
		t.Fatal("output_list blocked opening a FIFO")
	}
	for i, tt := range tests {
		if got[i] != tt.status {
			t.Errorf("list %q: status %v, want %v", tt.dir, got[i], tt.status)
		}
	}
}

// TestOutputListReadsEachDirectoryOncePerCall: paging used to read and sort
// the whole directory again for every page, so listing n entries a few at
// a time cost O(n²). A call now reads a directory once, however it pages
// and however it interleaves directories; the next call reads it afresh.
func TestOutputListReadsEachDirectoryOncePerCall(t *testing.T) {
	s, dir := newTestStage(t, Limits{})
	var want []string
	for i := range 300 {
		name := fmt.Sprintf("f%03d", i)
		want = append(want, name)
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".slipstream-x.tmp"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	want = append(want, "sub")
	reads := map[string]int{}
	s.readDir = func(r *os.Root, d string) ([]fs.DirEntry, error) {
		reads[d]++
		return readDir(r, d)
	}
	// Tiny pages of a few entries each, listing "sub" between pages as a
	// recursive walk does.
	var got []string
	after := ""
	for {
		page, need, ref := s.list("out", "", after, 64, scanPageSoft)
		if ref != nil || page == nil {
			t.Fatalf("list after %q: need %d, refusal %v", after, need, ref)
		}
		p, n, err := abi.ParsePageHeader(page)
		if err != nil {
			t.Fatal(err)
		}
		rest := page[n:]
		for range p.Count {
			e, m, err := abi.ParseDirEntry(rest)
			if err != nil {
				t.Fatal(err)
			}
			rest, after = rest[m:], e.Name
			got = append(got, e.Name)
		}
		if _, _, ref := s.list("out", "sub", "", 64, scanPageSoft); ref != nil {
			t.Fatal(ref.err)
		}
		if !p.More {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("listed %d names, want %d", len(got), len(want))
	}
	if reads["."] != 1 || reads["sub"] != 1 {
		t.Fatalf("directory reads in one call: %v", reads)
	}
	s.forgetListings() // the call returned
	if _, _, ref := s.list("out", "", "", 64, scanPageSoft); ref != nil || reads["."] != 2 {
		t.Fatalf("a later call did not read the directory afresh: %v %v", reads, ref)
	}
}

// TestOutputListLeavesOutDirectoriesStagingMade: output_list shows a
// directory as it was when the call began (ABI.md). Staging a write below
// a missing directory creates it on disk, for the staging file; the
// listing leaves it out, and listing it finds nothing, as before the call.
func TestOutputListLeavesOutDirectoriesStagingMade(t *testing.T) {
	s, dir := newTestStage(t, Limits{})
	if err := os.MkdirAll(filepath.Join(dir, "old", "kept"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustStage(t)(s.write("out", "new/a", []byte("a"), 0))
	mustStage(t)(s.write("out", "old/made/deeper/b", []byte("b"), 0))
	if _, err := os.Stat(filepath.Join(dir, "old", "made")); err != nil {
		t.Fatalf("staging did not make the directory this test is about: %v", err)
	}
	names := func(d string) []string {
		page, _, ref := s.list("out", d, "", 1<<16, scanPageSoft)
		if ref != nil {
			t.Fatalf("list %q: %v", d, ref.err)
		}
		p, n, err := abi.ParsePageHeader(page)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		rest := page[n:]
		for range p.Count {
			e, m, err := abi.ParseDirEntry(rest)
			if err != nil {
				t.Fatal(err)
			}
			rest = rest[m:]
			got = append(got, e.Name)
		}
		return got
	}
	if got := names(""); !slices.Equal(got, []string{"old"}) {
		t.Errorf("the output lists %v, want [old]", got)
	}
	if got := names("old"); !slices.Equal(got, []string{"kept"}) {
		t.Errorf("old lists %v, want [kept]", got)
	}
	for _, d := range []string{"new", "old/made", "old/made/deeper"} {
		if _, _, ref := s.list("out", d, "", 1<<16, scanPageSoft); ref == nil || ref.status != abi.ErrNotFound {
			t.Errorf("list %q: %v, want ERR_NOT_FOUND", d, ref)
		}
	}
}
