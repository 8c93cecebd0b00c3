package snapshot

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// Snapshot is the content of a snapshot file: the state and the cursor it is
// valid at. Entries may include updates written after the cursor (data ahead
// of the cursor is kept: re-folding them is idempotent).
type Snapshot struct {
	Cursor  kvcore.Cursor
	Entries []kvcore.Entry // ascending byte order of keys
}

// StaleKeys returns the snapshot's keys that are not in current, sorted.
func (s *Snapshot) StaleKeys(current map[string]struct{}) []string {
	var stale []string
	for _, e := range s.Entries {
		if _, ok := current[e.Key]; !ok {
			stale = append(stale, e.Key)
		}
	}
	return stale
}

// Action is what loading does to a file.
type Action uint8

// Actions of [Load] and [Repair].
const (
	// ActionNone leaves the file as it is (already compact, or refused).
	ActionNone Action = iota
	// ActionCompact rewrites it in compacted form (sorted puts, one cursor),
	// dropping overwritten and deleted records, stale cursors and a torn tail.
	ActionCompact
	// ActionReset rewrites a file that holds no entries and no cursor to the
	// bare 6-byte header, so later appends do not land after junk.
	ActionReset
)

// String returns "none", "compact" or "reset".
func (a Action) String() string {
	switch a {
	case ActionNone:
		return "none"
	case ActionCompact:
		return "compact"
	case ActionReset:
		return "reset"
	}
	return "action(" + strconv.Itoa(int(a)) + ")"
}

// Report describes a snapshot file: what reading it found and what loading
// does (or, from [Repair], did) to it.
type Report struct {
	Size          int64         // bytes in the file
	Puts          int           // PUT records read
	Deletes       int           // DELETE records read
	Cursors       int           // CURSOR records read
	Keys          int           // live keys
	Cursor        kvcore.Cursor // the last cursor record
	ValidEnd      int64         // where reading stopped: Size for a clean file
	TornTail      bool          // a torn record or zero slack follows ValidEnd and is dropped
	CompactedSize int64         // size of the compacted form
	Action        Action
	// Err is the [*FormatError] of a refused file: loading it fails and
	// leaves it untouched. The counts above cover the records before it.
	Err error

	rep *replayed
}

// BadOffset is the first offset not kept by a load: the refused record, or
// the start of a torn tail. ok is false for a clean file.
func (r *Report) BadOffset() (off int64, ok bool) {
	var fe *FormatError
	if errors.As(r.Err, &fe) {
		return fe.Offset, true
	}
	return r.ValidEnd, r.TornTail
}

// Ratio is the file size over its compacted size (1 for a compact file).
func (r *Report) Ratio() float64 {
	if r.CompactedSize == 0 {
		return 1
	}
	return float64(r.Size) / float64(r.CompactedSize)
}

// Snapshot returns the file's content, or nil when it holds no usable
// snapshot (no entries and a none cursor) or was refused.
func (r *Report) Snapshot() *Snapshot {
	if r.rep == nil || r.Err != nil || r.rep.empty() {
		return nil
	}
	s := &Snapshot{Cursor: r.rep.cursor}
	x := r.rep.idx
	x.sortedMemKeys()
	s.Entries, _ = x.page(make([]kvcore.Entry, 0, x.live), "", "", true, x.live)
	return s
}

// Load reads the snapshot file at path exactly as the Rust crate does
// (upstream spec §6.3–§6.5). It returns nil, nil when the file does not exist
// or holds no usable snapshot. A dirty file (redundant records, stale cursor
// records, a torn tail, zero slack) is rewritten in compacted form, and an
// empty one to the bare header, atomically (temporary file, fsync, rename,
// directory fsync), under the log's lock: while a [Log] or [Writer] has the
// file open, Load returns the same content and leaves the file to its owner.
// A file that is refused, with a [*FormatError] wrapping [ErrInvalidFormat]
// or [ErrCorrupted], is left untouched.
func Load(path string) (*Snapshot, error) {
	fsy := osFS()
	return fsy.loadSnapshot(path)
}

func (fsy *fsys) loadSnapshot(path string) (*Snapshot, error) {
	seen, err := Inspect(path)
	switch {
	case seen == nil && errors.Is(err, fs.ErrNotExist): // only the first read says it is missing
		return nil, nil
	case err != nil:
		return nil, err
	case seen.Action == ActionNone:
		return seen.Snapshot(), nil
	}
	// Loading rewrites the file: only under the lock, from a read made
	// under it (the file may have changed since).
	rep, err := fsy.repair(path)
	if errors.Is(err, ErrLocked) {
		return seen.Snapshot(), nil // the file's owner rewrites it, not us
	}
	if err != nil {
		return nil, err
	}
	return rep.Snapshot(), nil
}

