package host

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/slipstreamkv/slipstream/plugins/abi"
)

// StagedFile is one staged change, as a check command needs it.
type StagedFile struct {
	Output string // the output's name
	Path   string // relative to the output directory
	// File is the absolute path of the staged content: a hidden file in
	// Target's directory or, when the commit creates that directory, in the
	// nearest one that exists. Empty for a removal.
	File string
	// Target is the absolute path the commit renames File to (or removes).
	Target string
	Remove bool
	// SHA256 is the digest of the staged content, computed when staged, so
	// the caller can record what it committed (to detect drift later)
	// without reading the file again. Zero for a removal.
	SHA256 [sha256.Size]byte
}

// KeptFile is a file a call wrote with the content, mode and owner it
// already had: the call stages nothing for it, and the caller may still
// want to record it as an output it committed (to detect drift later).
type KeptFile struct {
	Output string // the output's name
	Path   string // relative to the output directory
	Target string // its absolute path
	// Info is the file's stat when its content was found to be the
	// call's: a change after that moves its ctime, mtime or size.
	Info   fs.FileInfo
	SHA256 [sha256.Size]byte // of its content
}

// stagedOp is one pending write or removal. A call may stage millions, so
// it is kept small: the staged file's name is derived (tmp), and what only
// a reshape needs hangs off a pointer.
type stagedOp struct {
	output string
	path   string
	tmpID  uint64 // names the staged file (see tmp); 0 for a removal
	idx    int    // in stage.ops
	size   int64
	sum    [sha256.Size]byte // of the content; zero for a removal
	synced bool              // the staged file is fsynced: when staged (commit could not reopen it), or by Result.Sync
	done   bool              // a removal the commit ran early, for a write that needed it

	// A write that reshapes the output (reshape.go). blocked is the
	// shallowest directory of path that is not a directory yet (a file or
	// other non-directory in the way, or a name this call removes): the
	// staged file lies in blocked's parent, and the commit creates blocked
	// and the directories below it. replaces says path was a directory when
	// staged.
	replaces bool
	blocked  string
	plan     *reshapePlan // settle's plan, for a write that reshapes
}

// reshapePlan is what settle plans for a write that reshapes the output:
// the removals the commit runs before the rename and the directories it
// removes first, deepest first.
type reshapePlan struct {
	frees  []string
	rmdirs []string
}

func (op *stagedOp) remove() bool { return op.tmpID == 0 }

// tmp returns the staged file of a write, relative to the output's root: a
// hidden file in the directory of path or, when blocked, of blocked.
func (op *stagedOp) tmp() string {
	dir := path.Dir(op.path)
	if op.blocked != "" {
		dir = path.Dir(op.blocked)
	}
	var id [8]byte
	binary.BigEndian.PutUint64(id[:], op.tmpID)
	var name [len(abi.StagePrefix) + 2*len(id) + len(".tmp")]byte
	n := copy(name[:], abi.StagePrefix)
	n += hex.Encode(name[n:], id[:])
	copy(name[n:], ".tmp")
	return path.Join(dir, string(name[:]))
}

// outPath names a file or directory: a path relative to an output's root.
type outPath struct {
	output string
	path   string
}

// stage holds what one call staged. Writes go to hidden files beside their
// targets (or, for a target whose directory the commit creates, in the
// nearest existing directory); nothing touches a target before commit. It
// is used by one goroutine at a time.
type stage struct {
	outputs map[string]Output
	limits  Limits

	roots   map[string]*os.Root
	ops     []*stagedOp // in staging order; superseded ops are nil until compact
	dropped int         // nil entries of ops
	byPath  map[outPath]*stagedOp
	// kept are the writes that found the file as written (see KeptFile),
	// until a later op on the path; nil unless the caller asked for them.
	kept    map[outPath]KeptFile
	parents map[outPath]int // directory -> staged writes below it
	created []outPath       // directories staging created, parents first
	bytes   int64
	settled bool // settle checked and planned the reshapes
	done    bool

	listings []listing // output_list's recent listings, most recent last

	syncWorkers int // how many fsyncs a commit runs at once

	owed *owedDirs // the engine's: directories earlier commits could not fsync

	// The fsyncs started when files were staged (earlysync.go).
	early        []earlySync
	earlyStarted int
	earlyErr     error // the first of them that failed, for syncStaged

	// seams for fault injection in tests
	rename   func(r *os.Root, from, to string) error
	unlink   func(r *os.Root, name string) error
	syncFile func(r *os.Root, name string) error
	syncDir  func(r *os.Root, dir string) error
	readDir  func(r *os.Root, dir string) ([]fs.DirEntry, error)
}

