package host

import "sync"

// owedDirs holds the directories a commit renamed files into but could not
// fsync. Every later commit over the same output directory fsyncs them
// again and fails while one still fails: a retry of the batch finds its
// files in place and stages nothing, and must not succeed on the failed
// fsync's word (the rename may not survive a power loss). The engine keeps
// them, so a new session's instance, or a reloaded plugin, still owes them.
type owedDirs struct {
	mu   sync.Mutex
	dirs map[owedDir]bool
}

// owedDir is a directory at path in the output whose directory is root.
type owedDir struct{ root, path string }

func newOwedDirs() *owedDirs { return &owedDirs{dirs: map[owedDir]bool{}} }

// in returns the owed directories of the outputs, as outPaths.
func (o *owedDirs) in(outputs map[string]Output) []outPath {
	o.mu.Lock()
	defer o.mu.Unlock()
	var ds []outPath
	for name, out := range outputs {
		for d := range o.dirs {
			if d.root == out.Dir {
				ds = append(ds, outPath{name, d.path})
			}
		}
	}
	return ds
}

// settle records the outcome of d's fsync: owed until one succeeds.
func (o *owedDirs) settle(out Output, path string, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err != nil {
		o.dirs[owedDir{out.Dir, path}] = true
	} else {
		delete(o.dirs, owedDir{out.Dir, path})
	}
}
