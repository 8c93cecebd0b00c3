package host

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"slices"
	"sync"

	"github.com/slipstreamkv/slipstream/plugins/abi"
)

// commitSyncWorkers is how many fsyncs a commit runs at once. File systems
// batch concurrent fsyncs into fewer journal commits, so a commit of many
// files takes a fraction of the time of fsyncing them one by one
// (BenchmarkCommit).
const commitSyncWorkers = 16

// commit fsyncs every staged file, then renames each onto its target (or
// removes the target) in staging order, then fsyncs every directory it
// changed. A write that reshapes the output first runs the removals it
// needs, removes the directories it replaces or creates the ones its path
// needs (reshape.go).
//
// The staged files are durable before the first rename, so a file renamed
// into place is complete (old or new content, never torn): the commit waits
// for the fsyncs staging started in the background (earlysync.go) and runs
// the others. None of them runs inside the guest's time limit. ctx bounds
// that first step; if it ends, or an fsync fails, everything is discarded. Once renaming has started, the commit runs to the end; if a
// step fails, what is not committed yet is discarded.
func (s *stage) commit(ctx context.Context) error {
	if s.done {
		return ErrDone
	}
	if err := s.settle(); err != nil {
		s.discard()
		return err
	}
	if err := s.syncStaged(ctx); err != nil {
		s.discard()
		return err
	}
	s.done = true
	dirs := map[outPath]bool{}
	for _, c := range s.created {
		dirs[outPath{c.output, path.Dir(c.path)}] = true
	}
	var err error
	for i, op := range s.ops {
		if err = s.commitOp(op, dirs); err != nil {
			// The rest is discarded, with the directories staging created
			// that no renamed file needs: left behind, one could stand
			// where a later call must write a file.
			s.ops = s.ops[i:]
			s.removeTemps()
			for _, d := range s.removeCreated() {
				delete(dirs, d)
			}
			break
		}
	}
	// Directories earlier commits renamed into but could not fsync are
	// fsynced again (see owedDirs); one that is gone since owes nothing.
	fromOwed := map[outPath]bool{}
	for _, d := range s.owed.in(s.outputs) {
		if dirs[d] {
			continue
		}
		if _, _, ref := s.root(d.output); ref != nil {
			s.owed.settle(s.outputs[d.output], d.path, nil) // the output's directory is gone, and its files
			continue
		}
		dirs[d], fromOwed[d] = true, true
	}
	derr := forEach(context.Background(), s.syncWorkers, slices.Collect(maps.Keys(dirs)), func(d outPath) error {
		err := s.syncDir(s.roots[d.output], d.path)
		if fromOwed[d] && errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
		s.owed.settle(s.outputs[d.output], d.path, err)
		if err != nil {
			return fmt.Errorf("%w: commit: fsync directory %s in output %q: %v", ErrIO, abi.Quote(d.path), d.output, err)
		}
		return nil
	})
	if err == nil {
		err = derr
	}
	s.ops = nil
	s.closeRoots()
	return err
}

// sync fsyncs the staged files ahead of commit (see Result.Sync).
func (s *stage) sync(ctx context.Context) error {
	if s.done {
		return ErrDone
	}
	if err := s.syncStaged(ctx); err != nil {
		s.discard()
		return err
	}
	return nil
}

// syncStaged fsyncs every staged file not fsynced yet, and marks it so.
// It first waits for the fsyncs started when files were staged
// (earlysync.go).
func (s *stage) syncStaged(ctx context.Context) error {
	s.collectEarly()
	if s.earlyErr != nil {
		return s.earlyErr
	}
	var files []*stagedOp
	for _, op := range s.ops {
		if !op.remove() && !op.synced {
			files = append(files, op)
		}
	}
	return forEach(ctx, s.syncWorkers, files, func(op *stagedOp) error {
		if err := s.syncFile(s.roots[op.output], op.tmp()); err != nil {
			return fmt.Errorf("%w: commit: fsync the file staged for %s in output %q: %v", ErrIO, abi.Quote(op.path), op.output, err)
		}
		op.synced = true
		return nil
	})
}

// forEach calls fn on every item, at most workers at a time, and returns the
// first error. It starts no more calls once ctx is done, and then returns
// ctx's error. A single item is handled on the caller's goroutine: the
// commit of a one-file batch then waits on no goroutine hand-off, which a
// busy scheduler can delay by milliseconds.
func forEach[T any](ctx context.Context, workers int, items []T, fn func(T) error) error {
	if len(items) == 1 {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(items[0]); err != nil {
			return err
		}
		return ctx.Err()
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	sem := make(chan struct{}, max(workers, 1))
	for _, it := range items {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := fn(it); err != nil {
				mu.Lock()
				first = cmp.Or(first, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// syncPath fsyncs the file or directory name of r, opened for reading.
func syncPath(r *os.Root, name string) error {
	f, err := r.Open(name)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