func newStage(outputs map[string]Output, limits Limits, reportKept bool) *stage {
	s := &stage{
		outputs: outputs, limits: limits,
		roots: map[string]*os.Root{}, byPath: map[outPath]*stagedOp{}, parents: map[outPath]int{},
		syncWorkers: commitSyncWorkers, owed: newOwedDirs(),
		rename: (*os.Root).Rename, unlink: (*os.Root).Remove, syncFile: syncPath, syncDir: syncPath, readDir: readDir,
	}
	if reportKept {
		s.kept = map[outPath]KeptFile{}
	}
	return s
}

// refusal is a host function's answer to a bad request: the status for the
// guest and the error that fails the call.
type refusal struct {
	status abi.Status
	err    error
}

func refuse(status abi.Status, sentinel error, format string, args ...any) *refusal {
	return &refusal{status: status, err: fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))}
}

// errPathEscapes is the text of os.Root's (unexported) error for a path that
// would leave the root; TestStageSymlinkEscape pins it.
const errPathEscapes = "path escapes from parent"

// fsRefusal classifies a file system error met while serving op on p. A
// *fs.PathError is reported without its path, which the message already
// quotes (bounded).
func fsRefusal(op, p string, err error) *refusal {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		escapes := pe.Err.Error() == errPathEscapes
		err = fmt.Errorf("%s: %w", pe.Op, pe.Err)
		if escapes {
			return refuse(abi.ErrDenied, ErrDenied, "%s %s: leaves the output directory: %v", op, abi.Quote(p), err)
		}
	}
	if errors.Is(err, syscall.ENOTDIR) {
		return refuse(abi.ErrInvalid, ErrDenied, "%s %s: a parent is not a directory: %v", op, abi.Quote(p), err)
	}
	return refuse(abi.ErrIO, ErrIO, "%s %s: %v", op, abi.Quote(p), err)
}

// outputName returns the declared output that the guest bytes b name. It
// compares b in place, so a long undeclared name is neither copied nor
// quoted whole.
func (s *stage) outputName(b []byte) (string, *refusal) {
	for name := range s.outputs {
		if name == string(b) {
			return name, nil
		}
	}
	return "", undeclaredOutput(abi.Quote(b))
}

func undeclaredOutput(quoted string) *refusal {
	return &refusal{status: abi.ErrDenied, err: &UndeclaredError{Kind: "output", Name: quoted}}
}

func (s *stage) root(output string) (*os.Root, Output, *refusal) {
	out, ok := s.outputs[output]
	if !ok {
		return nil, out, undeclaredOutput(abi.Quote(output))
	}
	if r := s.roots[output]; r != nil {
		return r, out, nil
	}
	r, err := os.OpenRoot(out.Dir)
	if err != nil {
		return nil, out, refuse(abi.ErrIO, ErrIO, "open output %q: %v", output, err)
	}
	s.roots[output] = r
	return r, out, nil
}

func (s *stage) prepare(output, p string) (*os.Root, Output, *refusal) {
	if s.done {
		return nil, Output{}, refuse(abi.ErrState, ErrIO, "staging after the call ended")
	}
	r, out, ref := s.root(output)
	if ref != nil {
		return nil, out, ref
	}
	if err := abi.CheckPath(p); err != nil {
		return nil, out, refuse(abi.ErrInvalid, ErrDenied, "output %q: %v", output, err)
	}
	s.supersede(output, p)
	delete(s.kept, outPath{output, p})
	if s.count()+1 > s.limits.MaxFiles {
		return nil, out, refuse(abi.ErrLimit, ErrLimit, "more than %d staged files in one call (limit max_files of the plugin)", s.limits.MaxFiles)
	}
	return r, out, nil
}

// supersede drops an earlier op on the same path: the last op wins.
func (s *stage) supersede(output, p string) {
	op := s.byPath[outPath{output, p}]
	if op == nil {
		return
	}
	s.ops[op.idx] = nil // in O(1): a call may stage millions
	s.dropped++
	delete(s.byPath, outPath{output, p})
	if !op.remove() {
		s.bytes -= op.size
		s.countParents(op, -1)
		if len(s.early) > 0 {
			s.collectEarly() // op's fsync may still run: let it end first
		}
		_ = s.roots[output].Remove(op.tmp())
	}
}

