package agent

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/plugins/host"
	"github.com/slipstreamkv/slipstream/snapshot"
	"github.com/slipstreamkv/slipstream/snapshot/pebblefold"
)

// The record of what the agent committed to a watch's outputs lives in the
// watch's data directory, in a fold of the watch's fold kind: a snapshot log
// (memory), or a Pebble directory (disk) that keeps it out of RAM.
const (
	outputsRecordFile = "outputs.snap"
	outputsRecordDir  = "outputs.pebble"
)

// recordChunk is how many entries one append to the record holds, so the
// first render of a million files is not one huge write.
const recordChunk = 4096

// recordMemTableBytes is the memtable size of a record kept in Pebble
// (fold = "disk"): a record takes batches of at most recordChunk entries
// of about 100 bytes, and a memtable of a fold's default size (64 MiB)
// would let it hold that much memory, and logs, per watch beside the
// fold's.
const recordMemTableBytes = 4 << 20

// outputRecord remembers every file the agent committed to a watch's
// outputs: its digest, size, mode and owner, and a stat fingerprint (mtime,
// inode, ctime) that lets a check skip hashing a file that did not change. It is a
// fold (a snapshot append log compacted in the background, or Pebble), so a
// batch writes only what it changed, however many files the record holds.
// Keys are "<output>/<path>": output names cannot hold a '/', and plugin
// paths are valid UTF-8, as fold keys must be.
//
// It does not cover directories, nor files the plugin did not write (a
// plugin that prunes owns those). A commit marks its files pending in the
// record before it touches them and settles them after (driftcommit.go),
// so that a commit cut short is not taken for drift.
type outputRecord struct {
	log  kvcore.Fold
	outs map[string]host.Output // by name
	mu   sync.Mutex             // one Apply at a time, as folds require
	l    *slog.Logger
	// syncing is the fsync that committed or settled started in the
	// background (nil: none), which synced, the next commit and Close wait
	// for.
	syncing chan error
}

// fileState is one state of a recorded file.
type fileState struct {
	sum   [sha256.Size]byte
	size  int64
	mode  fs.FileMode // permission bits
	uid   uint32
	gid   uint32
	mtime int64 // nanoseconds; with ino and ctime, the stat fingerprint
	ino   uint64
	// ctime is the change time in nanoseconds, which an edit moves even
	// when it restores the size and mtime; 0 when not recorded (a record
	// of format 1, a platform without it), and then not compared.
	ctime int64
}

// fileRecord is what the record holds for one file: the file as the agent
// committed it or, while a commit is pending, both the file as the commit
// leaves it and as it was before (see outputRecord.committed). A record
// with gone set and pending unset stands for no entry (see update).
type fileRecord struct {
	fileState
	// pending: the entry was written before a commit that may not have
	// taken place (the agent stopped, or the commit failed, part way).
	// The file may be in either state; neither is drift.
	pending bool
	// gone: the commit removes the file (fileState is unused).
	gone bool
	// prior is the file before the commit (pending only); priorGone says
	// there was none the record knew of.
	prior     fileState
	priorGone bool
}

// The encodings of a fileRecord: a format byte, then the fields of a
// fileState in order, little-endian (format 1 lacks the ctime). Format 3
// is a pending record: a flags byte (pendingGone, pendingPriorGone), then
// the state after the commit unless gone, then the prior state unless
// none.
const (
	fileRecordLenV1 = 1 + sha256.Size + 8 + 4 + 4 + 4 + 8 + 8
	fileRecordLen   = fileRecordLenV1 + 8
	fileStateLen    = fileRecordLen - 1
	// pendingHeaderLen is format 3's format byte and flags.
	pendingHeaderLen = 2

	fileRecordFormat        = 2
	fileRecordFormatPending = 3

	pendingGone      = 1 << 0
	pendingPriorGone = 1 << 1
)

func (f fileRecord) encode() []byte {
	if f.gone && !f.pending {
		panic("agent: encoding a record of no entry (see fileRecord.update)")
	}
	if !f.pending {
		return f.fileState.append(append(make([]byte, 0, fileRecordLen), fileRecordFormat))
	}
	var flags byte
	if f.gone {
		flags |= pendingGone
	}
	if f.priorGone {
		flags |= pendingPriorGone
	}
	b := append(make([]byte, 0, pendingHeaderLen+2*fileStateLen), fileRecordFormatPending, flags)
	if !f.gone {
		b = f.fileState.append(b)
	}
	if !f.priorGone {
		b = f.prior.append(b)
	}
	return b
}