// Inspect reads the file at path without modifying it. A refused file gives
// both the report (with Err set) and the error.
func Inspect(path string) (*Report, error) {
	res, err := readFileImage(path)
	if err != nil {
		return nil, fmt.Errorf("snapshot: read %s: %w", path, err)
	}
	rep := report(res)
	rep.setPath(path)
	return rep, rep.Err
}

// Repair does to the file at path exactly what loading does and reports it.
// A missing file gives an error wrapping fs.ErrNotExist. Repair takes the
// log's lock: while a [Log] or [Writer] has the file open (a running agent),
// it refuses with an error wrapping [ErrLocked] and leaves the file alone.
func Repair(path string) (*Report, error) {
	fsy := osFS()
	return fsy.repair(path)
}

func (fsy *fsys) repair(path string) (*Report, error) {
	var rep *Report
	err := withLockedImage(path, "load", func(img []byte) (err error) {
		rep, err = fsy.loadImage(path, img)
		return err
	})
	return rep, err
}

// withLockedImage runs fn on the log file at path, read whole while its
// lock is held (an error wrapping ErrLocked while a Log or Writer has it
// open). op names the operation in errors.
func withLockedImage(path, op string, fn func(img []byte) error) error {
	if _, err := os.Stat(path); err != nil { // no lock file beside a missing log
		return fmt.Errorf("snapshot: %s %s: %w", op, path, err)
	}
	lock, err := lockLog(path)
	if err != nil {
		return err
	}
	defer lock.Close()
	img, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("snapshot: %s %s: %w", op, path, err)
	}
	return fn(img)
}

// setPath names the file in a refusal.
func (r *Report) setPath(path string) {
	var fe *FormatError
	if errors.As(r.Err, &fe) {
		fe.Path = path
	}
}

func inspect(img []byte) *Report { return report(replay(img)) }

// report describes the fold of a file image.
func report(res *replayed) *Report {
	rep := &Report{Size: int64(res.size), Puts: res.puts, Deletes: res.deletes, Cursors: res.cursors,
		Keys: res.idx.live, Cursor: res.cursor, ValidEnd: int64(res.end), TornTail: res.torn,
		CompactedSize: compactedSize(res.idx.liveBytes, res.idx.live, res.cursor), rep: res}
	if res.err != nil {
		rep.Err = res.err
		return rep
	}
	switch {
	case res.empty():
		rep.CompactedSize = headerLen
		if res.size > headerLen {
			rep.Action = ActionReset
		}
	case !res.compact():
		rep.Action = ActionCompact
	}
	return rep
}

// loadImage replays img, the content of the file at path, and rewrites the
// file as the report says (see load).
func (fsy *fsys) loadImage(path string, img []byte) (*Report, error) {
	return fsy.load(path, inspect(img))
}

// load rewrites the file at path as rep, the report on its content, says.
// After a rewrite the report's index lives in the new file's image, not in
// the one read. Its errors never mean that the file is missing (only the
// read can say that, and the callers decide what a missing file means): a
// rewrite that fails with ENOENT is a failure like any other.
func (fsy *fsys) load(path string, rep *Report) (*Report, error) {
	rep.setPath(path)
	if rep.Err != nil {
		return rep, rep.Err
	}
	var err error
	switch rep.Action {
	case ActionReset:
		err = fsy.replaceFile(path, headerLen, func(w io.Writer) error {
			_, err := w.Write(header[:])
			return err
		})
		rep.rep.idx.stop()
		rep.rep.idx = newIndex()
	case ActionCompact:
		x := rep.rep.idx
		var (
			img  []byte
			base []ref
		)
		err = fsy.replaceFile(path, rep.CompactedSize, func(w io.Writer) (err error) {
			img, base, err = buildImage(w, &x.ar, x.base, rep.rep.cursor, rep.CompactedSize, true)
			return err
		})
		if err == nil {
			x.ar, x.base = imageArena(img), base
		}
	}
	if err != nil {
		return rep, fmt.Errorf("snapshot: rewrite %s: %w", path, err)
	}
	return rep, nil
}
