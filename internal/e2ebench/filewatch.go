package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fileWatch sees an output file replaced or written, through inotify on its
// directory (renames into it, closes after writing).
type fileWatch struct {
	path string
	name string
	f    *os.File // the inotify descriptor, non-blocking, in Go's poller
	buf  []byte
}

func watchFile(path string) (*fileWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	dir := filepath.Dir(path)
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_MOVED_TO|unix.IN_CLOSE_WRITE|unix.IN_CREATE); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("inotify watch of %s: %w", dir, err)
	}
	return &fileWatch{path: path, name: filepath.Base(path), f: os.NewFile(uintptr(fd), "inotify"), buf: make([]byte, 64<<10)}, nil
}

func (w *fileWatch) Close() error { return w.f.Close() }

// until reads the file now and after each change of it, and calls seen with
// its content and the time the change was noticed, until seen returns true
// or the deadline passes. A missing file reads as nil, an empty one as
// an empty non-nil slice.
func (w *fileWatch) until(ctx context.Context, deadline time.Duration, seen func(data []byte, at time.Time) bool) error {
	end := time.Now().Add(deadline)
	at := time.Now()
	for {
		data, err := os.ReadFile(w.path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			data = nil
		case err != nil:
			return err
		case data == nil:
			data = []byte{} // present and empty
		}
		if seen(data, at) {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if at, err = w.next(end); err != nil {
			return err
		}
	}
}

// next waits until an event names the file, and returns when it was read.
func (w *fileWatch) next(end time.Time) (time.Time, error) {
	for {
		// A short read deadline also bounds the wait when ctx ends.
		wake := time.Now().Add(time.Second)
		if end.Before(wake) {
			wake = end
		}
		if err := w.f.SetReadDeadline(wake); err != nil {
			return time.Time{}, err
		}
		n, err := w.f.Read(w.buf)
		at := time.Now()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if at.Before(end) {
				return at, nil // re-read the file: cheap insurance against a missed event
			}
			return time.Time{}, fmt.Errorf("%s: not complete in time", w.path)
		}
		if err != nil {
			return time.Time{}, fmt.Errorf("inotify read: %w", err)
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&w.buf[off]))
			name := w.buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if ev.Mask&unix.IN_Q_OVERFLOW != 0 || cstring(name) == w.name {
				return at, nil
			}
		}
	}
}

func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