// add records a new op.
func (s *stage) add(op *stagedOp) {
	if s.dropped > len(s.ops)/2 { // a guest rewriting one path forever
		s.compact()
	}
	op.idx = len(s.ops)
	s.ops = append(s.ops, op)
	s.byPath[outPath{op.output, op.path}] = op
	if !op.remove() {
		s.bytes += op.size
		s.countParents(op, 1)
	}
}

// count is the number of staged ops.
func (s *stage) count() int { return len(s.ops) - s.dropped }

// compact drops the superseded ops' nil entries from ops.
func (s *stage) compact() {
	if s.dropped == 0 {
		return
	}
	s.ops = slices.DeleteFunc(s.ops, func(op *stagedOp) bool { return op == nil })
	for i, op := range s.ops {
		op.idx = i
	}
	s.dropped = 0
}

// countParents adds delta to the count of staged writes below each
// directory of op's path.
func (s *stage) countParents(op *stagedOp, delta int) {
	for d := path.Dir(op.path); d != "."; d = path.Dir(d) {
		k := outPath{op.output, d}
		if s.parents[k] += delta; s.parents[k] == 0 {
			delete(s.parents, k)
		}
	}
}

// fileDirConflict refuses a write of p that would need p to be both a file
// and a directory once this call commits: p is a directory of a file staged
// before, or a directory of p is a file staged before. Such a set cannot
// commit, and a failed attempt would leave p's directories behind. (A file
// or directory on disk in the way is the business of settle: this call may
// still remove it.)
func (s *stage) fileDirConflict(output, p string) *refusal {
	if s.parents[outPath{output, p}] > 0 {
		return refuse(abi.ErrInvalid, ErrDenied, "write %s: files below it were staged in this call", abi.Quote(p))
	}
	for d := path.Dir(p); d != "."; d = path.Dir(d) {
		if op := s.byPath[outPath{output, d}]; op != nil && !op.remove() {
			return refuse(abi.ErrInvalid, ErrDenied, "write %s: its directory %s was staged as a file in this call", abi.Quote(p), abi.Quote(d))
		}
	}
	return nil
}

// write stages data for output/p with the given mode (0 = the output's).
func (s *stage) write(output, p string, data []byte, mode uint32) (abi.Status, *refusal) {
	r, out, ref := s.prepare(output, p)
	if ref != nil {
		return ref.status, ref
	}
	perm := out.Mode
	if mode != 0 {
		if mode&^abi.ModeMask != 0 {
			ref := refuse(abi.ErrInvalid, ErrDenied, "write %s: mode %#o has bits beyond 0o777", abi.Quote(p), mode)
			return ref.status, ref
		}
		perm = fs.FileMode(mode)
	}
	size := int64(len(data))
	if size > s.limits.MaxFileSize {
		ref := refuse(abi.ErrLimit, ErrLimit, "write %s: %d bytes exceed the %d-byte file limit (limit max_file_size of the plugin)", abi.Quote(p), size, s.limits.MaxFileSize)
		return ref.status, ref
	}
	if s.bytes+size > s.limits.MaxBytes {
		ref := refuse(abi.ErrLimit, ErrLimit, "write %s: staged bytes would exceed the %d-byte call limit (limit max_bytes of the plugin)", abi.Quote(p), s.limits.MaxBytes)
		return ref.status, ref
	}
	if ref := s.fileDirConflict(output, p); ref != nil {
		return ref.status, ref
	}
	op := &stagedOp{output: output, path: p, size: size, blocked: s.removedDir(output, p)}
	if op.blocked == "" {
		same, dir, ref := sameFile(r, p, data, perm, out.Owner)
		if ref != nil {
			return ref.status, ref
		}
		if same != nil {
			if s.kept != nil {
				target := filepath.Join(out.Dir, filepath.FromSlash(p))
				s.kept[outPath{output, p}] = KeptFile{Output: output, Path: p, Target: target, Info: same, SHA256: sha256.Sum256(data)}
			}
			return abi.Unchanged, nil
		}
		op.replaces = dir
	}
	if ref := s.stagingDir(r, op, out); ref != nil {
		return ref.status, ref
	}
	op.tmpID, op.sum = newTmpID(), sha256.Sum256(data)
	op.synced, ref = writeTemp(r, op.tmp(), p, data, perm, out.Owner)
	if ref != nil {
		return ref.status, ref
	}
	s.add(op)
	s.syncEarly(r, op)
	return abi.OK, nil
}

// removedDir returns the shallowest directory of p that this call stages
// for removal (as a file), or "". The write of p then waits for the commit
// to remove it and create the directory in its place, and never looks
// through it: a symlink to a directory that the call removes is not a way
// into that directory.
func (s *stage) removedDir(output, p string) string {
	for i := range len(p) {
		if p[i] == '/' {
			if op := s.byPath[outPath{output, p[:i]}]; op != nil && op.remove() {
				return p[:i]
			}
		}
	}
	return ""
}

