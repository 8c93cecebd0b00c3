//go:build unix

package pebblefold

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// A mapped table reads like the file, and a page it can no longer read
// (the file was truncated behind it) is an error, not a crash (SIGBUS).
func TestMappedTableReads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "000001.sst")
	want := bytes.Repeat([]byte("0123456789abcdef"), 3*4096/16)
	if err := os.WriteFile(path, want, 0o600); err != nil {
		t.Fatal(err)
	}
	fs := mappedTables(vfs.Default)
	f, err := fs.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, ok := f.(*mappedTable); !ok {
		t.Fatalf("a table opened for point reads is a %T, want a *mappedTable", f)
	}
	buf := make([]byte, 100)
	if n, err := f.ReadAt(buf, 5000); n != 100 || err != nil || !bytes.Equal(buf, want[5000:5100]) {
		t.Fatalf("ReadAt(100 bytes at 5000) = %d, %v, %q", n, err, buf[:n])
	}
	if n, err := f.ReadAt(buf, int64(len(want))-10); n != 10 || err != io.EOF || !bytes.Equal(buf[:n], want[len(want)-10:]) {
		t.Fatalf("ReadAt across the end = %d, %v, want 10, EOF", n, err)
	}
	if n, err := f.ReadAt(buf, int64(len(want))); n != 0 || err != io.EOF {
		t.Fatalf("ReadAt at the end = %d, %v, want 0, EOF", n, err)
	}

	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	if n, err := f.ReadAt(buf, 2*4096); !errors.Is(err, errMappedRead) {
		t.Fatalf("ReadAt of a page truncated away = %d, %v, want errMappedRead", n, err)
	}
}

// A table opened for a sequential read (a scan, a compaction) is read with
// pread, not mapped; so are files other than tables.
func TestOnlyPointReadTablesAreMapped(t *testing.T) {
	dir := t.TempDir()
	fs := mappedTables(vfs.Default)
	for _, tc := range []struct {
		name string
		opts []vfs.OpenOption
	}{
		{"000002.sst", []vfs.OpenOption{vfs.SequentialReadsOption}},
		{"MANIFEST-000001", nil},
		{"000003.log", nil},
	} {
		path := filepath.Join(dir, tc.name)
		if err := os.WriteFile(path, []byte("data"), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := fs.Open(path, tc.opts...)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := f.(*mappedTable); ok {
			t.Errorf("%s (%d options) is mapped", tc.name, len(tc.opts))
		}
		f.Close()
	}
	if vfs.Root(fs) != vfs.Default {
		t.Error("the mapping file system does not unwrap to the operating system's")
	}
	if _, ok := mappedTables(vfs.NewMem()).(tableFS); ok {
		t.Error("a file system other than the operating system's is wrapped")
	}
}
