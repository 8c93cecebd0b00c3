package snapshot

import (
	"io"
	"os"
	"sync"
)

// readChunk is how many bytes an imageReader reads before handing them on.
const readChunk = 4 << 20

// imageReader reads a whole file into one buffer on its own goroutine and
// hands on each part as it is read, so that replay decodes (and checks the
// CRCs of) the start of a log while the rest is being read: a load costs
// about the longer of the two instead of their sum. It reads like
// os.ReadFile: to the end of the file, even if the file grew or shrank
// since it was sized.
type imageReader struct {
	mu   sync.Mutex
	cond sync.Cond
	img  []byte // the bytes read so far
	done bool
	err  error
}

// readImage starts reading f, whose size was size when it was opened. The
// caller must not close f before wait reported done.
func readImage(f *os.File, size int64) *imageReader {
	r := &imageReader{}
	r.cond.L = &r.mu
	go r.run(f, size)
	return r
}

func (r *imageReader) run(f *os.File, size int64) {
	buf := withHugePages(make([]byte, size))
	n := 0
	var err error
	for n < len(buf) && err == nil {
		var m int
		m, err = f.ReadAt(buf[n:min(n+readChunk, len(buf))], int64(n))
		n += m
		r.publish(buf[:n], false, nil)
	}
	if err == io.EOF {
		err = nil // the file shrank: what was read is all of it
	}
	buf = buf[:n]
	if err == nil && n == int(size) {
		// The file may have grown since it was sized: read on to its end.
		var rest []byte
		rest, err = io.ReadAll(io.NewSectionReader(f, size, 1<<62))
		if len(rest) > 0 {
			buf = append(buf[:n:n], rest...)
		}
	}
	r.publish(buf, true, err)
}

func (r *imageReader) publish(img []byte, done bool, err error) {
	r.mu.Lock()
	r.img, r.done, r.err = img, done, err
	r.mu.Unlock()
	r.cond.Broadcast()
}

// wait returns the bytes read so far (a prefix of the file, in a buffer
// that stays the same unless the file grew) once there are more than n of
// them or reading has ended (done, with its error).
func (r *imageReader) wait(n int) (img []byte, done bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.img) <= n && !r.done {
		r.cond.Wait()
	}
	return r.img, r.done, r.err
}

// readFileImage reads the file at path as os.ReadFile does, handing each
// part to replay as it is read, and returns the fold of its records.
func readFileImage(path string) (*replayed, error) {
	res, f, err := openFileImage(path)
	if f != nil {
		f.Close()
	}
	return res, err
}

// openFileImage is readFileImage returning the file still open (nil on
// error), for a caller that may replace it: see [Log.retire].
func openFileImage(path string) (*replayed, *os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	r := readImage(f, fi.Size())
	res := replayFrom(r)
	if _, _, err := r.wait(1<<62 - 1); err != nil { // also waits for the reader to finish with f
		f.Close()
		return nil, nil, err
	}
	return res, f, nil
}