// sameFile reports whether p already is a regular file with exactly data,
// perm and owner (its stat then, else nil), and whether p is a directory
// (which the write replaces if the call empties it: settle checks). A
// directory of p that is a file means no file p: stagingDir finds that
// file.
func sameFile(r *os.Root, p string, data []byte, perm fs.FileMode, owner *Owner) (same fs.FileInfo, dir bool, _ *refusal) {
	fi, err := r.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return nil, false, nil
	case err != nil:
		return nil, false, fsRefusal("write", p, err)
	case fi.IsDir():
		return nil, true, nil
	case !fi.Mode().IsRegular() || fi.Size() != int64(len(data)) || fi.Mode().Perm() != perm || !ownedBy(fi, owner):
		return nil, false, nil
	}
	f, err := r.Open(p)
	if err != nil {
		return nil, false, fsRefusal("write", p, err)
	}
	defer f.Close()
	ok, err := sameContent(f, data)
	if err != nil {
		return nil, false, fsRefusal("write", p, err)
	}
	if !ok {
		return nil, false, nil
	}
	return fi, false, nil
}

// sameContent reports whether r holds exactly data. It reads a chunk at a
// time and stops at the first difference: a rendered file of megabytes
// that a batch changed is told apart without reading it whole (half of it
// on average), nor holding a copy of it.
func sameContent(r io.Reader, data []byte) (bool, error) {
	buf := make([]byte, min(len(data)+1, 64<<10))
	for {
		n, err := r.Read(buf)
		if n > len(data) || !bytes.Equal(buf[:n], data[:n]) {
			return false, nil
		}
		data = data[n:]
		switch {
		case err == io.EOF:
			return len(data) == 0, nil
		case err != nil:
			return false, err
		}
	}
}

// stagingDir makes the directory that op's staging file goes in ([stagedOp.tmp])
// exist: the directory of op.path, whose missing directories it creates
// (recording them so a discard can remove them again). If a directory of
// op.path is not one (a file, or a name this call removes), it sets
// op.blocked to it, and the file goes in its parent instead: the commit
// creates the rest once the call has removed what is in the way (settle
// checks that it does).
//
// A directory that exists costs one lookup. Otherwise stagingDir walks down
// holding a handle on each level, so n levels cost O(n) system calls, not
// the O(n²) of resolving every prefix from the root.
func (s *stage) stagingDir(r *os.Root, op *stagedOp, out Output) *refusal {
	dir := path.Dir(op.path)
	if dir == "." {
		return nil
	}
	if op.blocked == "" {
		fi, err := r.Stat(dir)
		switch {
		case err == nil && fi.IsDir():
			return nil
		case err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR):
			return fsRefusal("mkdir", dir, err)
		}
	}
	cur := r
	defer func() {
		if cur != r {
			_ = cur.Close()
		}
	}()
	names := strings.Split(dir, "/")
	for i, name := range names {
		prefix := strings.Join(names[:i+1], "/")
		if prefix == op.blocked {
			return nil
		}
		fi, err := cur.Lstat(name)
		symlink := false
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := s.mkdir(cur, op.output, out, name, prefix); err != nil {
				return fsRefusal("mkdir", prefix, err)
			}
		case err != nil:
			return fsRefusal("mkdir", prefix, err)
		case fi.Mode()&fs.ModeSymlink != 0:
			// Resolved from the output's root, which follows a symlink
			// that stays inside the output and refuses one that leaves it.
			symlink = true
			fi, err = r.Stat(prefix)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fsRefusal("mkdir", prefix, err)
			}
			if err != nil || !fi.IsDir() { // dangling, or a link to a file
				op.blocked = prefix
				return nil
			}
		case !fi.IsDir():
			op.blocked = prefix
			return nil
		}
		if i == len(names)-1 {
			break
		}
		var next *os.Root
		if symlink {
			next, err = r.OpenRoot(prefix)
		} else {
			next, err = cur.OpenRoot(name)
		}
		if err != nil {
			return fsRefusal("mkdir", prefix, err)
		}
		if cur != r {
			_ = cur.Close()
		}
		cur = next
	}
	return nil
}

// dirMode is the mode of the directories staging creates (ABI.md).
const dirMode = 0o755

