package snapshot

import (
	"fmt"
	"io"
	"log/slog"
	"os"
)

// compactJob is one compaction of a [Log].
type compactJob struct {
	snap     snapshot
	from     int64 // log offset where appends made during the job begin
	boundary int   // arena chunks from here on were created during the job
	done     chan struct{}
	err      error // set before done is closed
}

// startCompaction captures the fold and compacts it in a goroutine owned
// by the log (Close waits for it). l.mu is held.
func (l *Log) startCompaction() {
	j := l.newJobLocked()
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		if err := l.runJob(j); err != nil {
			l.opts.Logger.Warn("snapshot: background compaction failed; appends continue on the old log",
				slog.String("path", l.path), slog.Any("error", err))
		}
	}()
}

// newJobLocked folds mem into base, so that from now on mem holds only the
// changes made during the job, and captures the fold. l.mu is held.
func (l *Log) newJobLocked() *compactJob {
	l.indexTailLocked()
	l.idx.merge()
	j := &compactJob{snap: l.snapshotLocked(), from: l.size, boundary: len(l.idx.ar.chunks), done: make(chan struct{})}
	l.job = j
	return j
}

// Compact compacts the log now and waits for it, first waiting for a
// background compaction that is already running.
func (l *Log) Compact() error {
	l.mu.Lock()
	l.awaitJobLocked()
	if err := l.usable(); err != nil {
		l.mu.Unlock()
		return err
	}
	j := l.newJobLocked()
	l.mu.Unlock()
	return l.runJob(j)
}

// awaitJobLocked waits, without the lock, until no compaction runs. l.mu
// is held on entry and on return.
func (l *Log) awaitJobLocked() {
	for l.job != nil {
		j := l.job
		l.mu.Unlock()
		<-j.done
		l.mu.Lock()
	}
}

// runJob writes the captured fold into a temporary file without the lock,
// then, holding the lock, appends what was logged meanwhile, fsyncs, renames
// it over the log, fsyncs the directory and switches to the new file and
// arena. On failure before the rename the old log stays in use and the next
// attempt waits for another CompactThreshold of appends.
func (l *Log) runJob(j *compactJob) (err error) {
	defer close(j.done)
	f, fresh, refs, werr := j.snap.writeImage(&l.fs, l.path)

	l.mu.Lock()
	defer l.mu.Unlock()
	l.job = nil
	defer func() {
		j.err = err
		if err != nil {
			l.due = l.appended + l.opts.CompactThreshold
		}
	}()
	if werr != nil {
		return fmt.Errorf("snapshot: compact %s: %w", l.path, werr)
	}
	// The last Apply's fsync settles before l.f is replaced (and closed
	// under it); if it failed, l.err says so.
	l.settleLocked()
	if l.err != nil { // a failed append may have left the log in doubt
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("snapshot: compact %s: %w", l.path, ErrPoisoned)
	}
	size := j.snap.size()
	if err := l.copyTail(f, j.from, size); err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("snapshot: compact %s: %w", l.path, err)
	}
	renamed, err := l.fs.install(f, l.path)
	if !renamed {
		return fmt.Errorf("snapshot: compact %s: %w", l.path, err)
	}
	// The path names the new file now (even if the directory fsync failed):
	// append there, never to the replaced inode.
	l.retire(l.f)
	l.f = f
	tail := l.size - j.from
	l.size, l.appended, l.due, l.recheck = size+tail, tail, max(l.opts.CompactThreshold, size), 0
	l.swapArena(&fresh, refs, j.boundary)
	l.compactions++
	l.dirUnsynced = err != nil // the next Apply retries it
	if err != nil {
		return fmt.Errorf("snapshot: compact %s: sync directory: %w", l.path, err)
	}
	return nil
}

// copyTail appends the log's bytes from offset from (records appended during
// the job) to f at offset at, and fsyncs f. It reads them through l.f, the
// file the records were written to, never by path. l.mu is held.
func (l *Log) copyTail(f *os.File, from, at int64) error {
	if n := l.size - from; n > 0 {
		buf := make([]byte, min(n, 1<<20))
		for off := from; off < l.size; {
			m, err := l.f.ReadAt(buf[:min(int64(len(buf)), l.size-off)], off)
			if err != nil && err != io.EOF {
				return err
			}
			if m == 0 {
				return io.ErrUnexpectedEOF
			}
			if _, err := l.fs.writeAt(f, buf[:m], at+off-from); err != nil {
				return err
			}
			off += int64(m)
		}
	}
	return l.fs.sync(f)
}

// swapArena makes the compacted copy the index's base. Entries written
// during the job live in chunks from boundary on; they move behind the
// fresh chunks and mem's references follow them. l.mu is held.
func (l *Log) swapArena(fresh *arena, refs []ref, boundary int) {
	x := l.idx
	shift := len(fresh.chunks) - boundary
	chunks := append(fresh.chunks, x.ar.chunks[boundary:]...)
	for k, r := range x.mem {
		if r != tombstone {
			x.mem[k] = r + ref(uint64(shift)<<refOffBits)
		}
	}
	x.ar = arena{chunks: chunks, sealed: x.ar.sealed || len(chunks) == len(fresh.chunks), spare: x.ar.spare}
	x.base = refs
	x.abbr = abbrevs{}
	l.retireWindowsLocked() // none of the chunks kept is one
}
