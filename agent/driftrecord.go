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

// outputRecord remembers every file the agent committed to a watch's
// outputs: its digest, size, mode and owner, and a stat fingerprint (mtime,
// inode, ctime) that lets a check skip hashing a file that did not change. It is a
// fold (a snapshot append log compacted in the background, or Pebble), so a
// batch writes only what it changed, however many files the record holds.
// Keys are "<output>/<path>": output names cannot hold a '/', and plugin
// paths are valid UTF-8, as fold keys must be.
//
// It does not cover directories, nor files the plugin did not write (a
// plugin that prunes owns those). The record is written after the commit:
// a crash in between leaves a stale entry, which a drift check takes for
// drift and repairs with a full render (which re-records it).
type outputRecord struct {
	log  kvcore.Fold
	outs map[string]host.Output // by name
	mu   sync.Mutex             // one Apply at a time, as folds require
	l    *slog.Logger
	// syncing is the fsync that committed started and synced waits for.
	syncing chan error
}

// fileRecord is what the record holds for one file.
type fileRecord struct {
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

// fileRecordLen is the encoded size of a fileRecord: a format byte, then the
// fields in order, little-endian. Format 1 records lack the ctime.
const (
	fileRecordLenV1 = 1 + sha256.Size + 8 + 4 + 4 + 4 + 8 + 8
	fileRecordLen   = fileRecordLenV1 + 8
)

const fileRecordFormat = 2

func (f fileRecord) encode() []byte {
	b := make([]byte, 0, fileRecordLen)
	b = append(b, fileRecordFormat)
	b = append(b, f.sum[:]...)
	b = binary.LittleEndian.AppendUint64(b, uint64(f.size))
	b = binary.LittleEndian.AppendUint32(b, uint32(f.mode))
	b = binary.LittleEndian.AppendUint32(b, f.uid)
	b = binary.LittleEndian.AppendUint32(b, f.gid)
	b = binary.LittleEndian.AppendUint64(b, uint64(f.mtime))
	b = binary.LittleEndian.AppendUint64(b, f.ino)
	return binary.LittleEndian.AppendUint64(b, uint64(f.ctime))
}

func decodeFileRecord(b []byte) (fileRecord, error) {
	var f fileRecord
	if !(len(b) == fileRecordLen && b[0] == fileRecordFormat || len(b) == fileRecordLenV1 && b[0] == 1) {
		return f, fmt.Errorf("unknown record of %d bytes", len(b))
	}
	b = b[1+copy(f.sum[:], b[1:]):]
	f.size = int64(binary.LittleEndian.Uint64(b))
	f.mode = fs.FileMode(binary.LittleEndian.Uint32(b[8:]))
	f.uid = binary.LittleEndian.Uint32(b[12:])
	f.gid = binary.LittleEndian.Uint32(b[16:])
	f.mtime = int64(binary.LittleEndian.Uint64(b[20:]))
	f.ino = binary.LittleEndian.Uint64(b[28:])
	if len(b) > 36 {
		f.ctime = int64(binary.LittleEndian.Uint64(b[36:]))
	}
	return f, nil
}

// statRecord is the part of a fileRecord a stat gives.
func statRecord(fi fs.FileInfo) fileRecord {
	ino, uid, gid := fileIdentity(fi)
	return fileRecord{size: fi.Size(), mode: fi.Mode().Perm(), uid: uid, gid: gid, mtime: fi.ModTime().UnixNano(), ino: ino, ctime: changeTime(fi)}
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

// openOutputRecord opens the record in dir, of the given fold kind, for
// the outputs of a watch; a record of the other kind is removed. A record
// that does not load (see foldCorrupt; not one on a full disk) is set aside (renamed with a ".corrupt" suffix) and
// started afresh: the watch holds its fold's lock, so no other agent uses
// it, and losing it only costs drift coverage of the files committed
// before, until they are written again.
func openOutputRecord(dir, kind string, outputs map[string]host.Output, l *slog.Logger) (*outputRecord, error) {
	path := filepath.Join(dir, outputsRecordFile)
	open := func() (kvcore.Fold, error) { return snapshot.Open(path, snapshot.Options{Logger: l}) }
	if kind == FoldDisk {
		path = filepath.Join(dir, outputsRecordDir)
		// NoSync: as with the log, a write does not wait for its fsync;
		// sync (Fold.Sync) makes the record durable where it must be.
		open = func() (kvcore.Fold, error) { return pebblefold.Open(path, pebblefold.Options{NoSync: true, Logger: l}) }
	}
	if err := removeOutputRecords(dir, kind); err != nil {
		return nil, err
	}
	log, err := open()
	if err != nil && foldCorrupt(err) {
		l.Warn("the record of committed outputs does not open; setting it aside and starting a new one (drift in files committed before goes unnoticed until they are written again)", "path", path, "err", err)
		rerr := os.RemoveAll(path + ".corrupt")
		if rerr == nil {
			rerr = os.Rename(path, path+".corrupt")
		}
		if rerr != nil {
			return nil, fmt.Errorf("setting aside %s: %w (it does not open: %w)", path, rerr, err)
		}
		log, err = open()
	}
	if err != nil {
		return nil, fmt.Errorf("opening the record of committed outputs: %w", err)
	}
	return &outputRecord{log: log, outs: outputs, l: l}, nil
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

// hash reads the staged files of a commit, before it renames them (the
// rename keeps what the record holds: content, mode, owner, mtime, inode,
// but not the ctime, which stamp records after it), and returns the
// record's changes for once it succeeded. A staged file it
// cannot read is left out of the record, and logged. A nil record returns
// nothing.
func (r *outputRecord) hash(staged []host.StagedFile) []kvcore.Update {
	if r == nil {
		return nil
	}
	updates := make([]kvcore.Update, 0, len(staged))
	for _, f := range staged {
		key := recordKey(f.Output, f.Path)
		if f.Remove {
			updates = append(updates, kvcore.Update{Op: kvcore.OpDelete, Key: key})
			continue
		}
		fr, err := stagedRecord(f)
		if err != nil {
			r.l.Warn("cannot record a staged file; drift of it goes unnoticed", "path", f.Target, "err", err)
			updates = append(updates, kvcore.Update{Op: kvcore.OpDelete, Key: key})
			continue
		}
		updates = append(updates, kvcore.Update{Op: kvcore.OpPut, Key: key, Value: fr.encode()})
	}
	return updates
}

// committed records what hash returned for the files written, just before
// the commit renames them (see watchRunner.commit); removals wait for the
// commit (see removed). The record's fsync runs in the background
// when it returns (the record's writes do not wait for theirs: a log fold
// leaves a small write's fsync to the next one, a Pebble record commits
// without syncing its write-ahead log; committed starts it): the commit
// overlaps it with the staged files' and waits for it with synced before
// the first rename.
// A failure is logged, not returned: the files and hooks must not wait for
// the record, and a stale entry only costs a needless full render later.
func (r *outputRecord) committed(ctx context.Context, updates []kvcore.Update) {
	if r == nil {
		return
	}
	r.syncing = nil // an earlier commit's, if it failed before synced
	puts := withOp(updates, kvcore.OpPut)
	if len(puts) == 0 {
		return
	}
	if err := r.write(ctx, puts); err != nil {
		r.l.Warn("cannot record committed outputs; a later drift check may render again needlessly", "err", err)
		return
	}
	r.syncing = make(chan error, 1)
	go func(done chan<- error) { done <- r.sync(ctx) }(r.syncing)
}

// removed records the removals among what hash returned (files the commit
// removed, or could not read), once the commit took place. Recorded before
// it, as the files written are, a commit that failed would leave a file
// the record no longer covers, which no drift check looks at, and a later
// write of the same content stages nothing that records it again. A
// failure is logged: an entry left for a removed file costs a needless
// render, which finds the file gone and drops the entry.
func (r *outputRecord) removed(ctx context.Context, updates []kvcore.Update) {
	if r == nil {
		return
	}
	removals := withOp(updates, kvcore.OpDelete)
	if len(removals) == 0 {
		return
	}
	if err := r.write(ctx, removals); err != nil {
		r.l.Warn("cannot record removed outputs; a later drift check may render again needlessly", "err", err)
	}
}

// withOp returns the updates among updates (what hash returned: puts and
// deletes) whose Op is op, in their order.
func withOp(updates []kvcore.Update, op kvcore.Op) []kvcore.Update {
	var out []kvcore.Update
	for _, u := range updates {
		if u.Op == op {
			out = append(out, u)
		}
	}
	return out
}

// stamp records the change time of the files a commit renamed into place
// (the rename moved it), given the staged files and what hash returned for
// them, so that the next drift check need not hash them again. A file
// whose stat no longer matches its record is left as hash recorded it: a
// check hashes it. A failure is logged: it costs only that hashing.
func (r *outputRecord) stamp(ctx context.Context, staged []host.StagedFile, updates []kvcore.Update) {
	if r == nil || len(updates) != len(staged) {
		return
	}
	stamped := make([]kvcore.Update, 0, len(updates))
	seen := make(map[string]bool, len(updates))
	for i := len(updates) - 1; i >= 0; i-- { // a key's last update is the one in force
		u := updates[i]
		if seen[u.Key] || u.Op != kvcore.OpPut {
			seen[u.Key] = true
			continue
		}
		seen[u.Key] = true
		fr, err := decodeFileRecord(u.Value)
		if err != nil {
			continue
		}
		fi, err := os.Lstat(staged[i].Target)
		if err != nil {
			continue
		}
		now := statRecord(fi)
		if now.ctime == fr.ctime || now.size != fr.size || now.mode != fr.mode || now.mtime != fr.mtime || now.ino != fr.ino || now.uid != fr.uid || now.gid != fr.gid {
			continue
		}
		fr.ctime = now.ctime
		stamped = append(stamped, kvcore.Update{Op: kvcore.OpPut, Key: u.Key, Value: fr.encode()})
	}
	if len(stamped) == 0 {
		return
	}
	if err := r.write(ctx, stamped); err != nil {
		r.l.Warn("cannot record the change time of committed outputs; the next drift check hashes them", "err", err)
	}
}

// kept records the files a commit found as the plugin wrote them, which it
// staged nothing for (host.KeptFile), when the record lacks them or holds
// another content, mode or owner: outputs in place before the record was (a data_dir
// wiped, a host provisioned with its files) are then checked for drift as
// the ones the agent wrote are. A failure is logged: it leaves those files
// unchecked until the next render that writes them.
func (r *outputRecord) kept(ctx context.Context, files []host.KeptFile) {
	if r == nil || len(files) == 0 {
		return
	}
	var updates []kvcore.Update
	for _, f := range files {
		key := recordKey(f.Output, f.Path)
		now := statRecord(f.Info)
		now.sum = f.SHA256
		if fr, ok, err := r.get(key); err == nil && ok && fr.sum == now.sum && fr.mode == now.mode && fr.uid == now.uid && fr.gid == now.gid {
			continue
		}
		updates = append(updates, kvcore.Update{Op: kvcore.OpPut, Key: key, Value: now.encode()})
	}
	if len(updates) == 0 {
		return
	}
	if err := r.write(ctx, updates); err != nil {
		r.l.Warn("cannot record outputs that were already as rendered; drift of them goes unnoticed until they are written again", "files", len(updates), "err", err)
	}
}

// synced returns once what committed wrote is durable. A failure is logged,
// as in committed.
func (r *outputRecord) synced(ctx context.Context) {
	if r == nil {
		return
	}
	var err error
	if r.syncing != nil {
		err = <-r.syncing
		r.syncing = nil
	} else {
		err = r.sync(ctx)
	}
	if err != nil {
		r.l.Warn("cannot record committed outputs; a later drift check may render again needlessly", "err", err)
	}
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
// owned). It returns why the file drifted ("" when it did not) and, when
// only its stat fingerprint changed (a touch, the same content copied over
// it, a chown of a file whose output declares no owner), the record to keep
// instead. It hashes the file only when the size, mode and owner match but
// the mtime, inode or (when recorded) ctime do not.
func driftOf(path string, owned bool, want fileRecord) (reason string, now *fileRecord, err error) {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return "missing", nil, nil
	case err != nil:
		return "", nil, err
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
