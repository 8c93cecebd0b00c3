package snapshot

import (
	"os"

	"github.com/slipstreamkv/slipstream/internal/atomicfile"
)

// fsys holds every file operation whose failure changes what ends up on
// disk. Tests replace fields to inject a failure (or a crash) at each step.
type fsys struct {
	createTemp func(dir, pattern string) (*os.File, error)
	write      func(f *os.File, b []byte) (int, error)
	writeAt    func(f *os.File, b []byte, off int64) (int, error)
	sync       func(f *os.File) error
	truncate   func(f *os.File, size int64) error
	rename     func(from, to string) error
	link       func(from, to string) error
	syncDir    func(dir string) error
}

func osFS() fsys {
	return fsys{
		createTemp: os.CreateTemp,
		write:      (*os.File).Write,
		writeAt:    (*os.File).WriteAt,
		sync:       (*os.File).Sync,
		truncate:   (*os.File).Truncate,
		rename:     os.Rename,
		link:       os.Link,
		syncDir:    atomicfile.SyncDir,
	}
}

// fileWriter adapts fsys.write to io.Writer.
type fileWriter struct {
	fs *fsys
	f  *os.File
}

func (w fileWriter) Write(b []byte) (int, error) { return w.fs.write(w.f, b) }
