package host

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"

	"github.com/slipstreamkv/slipstream/plugins/abi"
)

// A call reshapes an output when a file becomes a directory (remove "a",
// write "a/b") or a directory becomes a file (remove every file below "a",
// write "a"), in any order within the call. Staging cannot do the write
// beside its target: the target's directory cannot exist yet, or the target
// is still a directory. So:
//
//   - a write below a non-directory (stagingDir sets op.blocked) stages its
//     file in the nearest existing directory, and the commit creates the
//     directories once the name is free;
//   - a write onto a directory (op.replaces) stages beside it as usual, and
//     the commit removes the emptied directories just before the rename;
//   - settle, once the guest has returned, checks that the call removes what
//     is in the way and plans those steps; the commit runs them in staging
//     order, running the removals a write needs just before it.

// dirReadChunk is how many entries settle reads from a directory at a time:
// it stops at the first entry the call does not remove, so a huge directory
// costs one chunk, not a full listing.
const dirReadChunk = 256

// settle checks that every write reshaping the output comes with the
// removals that make room for it, and plans the commit's extra steps. The
// host calls it when the guest returns success, so the order of the
// requests within the call does not matter; commit calls it too. A write
// below a file (or other non-directory) needs the removal of that file; a
// write onto a directory needs the removal of every file below it (its
// directories, empty ones included, go with them). Otherwise the call fails
// with [ErrDenied].
//
// Walking the directories costs at most Limits.MaxFiles directory entries
// beyond the files the call removes, whatever the directories hold.
func (s *stage) settle() error {
	if s.done {
		return ErrDone
	}
	s.compact()
	if s.settled {
		return nil
	}
	budget := s.limits.MaxFiles
	for _, op := range s.ops {
		switch {
		case op.blocked != "":
			if rm := s.byPath[outPath{op.output, op.blocked}]; rm == nil || !rm.remove() {
				return fmt.Errorf("%w: write %s: %s is not a directory, and this call does not remove it", ErrDenied, abi.Quote(op.path), abi.Quote(op.blocked))
			}
			op.plan = &reshapePlan{frees: []string{op.blocked}}
		case op.replaces:
			op.plan = &reshapePlan{}
			if err := s.planEmptying(op, &budget); err != nil {
				return err
			}
		}
	}
	s.settled = true
	return nil
}

// planEmptying lists what the commit removes before renaming onto op.path,
// a directory: the staged removals below it and its directories, deepest
// first (op.path last). Anything below it that the call does not remove
// fails the call. A symlink below it is an entry to remove like a file,
// never followed.
func (s *stage) planEmptying(op *stagedOp, budget *int) error {
	r := s.roots[op.output]
	var walk func(dir string) error
	walk = func(dir string) error {
		f, err := r.OpenFile(dir, openDirFlags, 0)
		switch {
		case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
			return nil // gone since staging: nothing to empty
		case err != nil:
			return fmt.Errorf("%w: write %s: read directory %s: %v", ErrIO, abi.Quote(op.path), abi.Quote(dir), err)
		}
		defer f.Close()
		for {
			ents, err := f.ReadDir(dirReadChunk)
			for _, e := range ents {
				q := dir + "/" + e.Name()
				if !e.IsDir() {
					if rm := s.byPath[outPath{op.output, q}]; rm == nil || !rm.remove() {
						return fmt.Errorf("%w: write %s: it is a directory holding %s, which this call does not remove", ErrDenied, abi.Quote(op.path), abi.Quote(q))
					}
					op.plan.frees = append(op.plan.frees, q)
					continue
				}
				if *budget--; *budget < 0 || strings.Count(q, "/") >= abi.MaxPathDepth {
					return fmt.Errorf("%w: write %s: it is a directory holding more than %d directories (limit max_files of the plugin), or deeper than %d levels", ErrLimit, abi.Quote(op.path), s.limits.MaxFiles, abi.MaxPathDepth)
				}
				if err := walk(q); err != nil {
					return err
				}
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("%w: write %s: read directory %s: %v", ErrIO, abi.Quote(op.path), abi.Quote(dir), err)
			}
		}
		op.plan.rmdirs = append(op.plan.rmdirs, dir)
		return nil
	}
	return walk(op.path)
}

