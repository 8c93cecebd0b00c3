//go:build unix

package pebblefold

import (
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"
	"golang.org/x/sys/unix"
)

// mappedTables returns fs with the tables Pebble opens for point reads
// mapped into memory: a block that misses the block cache is then copied
// from the page cache without a system call. On this project's VMs a 4 KiB
// pread costs 4 µs, more than the rest of a get; the copy costs a tenth of
// that (a get that misses is 40% faster, see BenchmarkGet).
//
// Only the operating system's files are mapped, and only tables (which
// Pebble writes once and never changes). A compaction or an export reads a
// table from end to end through a handle it reopens at once with
// vfs.SequentialReadsOption, which is not mapped: pread and the kernel's
// readahead. A scan reads the first few hundred KiB of each table through
// the mapping, then reopens it that way too; so a render does not map the
// whole fold into the agent.
//
// What it costs:
//   - The pages a read touched stay mapped until the table is closed,
//     which Pebble's table cache seldom does. They are the page cache's own
//     pages, reclaimed under pressure like any, but the kernel counts them
//     in the agent's resident set (and in its OOM score).
//   - A read of a page not in the page cache is a page fault, during which
//     the goroutine keeps its processor and cannot be preempted: on a disk
//     that stalls, a get stalls the whole process at the next collection,
//     where a pread would stall only its goroutine. The agent's systemd
//     watchdog (WatchdogSec) then restarts it. A fold belongs on a local
//     disk.
func mappedTables(fs vfs.FS) vfs.FS {
	if fs != vfs.Default {
		return fs
	}
	return tableFS{fs}
}

type tableFS struct{ vfs.FS }

// Unwrap returns the file system tableFS maps the tables of.
func (fs tableFS) Unwrap() vfs.FS { return fs.FS }

func (fs tableFS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.Open(name, opts...)
	if err != nil || !strings.HasSuffix(name, ".sst") {
		return f, err
	}
	for _, o := range opts {
		if o == vfs.SequentialReadsOption {
			return f, nil
		}
	}
	st, err := f.Stat()
	if err != nil || st.Size() == 0 || st.Size() != int64(int(st.Size())) || f.Fd() == vfs.InvalidFd {
		return f, nil // read with pread, as without the mapping
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return f, nil
	}
	// No MADV_RANDOM: it would also stop the kernel from mapping the
	// cached pages around a faulting one, and gets were 20% slower with it.
	// (On a cold disk the kernel reads around a fault, and stops doing so
	// for a mapping whose faults miss that read-around.)
	return &mappedTable{File: f, name: name, data: data}, nil
}

// mappedTable is a table file whose ReadAt copies from its mapping.
type mappedTable struct {
	vfs.File
	name string
	data []byte
}

// ReadAt copies from the mapping. A page the kernel cannot provide (the
// file was truncated behind Pebble, or the disk failed to read it) raises
// SIGBUS in the copy, which the runtime turns into a panic for this
// goroutine alone (SetPanicOnFault): ReadAt returns it as an error, as
// pread would return EIO, instead of the process dying.
func (m *mappedTable) ReadAt(p []byte, off int64) (n int, err error) {
	if off < 0 {
		return 0, fmt.Errorf("read %s at %d: %w", m.name, off, errNegativeOffset)
	}
	if off >= int64(len(m.data)) {
		return 0, io.EOF
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if _, fault := r.(interface{ Addr() uintptr }); !fault {
				panic(r)
			}
			n, err = 0, fmt.Errorf("read %s at %d: %w: %v", m.name, off, errMappedRead, r)
		}
	}()
	n = copy(p, m.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

var (
	errNegativeOffset = errors.New("negative offset")
	errMappedRead     = errors.New("the mapped file could not be read")
)

func (m *mappedTable) Close() error {
	err := unix.Munmap(m.data)
	m.data = nil
	return errors.Join(err, m.File.Close())
}