func (s fileState) append(b []byte) []byte {
	b = append(b, s.sum[:]...)
	b = binary.LittleEndian.AppendUint64(b, uint64(s.size))
	b = binary.LittleEndian.AppendUint32(b, uint32(s.mode))
	b = binary.LittleEndian.AppendUint32(b, s.uid)
	b = binary.LittleEndian.AppendUint32(b, s.gid)
	b = binary.LittleEndian.AppendUint64(b, uint64(s.mtime))
	b = binary.LittleEndian.AppendUint64(b, s.ino)
	return binary.LittleEndian.AppendUint64(b, uint64(s.ctime))
}

// update is the change to the record that makes key's entry f: a put, or a
// delete for a record that stands for no entry.
func (f fileRecord) update(key string) kvcore.Update {
	if f.gone && !f.pending {
		return kvcore.Update{Op: kvcore.OpDelete, Key: key}
	}
	return kvcore.Update{Op: kvcore.OpPut, Key: key, Value: f.encode()}
}

func decodeFileRecord(b []byte) (fileRecord, error) {
	var f fileRecord
	switch {
	case len(b) == fileRecordLenV1 && b[0] == 1:
		f.fileState = decodeFileState(b[1:])
	case len(b) == fileRecordLen && b[0] == fileRecordFormat:
		f.fileState = decodeFileState(b[1:])
	case len(b) >= 2 && b[0] == fileRecordFormatPending:
		flags := b[1]
		f.pending, f.gone, f.priorGone = true, flags&pendingGone != 0, flags&pendingPriorGone != 0
		states := 2
		if f.gone {
			states--
		}
		if f.priorGone {
			states--
		}
		if flags&^(pendingGone|pendingPriorGone) != 0 || states == 0 || len(b) != pendingHeaderLen+states*fileStateLen {
			return fileRecord{}, fmt.Errorf("unknown pending record of %d bytes, flags %#x", len(b), flags)
		}
		b = b[pendingHeaderLen:]
		if !f.gone {
			f.fileState, b = decodeFileState(b), b[fileStateLen:]
		}
		if !f.priorGone {
			f.prior = decodeFileState(b)
		}
	default:
		return f, fmt.Errorf("unknown record of %d bytes", len(b))
	}
	return f, nil
}

// decodeFileState decodes a fileState of format 2, or of format 1 (no
// ctime) when b is that short.
func decodeFileState(b []byte) fileState {
	var s fileState
	b = b[copy(s.sum[:], b):]
	s.size = int64(binary.LittleEndian.Uint64(b))
	s.mode = fs.FileMode(binary.LittleEndian.Uint32(b[8:]))
	s.uid = binary.LittleEndian.Uint32(b[12:])
	s.gid = binary.LittleEndian.Uint32(b[16:])
	s.mtime = int64(binary.LittleEndian.Uint64(b[20:]))
	s.ino = binary.LittleEndian.Uint64(b[28:])
	if len(b) > 36 {
		s.ctime = int64(binary.LittleEndian.Uint64(b[36:]))
	}
	return s
}

// statRecord is the part of a fileRecord a stat gives.
func statRecord(fi fs.FileInfo) fileRecord {
	ino, uid, gid := fileIdentity(fi)
	return fileRecord{fileState: fileState{size: fi.Size(), mode: fi.Mode().Perm(), uid: uid, gid: gid, mtime: fi.ModTime().UnixNano(), ino: ino, ctime: changeTime(fi)}}
}

// stagedRecord is the record of a staged file: the digest the host took as
// it staged the file when there is one, else a hash of the file.
func stagedRecord(f host.StagedFile) (fileRecord, error) {
	if f.SHA256 == ([sha256.Size]byte{}) {
		return readFileRecord(f.File)
	}
	fi, err := os.Lstat(f.File)
	if err != nil {
		return fileRecord{}, err
	}
	rec := statRecord(fi)
	rec.sum = f.SHA256
	return rec, nil
}

