package artifact

import (
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/slipstreamkv/slipstream/internal/filelock"
)

// stageDir is a hidden directory an export or import works in, locked for
// as long as it is in use, so that a later export or import in the same
// parent can tell it from the leftover of a crash (whose lock the crash
// released) and remove only the latter.
type stageDir struct {
	dir  string
	lock *os.File // the directory, flocked; nil once released
}

// newStageDir removes the abandoned stages named prefix* in parent, then
// creates and locks a new one. Where flock is unsupported it neither locks
// nor removes anything.
func newStageDir(parent, prefix string) (*stageDir, error) {
	removeAbandoned(parent, prefix)
	var err error
	for range 3 { // a concurrent sweep can remove a stage before it is locked
		var sd *stageDir
		if sd, err = createLocked(parent, prefix); err == nil {
			return sd, nil
		}
	}
	return nil, err
}

// createLocked creates a stage and locks it, failing if it was removed by
// another sweep before the lock was taken.
func createLocked(parent, prefix string) (*stageDir, error) {
	dir, err := os.MkdirTemp(parent, prefix)
	if err != nil {
		return nil, err
	}
	d, err := os.Open(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	err = filelock.TryLock(d)
	if errors.Is(err, errors.ErrUnsupported) {
		d.Close()
		return &stageDir{dir: dir}, nil
	}
	if err == nil { // still the directory we created, not removed meanwhile
		var locked, named os.FileInfo
		if locked, err = d.Stat(); err == nil {
			if named, err = os.Stat(dir); err == nil && !os.SameFile(locked, named) {
				err = errors.New("stage directory replaced")
			}
		}
	}
	if err != nil {
		d.Close()
		os.RemoveAll(dir)
		return nil, err
	}
	return &stageDir{dir: dir, lock: d}, nil
}

// removeAbandoned removes the directories named prefix* in parent whose
// lock it can take: no export or import is using them.
func removeAbandoned(parent, prefix string) {
	ents, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		p := filepath.Join(parent, e.Name())
		d, err := os.Open(p)
		if err != nil {
			continue
		}
		if filelock.TryLock(d) == nil {
			os.RemoveAll(p)
		}
		d.Close()
	}
}

// release unlocks the stage without removing it.
func (s *stageDir) release() {
	if s.lock != nil {
		s.lock.Close()
		s.lock = nil
	}
}

// remove removes the stage, then unlocks it.
func (s *stageDir) remove() {
	os.RemoveAll(s.dir)
	s.release()
}
