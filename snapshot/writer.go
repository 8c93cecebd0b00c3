package snapshot

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// Writer is the raw append API over a snapshot file (the Rust crate's
// SnapshotWriter): buffered update records, checkpoints that append a cursor
// record and flush, and an explicit compaction. Most callers want [Log],
// which keeps the fold in memory and compacts in the background.
//
// A Writer is not safe for concurrent use.
type Writer struct {
	fs          fsys
	path        string
	opts        Options
	lock        *os.File // holds the log's lock until Close
	f           *os.File
	bw          *bufio.Writer
	scratch     []byte
	appended    int64 // bytes appended since the file was created or compacted
	err         error // sticky: a write or sync failed
	dirUnsynced bool  // a compaction's rename is not known to be durable yet
	closed      bool
}

// OpenWriter opens the snapshot file at path for appending, creating it
// (atomically, as a header-only file) when it does not exist. An existing
// file is not validated (as in the Rust crate): load it first. An existing
// file shorter than the header is refused rather than appended to. Like a
// [Log], the Writer holds the file's lock until Close ([ErrLocked]).
func OpenWriter(path string, opts Options) (*Writer, error) {
	w := &Writer{fs: osFS(), path: path, opts: opts.withDefaults()}
	lock, err := lockLog(path)
	if err != nil {
		return nil, err
	}
	removeTemps(path)
	f, size, err := w.fs.openLog(path, os.O_APPEND)
	if err != nil {
		lock.Close()
		return nil, err
	}
	w.lock, w.f, w.appended = lock, f, size-headerLen
	w.bw = bufio.NewWriterSize(fileWriter{&w.fs, f}, 256<<10)
	return w, nil
}

// openLog opens path for reading and writing (with extra flags), creating
// a header-only file first when it is absent or empty, and returns the
// file's size.
func (fsy *fsys) openLog(path string, flag int) (*os.File, int64, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && fi.Size() == 0) {
		err = fsy.replaceFile(path, headerLen, func(w io.Writer) error {
			_, err := w.Write(header[:])
			return err
		})
		if err != nil {
			return nil, 0, fmt.Errorf("snapshot: create %s: %w", path, err)
		}
		fi, err = os.Stat(path)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("snapshot: open %s: %w", path, err)
	}
	if fi.Size() < headerLen {
		return nil, 0, fmt.Errorf("snapshot: open %s: %w", path, invalidf(0, "file too short"))
	}
	f, err := os.OpenFile(path, os.O_RDWR|flag, 0)
	if err != nil {
		return nil, 0, fmt.Errorf("snapshot: open %s: %w", path, err)
	}
	return f, fi.Size(), nil
}

// removeTemps deletes temporary files a crash left beside path.
func removeTemps(path string) {
	prefix, _ := strings.CutSuffix(tempPattern(path), "*")
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(path), globEscape(prefix)+"*"))
	for _, m := range matches {
		os.Remove(m)
	}
}

func globEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`)
	return r.Replace(s)
}

func (w *Writer) usable() error {
	if w.closed {
		return ErrClosed
	}
	if w.err != nil {
		return fmt.Errorf("%w: %w", ErrPoisoned, w.err)
	}
	return nil
}

func (w *Writer) fail(err error) error {
	w.err = err
	return fmt.Errorf("snapshot: write %s: %w", w.path, err)
}

// WriteUpdate appends u's record to the buffer. Deletes and purges are
// written as DELETE records.
func (w *Writer) WriteUpdate(u kvcore.Update) error {
	if err := w.usable(); err != nil {
		return err
	}
	if err := checkUpdate(&u); err != nil {
		return err
	}
	// Encode straight into the buffer's free space when the record fits.
	var (
		rec []byte
		err error
	)
	if rec = w.bw.AvailableBuffer(); cap(rec) >= updateRecordLen(&u) {
		rec = appendUpdate(rec, &u)
	} else {
		w.scratch = appendUpdate(w.scratch[:0], &u)
		rec = w.scratch
	}
	if _, err = w.bw.Write(rec); err != nil {
		return w.fail(err)
	}
	w.appended += int64(len(rec))
	return nil
}

// Checkpoint appends a cursor record, flushes, fsyncs unless the sync mode
// is [SyncNone], and reports whether compaction is due (more than
// CompactThreshold bytes appended since the last one). It never compacts.
// After a compaction whose directory fsync failed, it also retries that
// fsync and returns its error while it fails.
func (w *Writer) Checkpoint(c kvcore.Cursor) (compactDue bool, err error) {
	if err := w.usable(); err != nil {
		return false, err
	}
	w.scratch = appendCursor(w.scratch[:0], c)
	if _, err := w.bw.Write(w.scratch); err != nil {
		return false, w.fail(err)
	}
	w.appended += int64(len(w.scratch))
	if err := w.sync(); err != nil {
		return false, err
	}
	return w.appended > w.opts.CompactThreshold, nil
}

func (w *Writer) sync() error {
	if err := w.bw.Flush(); err != nil {
		return w.fail(err)
	}
	if w.opts.Sync == SyncCheckpoint {
		if err := w.fs.sync(w.f); err != nil {
			return w.fail(err)
		}
		// Until the directory fsync that failed after a compaction's
		// rename succeeds, a power loss can bring the replaced file back:
		// no checkpoint is durable before it. Retried at every sync; a
		// failure is returned but does not poison the writer.
		if w.dirUnsynced {
			if err := w.fs.syncDir(filepath.Dir(w.path)); err != nil {
				return fmt.Errorf("snapshot: sync the directory of %s after compacting it: %w", w.path, err)
			}
			w.dirUnsynced = false
		}
	}
	return nil
}

// Flush writes the buffer to the operating system without a cursor record.
func (w *Writer) Flush() error {
	if err := w.usable(); err != nil {
		return err
	}
	if err := w.bw.Flush(); err != nil {
		return w.fail(err)
	}
	return nil
}

// Compact flushes the buffer (records not yet checkpointed are kept), reads
// and replays the file (a load error is returned and nothing changes), and
// replaces the file with its compacted form. The writer then appends to the
// new file: it never keeps a handle to the replaced one.
func (w *Writer) Compact() error {
	if err := w.Flush(); err != nil {
		return err
	}
	img, err := readAll(w.f)
	if err != nil {
		return fmt.Errorf("snapshot: compact %s: %w", w.path, err)
	}
	res := replay(img)
	if res.err != nil {
		return fmt.Errorf("snapshot: compact %s: %w", w.path, res.err)
	}
	x := res.idx
	f, err := w.fs.createImage(w.path, compactedSize(x.liveBytes, x.live, res.cursor), func(iw io.Writer) error {
		return writeCompacted(iw, &x.ar, x.base, res.cursor)
	})
	if err != nil {
		return fmt.Errorf("snapshot: compact %s: %w", w.path, err)
	}
	renamed, err := w.fs.install(f, w.path)
	if renamed {
		// The path names the new file now, even if the directory fsync
		// failed: append there, never to the replaced inode.
		w.f.Close()
		w.f = f
		w.bw.Reset(fileWriter{&w.fs, f})
		w.appended = 0
		w.dirUnsynced = err != nil
	}
	if err != nil {
		return fmt.Errorf("snapshot: compact %s: %w", w.path, err)
	}
	return nil
}

// Close flushes (and fsyncs unless the sync mode is [SyncNone]) and closes the file.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	err := w.usable()
	if err == nil {
		err = w.sync()
	}
	w.closed = true
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	w.lock.Close() // after the log: a later opener must not see it still open
	return err
}

// readAll reads the whole of f through the open file (not by path).
func readAll(f *os.File) ([]byte, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	img := make([]byte, fi.Size())
	n, err := f.ReadAt(img, 0)
	if err == io.EOF && n == len(img) {
		err = nil
	}
	return img[:n], err
}
