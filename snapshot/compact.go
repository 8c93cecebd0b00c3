package snapshot

import (
	"bufio"
	"io"
	"os"
	"path/filepath"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// compactedSize is the size of the compacted image of live payload bytes,
// live keys and cursor.
func compactedSize(liveBytes int64, live int, cursor kvcore.Cursor) int64 {
	n := headerLen + liveBytes + 5*int64(live)
	if !cursor.IsNone() {
		n += int64(cursorRecordLen(cursor))
	}
	return n
}

// writeCompacted streams the compacted image of a fold to w: the header,
// one PUT per entry of base in key order, then one CURSOR record unless the
// cursor is none.
func writeCompacted(w io.Writer, ar *arena, base []ref, cursor kvcore.Cursor) error {
	const flushAt = 1 << 20
	buf := append(make([]byte, 0, flushAt+64<<10), header[:]...)
	for _, r := range base {
		buf = appendPutRecord(buf, ar.payload(r))
		if len(buf) >= flushAt {
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	if !cursor.IsNone() {
		buf = appendCursor(buf, cursor)
	}
	_, err := w.Write(buf)
	return err
}

// imagePart is how many bytes of a compacted image buildImage hands to
// its writer at a time.
const imagePart = 4 << 20

// buildImage builds the compacted image of a fold (size bytes, as
// writeCompacted writes it) in one buffer and writes it to w, and returns
// it with the references of its entries when the image is arena chunk 0:
// loading the compacted file gives that very arena, so the image is both
// written and kept. Each part of the image is written on another goroutine
// while the next is built, so that building (copying the entries, checksums,
// first touches of the buffer) and writing (copying into the page cache)
// run on two cores instead of one after the other.
//
// With framed, every payload in ar is still framed by the PUT record it was
// loaded in, whose CRC the load checked (an arena made by replay, before any
// put was written over an entry in place): each record is then copied
// whole, checksum included, rather than checksummed again.
func buildImage(w io.Writer, ar *arena, base []ref, cursor kvcore.Cursor, size int64, framed bool) ([]byte, []ref, error) {
	parts := make(chan []byte, 4)
	werr := make(chan error, 1)
	go func() {
		var err error
		for p := range parts {
			if err == nil {
				_, err = w.Write(p)
			}
		}
		werr <- err
	}()
	img := append(prefaulted(make([]byte, 0, size)), header[:]...)
	refs := prefaulted(make([]ref, len(base)))
	sent := 0 // img[:sent] is handed to the writer
	for i, r := range base {
		refs[i] = mkref(0, len(img)+5)
		if framed {
			img = append(img, ar.record(r)...)
		} else {
			img = appendPutRecord(img, ar.payload(r))
		}
		if len(img)-sent >= imagePart {
			parts <- img[sent:]
			sent = len(img)
		}
	}
	if !cursor.IsNone() {
		img = appendCursor(img, cursor)
	}
	parts <- img[sent:]
	close(parts)
	return img, refs, <-werr
}

// imageArena is the arena of a buildImage image: full, so later entries go
// to new chunks.
func imageArena(img []byte) arena { return arena{chunks: [][]byte{img}, sealed: true} }

// bufSize sizes a write buffer for an output of n bytes: clamped to [8 KiB, 1 MiB].
func bufSize(n int64) int { return int(min(max(n, 8<<10), 1<<20)) }

// tempPattern names the temporary files made beside path; Open removes
// leftovers of a crash.
func tempPattern(path string) string { return "." + filepath.Base(path) + ".tmp-*" }

// createImage writes a new file beside path through fill and fsyncs it,
// returning it open (positioned at its end). On error nothing is left behind.
func (fs *fsys) createImage(path string, size int64, fill func(io.Writer) error) (*os.File, error) {
	f, err := fs.createTemp(filepath.Dir(path), tempPattern(path))
	if err != nil {
		return nil, err
	}
	bw := bufio.NewWriterSize(fileWriter{fs, f}, bufSize(size))
	err = fill(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = fs.sync(f)
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}

// install renames the fsynced temporary file f over path and fsyncs the
// directory. On a failed rename f is closed and removed (renamed is false);
// once the rename happened f is path's file even if the directory fsync
// then fails.
func (fs *fsys) install(f *os.File, path string) (renamed bool, err error) {
	if err := fs.rename(f.Name(), path); err != nil {
		f.Close()
		os.Remove(f.Name())
		return false, err
	}
	return true, fs.syncDir(filepath.Dir(path))
}

// replaceFile atomically replaces path with the image fill writes: temporary
// file in the same directory, fsync, rename, fsync of the directory.
func (fs *fsys) replaceFile(path string, size int64, fill func(io.Writer) error) error {
	f, err := fs.createImage(path, size, fill)
	if err != nil {
		return err
	}
	renamed, err := fs.install(f, path)
	if !renamed {
		return err
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