// readFileRecord hashes the regular file at path.
func readFileRecord(path string) (fileRecord, error) {
	f, err := os.Open(path)
	if err != nil {
		return fileRecord{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fileRecord{}, err
	}
	if !fi.Mode().IsRegular() {
		return fileRecord{}, fmt.Errorf("%s is not a regular file", path)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fileRecord{}, fmt.Errorf("hashing %s: %w", path, err)
	}
	rec := statRecord(fi)
	h.Sum(rec.sum[:0])
	return rec, nil
}

// outputRecordPath is where the record of the given fold kind lives in dir.
func outputRecordPath(dir, kind string) string {
	if kind == FoldDisk {
		return filepath.Join(dir, outputsRecordDir)
	}
	return filepath.Join(dir, outputsRecordFile)
}

// outputRecordExists reports whether dir holds a record of the given fold
// kind: a file, or a Pebble directory holding a database (an emptied one
// would silently open as a new, empty record). What cannot be told (a file
// where the directory should be) counts as there, for the open to judge.
func outputRecordExists(dir, kind string) bool {
	path := outputRecordPath(dir, kind)
	if kind != FoldDisk {
		_, err := os.Lstat(path)
		return !errors.Is(err, fs.ErrNotExist)
	}
	desc, err := pebble.Peek(path, vfs.Default)
	if err != nil {
		return !errors.Is(err, fs.ErrNotExist)
	}
	return desc.Exists
}

// openOutputRecord opens (creating it if need be) the record in dir, of the
// given fold kind, for the outputs of a watch; a record of the other kind
// is removed. A record that does not load (see foldCorrupt; not one on a
// full disk), or holds an entry it cannot read (see unreadable), is a
// *corruptError, for the watch to quarantine.
func openOutputRecord(ctx context.Context, dir, kind string, outputs map[string]host.Output, l *slog.Logger) (*outputRecord, error) {
	if err := removeOutputRecords(dir, kind); err != nil {
		return nil, err
	}
	path := outputRecordPath(dir, kind)
	var log kvcore.Fold
	var err error
	if kind == FoldDisk {
		// NoSync: as with the log, a write does not wait for its fsync;
		// sync (Fold.Sync) makes the record durable where it must be.
		log, err = pebblefold.Open(path, pebblefold.Options{NoSync: true, Logger: l, MemTableSize: recordMemTableBytes})
	} else {
		log, err = snapshot.Open(path, snapshot.Options{Logger: l})
	}
	if err != nil && foldCorrupt(err) {
		return nil, &corruptError{kind: stateKindRecord, path: path, err: err}
	}
	if err != nil {
		return nil, fmt.Errorf("opening the record of committed outputs: %w", err)
	}
	rec := &outputRecord{log: log, outs: outputs, l: l}
	if bad, err := rec.unreadable(ctx); bad != nil || err != nil {
		rec.Close()
		if bad != nil {
			return nil, &corruptError{kind: stateKindRecord, path: path, err: bad}
		}
		return nil, fmt.Errorf("reading the record of committed outputs: %w", err)
	}
	return rec, nil
}

// errUnreadable ends unreadable's scan at the first entry it cannot read.
var errUnreadable = errors.New("unreadable entry")

// unreadable returns why the record cannot be used (nil: it can), and the
// error a read of it failed with otherwise (an I/O error, to retry): an
// entry that does not decode, written by a newer slipagent (one run on the
// data_dir before a downgrade) or damaged, or damage the read found. The
// file such an entry stands for would go unchecked for drift, so the
// record is not used (the watch renders in full instead, which records
// every output again).
func (r *outputRecord) unreadable(ctx context.Context) (bad, err error) {
	err = r.log.Range(ctx, "", "", func(e kvcore.Entry) error {
		if _, derr := decodeFileRecord(e.Value); derr != nil {
			bad = fmt.Errorf("its entry %q: %w (written by a newer slipagent, or damaged)", e.Key, derr)
			return errUnreadable
		}
		return nil
	})
	switch {
	case bad != nil:
		return bad, nil
	case foldCorrupt(err):
		return err, nil
	}
	return nil, err
}

// removeOutputRecords removes from dir the records of every fold kind but
// keep ("" removes them all), with the lock file beside a log.
func removeOutputRecords(dir, keep string) error {
	for kind, names := range map[string][]string{
		FoldMemory: {outputsRecordFile, outputsRecordFile + ".lock"},
		FoldDisk:   {outputsRecordDir},
	} {
		if kind == keep {
			continue
		}
		for _, name := range names {
			if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
				return fmt.Errorf("removing the record of committed outputs: %w", err)
			}
		}
	}
	return nil
}

// Close closes the record; a nil record is fine.
func (r *outputRecord) Close() error {
	if r == nil {
		return nil
	}
	r.waitSync()
	return r.log.Close()
}

// recordKey names a staged file in the record.
func recordKey(output, path string) string { return output + "/" + path }

// target is the file a record key names, and whether its output declares
// an owner (the host then keeps it, so a drift check compares it); ok is
// false for an output the watch no longer declares.
func (r *outputRecord) target(key string) (path string, owned, ok bool) {
	output, rel, _ := strings.Cut(key, "/")
	out, ok := r.outs[output]
	if !ok {
		return "", false, false
	}
	return filepath.Join(out.Dir, filepath.FromSlash(rel)), out.Owner != nil, true
}

// apply appends updates to the record durably.
func (r *outputRecord) apply(ctx context.Context, updates []kvcore.Update) error {
	if err := r.write(ctx, updates); err != nil {
		return err
	}
	return r.sync(ctx)
}

