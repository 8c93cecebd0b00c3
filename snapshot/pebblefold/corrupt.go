package pebblefold

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/slipstreamkv/slipstream/snapshot"
)

// corruptMarker is the file a fold that found its data damaged leaves in
// its directory: Pebble finds a damaged table only when it reads it (a get,
// a scan, a compaction), so a fold opened again would look sound until then.
const corruptMarker = "CORRUPT"

// corruption is what a fold knows of damage to its files. Pebble's default
// answer to a damaged block is to end the process (its logger's Fatalf):
// one bit flipped in one table would stop every fold in it, at every start.
// Instead the first damage found is logged, marked in the directory and
// kept: every later use of the fold fails with it, wrapping
// [snapshot.ErrCorrupted], as does every Open until the directory is moved
// aside (the fold then rebuilds from its source).
type corruption struct {
	fs       vfs.FS
	dir      string
	log      *slog.Logger
	readOnly bool
	err      atomic.Pointer[error]
}

// found is Pebble's DataCorruption event. It must not block long: Pebble
// calls it on the read that found the damage.
func (c *corruption) found(info pebble.DataCorruptionInfo) {
	err := fmt.Errorf("pebblefold: %w: %s: %v (move %s aside; the fold then rebuilds from its source)", snapshot.ErrCorrupted, info.Path, info.Details, c.dir)
	if !c.err.CompareAndSwap(nil, &err) {
		return
	}
	c.log.Error("the disk fold's files are damaged; it fails every use until it is moved aside", "dir", c.dir, "file", info.Path, "err", info.Details.Error())
	if c.readOnly {
		return
	}
	if werr := c.mark(err); werr != nil {
		c.log.Error("cannot mark the disk fold damaged; the next open finds the damage when it reads the file again", "dir", c.dir, "err", werr)
	}
}

// mark writes the marker, durably.
func (c *corruption) mark(err error) error {
	f, cerr := c.fs.Create(c.fs.PathJoin(c.dir, corruptMarker), vfs.WriteCategoryUnspecified)
	if cerr != nil {
		return cerr
	}
	_, werr := io.WriteString(f, err.Error()+"\n")
	werr = errors.Join(werr, f.Sync(), f.Close())
	if werr != nil {
		return werr
	}
	d, derr := c.fs.OpenDir(c.dir)
	if derr != nil {
		return derr
	}
	return errors.Join(d.Sync(), d.Close())
}

// check returns the damage found, nil when none.
func (c *corruption) check() error {
	if p := c.err.Load(); p != nil {
		return *p
	}
	return nil
}

// marked returns an error wrapping [snapshot.ErrCorrupted] when dir holds
// the marker of damage found before.
func marked(fsys vfs.FS, dir string) error {
	f, err := fsys.Open(fsys.PathJoin(dir, corruptMarker))
	if err != nil {
		return nil
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, 4096))
	why := strings.TrimSpace(string(b))
	return fmt.Errorf("%w: %s says the fold was found damaged: %s", snapshot.ErrCorrupted, fsys.PathJoin(dir, corruptMarker), why)
}

// damagedOnOpen wraps, in [snapshot.ErrCorrupted], Pebble's refusal at
// open of tables whose size differs from what its manifest recorded (a
// table truncated or replaced behind it), which Pebble does not mark as
// corruption.
func damagedOnOpen(err error) error {
	if err != nil && !pebble.IsCorruptionError(err) && strings.Contains(err.Error(), "object size mismatch") {
		return fmt.Errorf("%w: %w", snapshot.ErrCorrupted, err)
	}
	return err
}
