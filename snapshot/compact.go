package snapshot

import (
	"bufio"
	"hash/crc32"
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

// writeCompacted writes the compacted image of a fold: the header, one PUT
// per entry of base in key order, then one CURSOR record unless the cursor
// is none. When into is not nil every entry is also copied into it and the
// returned slice indexes the copies (an arena without garbage).
func writeCompacted(w io.Writer, ar *arena, base []ref, cursor kvcore.Cursor, into *arena) ([]ref, error) {
	var fresh []ref
	if into != nil {
		fresh = make([]ref, 0, len(base))
	}
	if _, err := w.Write(header[:]); err != nil {
		return nil, err
	}
	var pre [5]byte
	pre[4] = recPut
	putCRC := crc32.ChecksumIEEE(pre[4:])
	for _, r := range base {
		p := ar.payload(r)
		crc := crc32.Update(putCRC, crc32.IEEETable, p)
		pre[0], pre[1], pre[2], pre[3] = byte(crc), byte(crc>>8), byte(crc>>16), byte(crc>>24)
		if _, err := w.Write(pre[:]); err != nil {
			return nil, err
		}
		if _, err := w.Write(p); err != nil {
			return nil, err
		}
		if into != nil {
			nr, dst := into.alloc(len(p))
			copy(dst, p)
			fresh = append(fresh, nr)
		}
	}
	if !cursor.IsNone() {
		if _, err := w.Write(appendCursor(nil, cursor)); err != nil {
			return nil, err
		}
	}
	return fresh, nil
}

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