// write appends updates to the record, recordChunk at a time. Its last
// chunk may not be durable yet when it returns (see snapshot.Log.Apply and
// openOutputRecord); sync makes it so.
func (r *outputRecord) write(ctx context.Context, updates []kvcore.Update) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(updates) > 0 {
		n := min(len(updates), recordChunk)
		if err := r.log.Apply(ctx, updates[:n], kvcore.Cursor{}); err != nil {
			return fmt.Errorf("recording committed outputs: %w", err)
		}
		updates = updates[n:]
	}
	return nil
}

// syncer is a fold whose Apply can return before its data is durable.
type syncer interface {
	Sync(ctx context.Context) error
}

// sync waits until every write to the record is durable.
func (r *outputRecord) sync(ctx context.Context) error {
	s, ok := r.log.(syncer)
	if !ok {
		return nil // its Apply is durable when it returns
	}
	if err := s.Sync(ctx); err != nil {
		return fmt.Errorf("recording committed outputs: %w", err)
	}
	return nil
}

// get returns the record of key.
func (r *outputRecord) get(key string) (fileRecord, bool, error) {
	e, err := r.log.Get(key)
	if errors.Is(err, kvcore.ErrNotFound) {
		return fileRecord{}, false, nil
	}
	if err != nil {
		return fileRecord{}, false, err
	}
	fr, err := decodeFileRecord(e.Value)
	if err != nil {
		return fileRecord{}, false, fmt.Errorf("record of %s: %w", key, err)
	}
	return fr, true, nil
}

// each calls fn for every recorded file, in key order. An entry it cannot
// decode is logged and skipped.
func (r *outputRecord) each(ctx context.Context, fn func(key string, fr fileRecord) error) error {
	return r.log.Range(ctx, "", "", func(e kvcore.Entry) error {
		fr, err := decodeFileRecord(e.Value)
		if err != nil {
			r.l.Warn("skipping an unreadable entry of the record of committed outputs", "key", e.Key, "err", err)
			return nil
		}
		return fn(e.Key, fr)
	})
}

// driftOf compares the file at path with its record (its owner too when
// owned). It returns why the file drifted ("" when it did not) and the
// record to keep instead, if any: when only the file's stat fingerprint
// changed (a touch, the same content copied over it, a chown of a file
// whose output declares no owner), or to settle a pending record (see
// fileRecord) with the state the file is in, possibly none. It hashes the
// file only when the size, mode and owner match but the mtime, inode or
// (when recorded) ctime do not.
func driftOf(path string, owned bool, want fileRecord) (reason string, now *fileRecord, err error) {
	if !want.pending {
		return stateDrift(path, owned, false, want.fileState)
	}
	reason, now, err = stateDrift(path, owned, want.gone, want.fileState)
	if err != nil || reason == "" {
		return reason, settle(now, want.gone, want.fileState), err
	}
	// The commit did not take place, or not for this file.
	priorReason, priorNow, err := stateDrift(path, owned, want.priorGone, want.prior)
	switch {
	case err != nil:
		return "", nil, err
	case priorReason == "":
		return "", settle(priorNow, want.priorGone, want.prior), nil
	case want.gone:
		return priorReason, nil, nil // the file is there: compared with what it was
	}
	return reason, nil, nil
}

// settle is the record of a file found in the state gone or s (now, when
// its stat fingerprint changed): gone is no entry.
func settle(now *fileRecord, gone bool, s fileState) *fileRecord {
	switch {
	case now != nil:
		return now
	case gone:
		return &fileRecord{gone: true}
	}
	return &fileRecord{fileState: s}
}

// stateDrift compares the file at path with one state of it: want, or
// none when gone. It returns what driftOf does, for a settled record.
func stateDrift(path string, owned, gone bool, want fileState) (reason string, now *fileRecord, err error) {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		if gone {
			return "", nil, nil
		}
		return "missing", nil, nil
	case err != nil:
		return "", nil, err
	case gone:
		return "re-created", nil, nil
	case !fi.Mode().IsRegular():
		return "not a regular file", nil, nil
	}
	got := statRecord(fi)
	switch {
	case got.mode != want.mode:
		return "mode changed", nil, nil
	case owned && (got.uid != want.uid || got.gid != want.gid):
		return "owner changed", nil, nil
	case got.size != want.size:
		return "content changed", nil, nil
	case got.mtime == want.mtime && got.ino == want.ino && (want.ctime == 0 || got.ctime == want.ctime) && got.uid == want.uid && got.gid == want.gid:
		return "", nil, nil
	}
	got, err = readFileRecord(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "missing", nil, nil
	case err != nil:
		return "", nil, err
	case got.sum != want.sum:
		return "content changed", nil, nil
	case got.mode != want.mode || owned && (got.uid != want.uid || got.gid != want.gid):
		return "mode or owner changed", nil, nil
	}
	return "", &got, nil
}
