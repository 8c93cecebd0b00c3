package pebblefold

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
	"golang.org/x/sync/errgroup"
)

// closingTables bounds the full tables a writer closes (finishes and
// fsyncs) in the background while it fills the next.
const closingTables = 2

// tables writes entries in ascending key order into tables of about
// ingestFileSize under ingestDir, each fsynced when closed, for Pebble to
// ingest. A full table is closed by a goroutine, so that its fsync does
// not stop the writing of the next.
type tables struct {
	fs    vfs.FS
	dir   string
	name  string // the prefix of the tables' file names
	wopts sstable.WriterOptions
	w     *sstable.Writer
	paths []string // every table created, the last one open while w is
	// closing closes full tables, closingTables at a time.
	closing errgroup.Group
}

// newTables returns a writer of tables named name followed by a number.
func (f *Fold) newTables(name string) *tables {
	t := &tables{
		fs:    f.opts.FS,
		dir:   f.opts.FS.PathJoin(f.dir, ingestDir),
		name:  name,
		wopts: f.po.MakeWriterOptions(0, f.db.TableFormat()),
	}
	t.closing.SetLimit(closingTables)
	return t
}

// add writes the put of key (or its removal, del).
func (t *tables) add(key, value []byte, del bool) error {
	if t.w == nil {
		p := t.fs.PathJoin(t.dir, fmt.Sprintf("%s%06d.sst", t.name, len(t.paths)))
		file, err := t.fs.Create(p, vfs.WriteCategoryUnspecified)
		if err != nil {
			return err
		}
		t.paths = append(t.paths, p)
		t.w = sstable.NewWriter(objstorageprovider.NewFileWritable(file), t.wopts)
	}
	var err error
	if del {
		err = t.w.Delete(key)
	} else {
		err = t.w.Set(key, value)
	}
	if err == nil && t.w.Raw().EstimatedSize() >= ingestFileSize {
		w := t.w
		t.w = nil
		t.closing.Go(w.Close) // waits while closingTables are closing
	}
	return err
}

// finish closes the open table and waits for those closing.
func (t *tables) finish() error {
	var err error
	if t.w != nil {
		err = t.w.Close()
		t.w = nil
	}
	return errors.Join(err, t.closing.Wait())
}

// abandon closes the tables after a failure; the caller removes the files
// in paths.
func (t *tables) abandon() {
	if t.w != nil {
		t.w.Close()
		t.w = nil
	}
	t.closing.Wait()
}
