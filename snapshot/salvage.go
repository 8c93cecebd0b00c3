package snapshot

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/slipstreamkv/slipstream/internal/atomicfile"
)

// ErrUnsalvageable: [Salvage] found nothing to keep in a refused file (its
// header is damaged). A fold is a cache of its bucket: move the file aside
// ([Quarantine]) and let its owner sync a new one.
var ErrUnsalvageable = errors.New("snapshot: file cannot be salvaged")

// Salvage cuts a file that loading refuses back to the records before its
// first bad offset: a torn tail that is not at the very end (a hole of zero
// bytes a power loss left in front of later writes, a record that fails its
// CRC with data after it, garbage). It only cuts: the bytes it keeps are the
// file's own, byte for byte, and loading the result then does what it does
// to any file (compacting it if it is not compact). What follows the cut is
// lost; the cursor the kept records end with tells a fold's owner where to
// resume, so a fold re-fetches it from its bucket.
//
// The report describes the file as Salvage found it: its counts cover the
// kept records and [Report.BadOffset] is where it was cut. A file that loads
// is left alone (the report's Err is nil); a refused file whose header is
// damaged gives an error wrapping [ErrUnsalvageable] and the refusal. Like
// [Repair], Salvage takes the log's lock and refuses with [ErrLocked] while
// a [Log] or [Writer] has the file open.
func Salvage(path string) (*Report, error) {
	fsy := osFS()
	return fsy.salvage(path)
}

func (fsy *fsys) salvage(path string) (*Report, error) {
	var rep *Report
	err := withLockedImage(path, "salvage", func(img []byte) error {
		rep = inspect(img)
		rep.setPath(path)
		if rep.Err == nil {
			return nil
		}
		cut, _ := rep.BadOffset()
		if cut < headerLen {
			return fmt.Errorf("%w: %w", ErrUnsalvageable, rep.Err)
		}
		return fsy.cut(path, cut)
	})
	return rep, err
}

// cut truncates the file at path to its first cut bytes and fsyncs it.
func (fsy *fsys) cut(path string, cut int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("snapshot: salvage %s: %w", path, err)
	}
	err = fsy.truncate(f, cut)
	if err == nil {
		err = fsy.sync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("snapshot: salvage %s: cutting at offset %d: %w", path, cut, err)
	}
	return nil
}

// Quarantine moves the log at path aside, as path + ".quarantined-" + the
// UTC time, under the log's lock (it refuses with [ErrLocked] while a [Log]
// or [Writer] has it open), and returns the new path. The file is kept for
// inspection, never deleted; a fold's owner then syncs a new one.
func Quarantine(path string) (string, error) {
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("snapshot: quarantine %s: %w", path, err)
	}
	lock, err := lockLog(path)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	dst, err := atomicfile.Quarantine(path, time.Now())
	if err != nil {
		return "", fmt.Errorf("snapshot: quarantine %s: %w", path, err)
	}
	return dst, nil
}