// mkdir creates the directory name in parent (prefix relative to the
// output's root) with exactly dirMode, whatever the umask, and the output's
// owner, and records it.
func (s *stage) mkdir(parent *os.Root, output string, out Output, name, prefix string) error {
	if err := parent.Mkdir(name, dirMode); err != nil {
		return err
	}
	s.created = append(s.created, outPath{output, prefix})
	if err := parent.Chmod(name, dirMode); err != nil {
		return err
	}
	if out.Owner != nil {
		return parent.Lchown(name, out.Owner.UID, out.Owner.GID)
	}
	return nil
}

// newTmpID returns a random non-zero name for a staged file.
func newTmpID() uint64 {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	return max(binary.BigEndian.Uint64(rnd[:]), 1)
}

// writeTemp writes data for p to the new hidden file tmp with its final
// mode and owner. It does not fsync it: the commit does, outside the call's
// time limit, unless the host could not open the file again (its mode or
// owner lock the agent out), which synced reports.
func writeTemp(r *os.Root, tmp, p string, data []byte, perm fs.FileMode, owner *Owner) (synced bool, _ *refusal) {
	f, err := r.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return false, fsRefusal("write", p, err)
	}
	err = writeContent(f, data, perm, owner)
	// The agent owns a file it made and can read it back if perm lets its
	// owner read: only another owner or mode needs the check (a system call
	// less per file in the common case).
	if err == nil && (owner != nil || perm&0o400 == 0) {
		if rf, oerr := r.Open(tmp); oerr == nil {
			err = rf.Close()
		} else {
			synced, err = true, f.Sync()
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = r.Remove(tmp)
		return false, fsRefusal("write", p, err)
	}
	return synced, nil
}

func writeContent(f *os.File, data []byte, perm fs.FileMode, owner *Owner) error {
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if owner != nil {
		return f.Chown(owner.UID, owner.GID)
	}
	return nil
}

// remove stages the removal of output/p; removing a missing file is Unchanged.
func (s *stage) remove(output, p string) (abi.Status, *refusal) {
	r, _, ref := s.prepare(output, p)
	if ref != nil {
		return ref.status, ref
	}
	fi, err := r.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR): // no directory, no file
		return abi.Unchanged, nil
	case err != nil:
		ref := fsRefusal("remove", p, err)
		return ref.status, ref
	case fi.IsDir():
		ref := refuse(abi.ErrInvalid, ErrDenied, "remove %s: target is a directory", abi.Quote(p))
		return ref.status, ref
	}
	s.add(&stagedOp{output: output, path: p})
	return abi.OK, nil
}

// staged lists the pending changes.
func (s *stage) staged() []StagedFile {
	s.compact()
	out := make([]StagedFile, 0, len(s.ops))
	for _, op := range s.ops {
		dir := s.outputs[op.output].Dir
		f := StagedFile{Output: op.output, Path: op.path, Target: filepath.Join(dir, filepath.FromSlash(op.path)), Remove: op.remove(), SHA256: op.sum}
		if !op.remove() {
			f.File = filepath.Join(dir, filepath.FromSlash(op.tmp()))
		}
		out = append(out, f)
	}
	return out
}

// keptFiles returns the writes that staged nothing (see KeptFile), in
// path order.
func (s *stage) keptFiles() []KeptFile {
	out := slices.Collect(maps.Values(s.kept))
	slices.SortFunc(out, func(a, b KeptFile) int {
		return cmp.Or(strings.Compare(a.Output, b.Output), strings.Compare(a.Path, b.Path))
	})
	return out
}

// discard removes every staged file and the directories staging created
// (when they are empty again). It is idempotent.
func (s *stage) discard() {
	if s.done {
		return
	}
	s.done = true
	s.collectEarly() // before the files and their roots go
	s.removeTemps()
	s.removeCreated()
	s.ops = nil
	s.closeRoots()
}

// removeCreated removes the directories staging (or the commit) created,
// deepest first, if they are empty, and returns the ones it removed.
func (s *stage) removeCreated() []outPath {
	var removed []outPath
	for i := len(s.created) - 1; i >= 0; i-- {
		c := s.created[i]
		if rmdir(s.roots[c.output], c.path) == nil { // fails, as it should, if not empty
			removed = append(removed, c)
		}
	}
	s.created = nil
	return removed
}

func (s *stage) removeTemps() {
	for _, op := range s.ops {
		if op != nil && !op.remove() {
			_ = s.roots[op.output].Remove(op.tmp())
		}
	}
}

func (s *stage) closeRoots() {
	for name, r := range s.roots {
		_ = r.Close()
		delete(s.roots, name)
	}
}