// commitOp commits one staged change; dirs collects the directories it
// changed, for the final fsyncs.
func (s *stage) commitOp(op *stagedOp, dirs map[outPath]bool) error {
	r := s.roots[op.output]
	if op.remove() {
		return s.unlinkStaged(r, op, dirs)
	}
	if err := s.reshape(r, op, dirs); err != nil {
		return err
	}
	tmp := op.tmp()
	if err := s.rename(r, tmp, op.path); err != nil {
		return fmt.Errorf("%w: commit: rename onto %s in output %q: %v", ErrIO, abi.Quote(op.path), op.output, err)
	}
	dirs[outPath{op.output, path.Dir(tmp)}] = true
	dirs[outPath{op.output, path.Dir(op.path)}] = true
	return nil
}

// unlinkStaged runs a staged removal, once: a write that needs it runs it
// early. A file already gone is fine.
func (s *stage) unlinkStaged(r *os.Root, op *stagedOp, dirs map[outPath]bool) error {
	if op.done {
		return nil
	}
	op.done = true
	if err := s.unlink(r, op.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: commit: remove %s in output %q: %v", ErrIO, abi.Quote(op.path), op.output, err)
	}
	dirs[outPath{op.output, path.Dir(op.path)}] = true
	return nil
}

// reshape makes room for op's rename as settle planned: it runs the
// removals op needs, removes the directories op replaces and creates the
// directories op's path needs.
func (s *stage) reshape(r *os.Root, op *stagedOp, dirs map[outPath]bool) error {
	var plan reshapePlan
	if op.plan != nil {
		plan = *op.plan
	}
	for _, p := range plan.frees {
		if rm := s.byPath[outPath{op.output, p}]; rm != nil && rm.remove() {
			if err := s.unlinkStaged(r, rm, dirs); err != nil {
				return err
			}
		}
	}
	for _, d := range plan.rmdirs {
		if err := rmdir(r, d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: commit: remove the directory %s in output %q to write a file there: %v", ErrIO, abi.Quote(d), op.output, err)
		}
		delete(dirs, outPath{op.output, d})
		dirs[outPath{op.output, path.Dir(d)}] = true
	}
	if op.blocked == "" {
		return nil
	}
	dir := path.Dir(op.path)
	for i := len(op.blocked); i <= len(dir); i++ {
		if i < len(dir) && dir[i] != '/' {
			continue
		}
		if err := s.makeDir(r, op.output, dir[:i]); err != nil {
			return err
		}
		dirs[outPath{op.output, path.Dir(dir[:i])}] = true
	}
	return nil
}

// makeDir creates the directory d at commit, with the mode and owner
// staging would give it. A directory already there (made for an earlier
// file of this commit) is used; anything else fails the write, a symlink
// included: the commit never follows a link planted where it creates a
// directory.
func (s *stage) makeDir(r *os.Root, output, d string) error {
	err := s.mkdir(r, output, s.outputs[output], d, d)
	if errors.Is(err, fs.ErrExist) {
		fi, lerr := r.Lstat(d)
		if lerr == nil && fi.IsDir() {
			return nil
		}
		if lerr == nil {
			err = fmt.Errorf("%w, and is not a directory (a symlink is not followed)", err)
		}
	}
	if err != nil {
		return fmt.Errorf("%w: commit: create the directory %s in output %q: %v", ErrIO, abi.Quote(d), output, err)
	}
	return nil
}

// rmdir removes the empty directory d of r and nothing else: os.Root's
// Remove would remove a file just as well, and a directory the call created
// may since have been replaced by a committed file.
func rmdir(r *os.Root, d string) error {
	fi, err := r.Lstat(d)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return &fs.PathError{Op: "rmdir", Path: d, Err: syscall.ENOTDIR}
	}
	return r.Remove(d)
}
