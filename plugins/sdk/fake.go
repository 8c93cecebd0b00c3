//go:build !wasip1

package sdk

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/slipstreamkv/slipstream/plugins/abi"
)

// Fake is an in-process host for unit tests of plugin logic with plain
// go test. It speaks the same byte-level ABI as the real host (the call input
// and every page are encoded with plugins/abi and decoded by the SDK), keeps
// the view and the output files in memory, and follows the host's rules:
// declared outputs and hooks only, the path rules, the last staged change of
// a path wins, unchanged writes stage nothing, a path cannot be both a file
// and a directory among this call's writes, a write below a file or onto a
// directory needs the call to remove that file or every file below that
// directory (in any order; checked when the plugin returns), and a refused
// request or a failed call commits nothing.
//
// A [Configurer] is configured before every call. The Fake does not enforce
// the host's size limits, memory limit or timeout, nor refuse the view and
// staging during Configure; test those with the real host (plugins/host). Calls through any Fake are
// serialized process-wide.
type Fake struct {
	Watch string
	// Config is the plugin's configuration, as [Host.Config] and
	// [Host.ConfigKeys] read it.
	Config  map[string]string
	Outputs []string // output names the plugin may write
	Hooks   []string // hook names the plugin may request
	// PageEntries caps the entries per view_scan or output_list page, to
	// exercise paging; 0 means no cap.
	PageEntries int

	view  map[string]Entry
	files map[string]FakeFile // "output\x00path"
	rev   uint64
}

// FakeFile is a file in a Fake output.
type FakeFile struct {
	Data []byte
	Mode fs.FileMode
}

// FakeResult is what a successful call did.
type FakeResult struct {
	Hooks   []string // requested hooks, deduplicated
	Changed []string // "output:path" of every committed write or removal
	Logs    []string // log lines, as "LEVEL msg"
}

// Set puts key=value into the view directly (as if the fold held it).
func (f *Fake) Set(key string, value []byte) {
	f.rev++
	f.viewMap()[key] = Entry{Key: key, Value: value, Revision: f.rev}
}

// File returns a file of an output.
func (f *Fake) File(output, path string) (FakeFile, bool) {
	file, ok := f.files[output+"\x00"+path]
	return file, ok
}

// Paths returns the paths of an output's files, sorted.
func (f *Fake) Paths(output string) []string {
	var out []string
	for k := range f.files {
		if o, p, _ := strings.Cut(k, "\x00"); o == output {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// WriteFile puts a file into an output directly (as if it was on disk).
func (f *Fake) WriteFile(output, path string, data []byte, mode fs.FileMode) {
	if f.files == nil {
		f.files = map[string]FakeFile{}
	}
	f.files[output+"\x00"+path] = FakeFile{Data: bytes.Clone(data), Mode: mode}
}

func (f *Fake) viewMap() map[string]Entry {
	if f.view == nil {
		f.view = map[string]Entry{}
	}
	return f.view
}

// Apply folds updates into the view (a zero Revision gets the next one) and
// runs p's Apply on them.
func (f *Fake) Apply(p Plugin, updates ...Update) (*FakeResult, error) {
	recs := make([]Update, 0, len(updates))
	for _, u := range updates {
		if u.Revision == 0 {
			f.rev++
			u.Revision = f.rev
		}
		f.rev = max(f.rev, u.Revision)
		if u.Op == OpPut {
			f.viewMap()[u.Key] = Entry{Key: u.Key, Value: u.Value, Revision: u.Revision, Version: u.Version}
		} else {
			delete(f.viewMap(), u.Key)
			u.Value = nil
		}
		recs = append(recs, u)
	}
	return f.call(p, abi.KindApply, recs)
}

// Render runs p's Render over the current view.
func (f *Fake) Render(p Plugin) (*FakeResult, error) { return f.call(p, abi.KindRender, nil) }

// fakeCall is the state of the running call; the host functions of this
// build find it here.
type fakeCall struct {
	f      *Fake
	input  []byte
	ops    []fakeOp
	hooks  []string
	logs   []string
	errMsg string
	failed error
}

type fakeOp struct {
	key    string // "output\x00path"
	file   FakeFile
	remove bool
}

var (
	fakeMu  sync.Mutex
	current *fakeCall
)

func (f *Fake) call(p Plugin, kind abi.Kind, recs []abi.Record) (*FakeResult, error) {
	fakeMu.Lock()
	defer fakeMu.Unlock()
	for k := range f.Config {
		if err := abi.CheckConfigKey(k); err != nil { // as the host refuses it at load
			return nil, fmt.Errorf("sdk fake: %w", err)
		}
	}
	in := abi.AppendHeader(nil, abi.Header{Kind: kind, Watch: f.Watch, Cursor: Cursor{Revision: f.rev}, Count: uint32(len(recs))})
	for _, r := range recs {
		in = abi.AppendRecord(in, r)
	}
	c := &fakeCall{f: f, input: in}
	current = c
	if cf, ok := p.(Configurer); ok {
		// The host configures each instance it initializes; a Fake has
		// none, so it configures before every call.
		if err := cf.Configure(&Host{}); err != nil {
			current = nil
			return nil, fmt.Errorf("sdk fake: configure: %w", err)
		}
	}
	prev := registered
	registered = p
	status := run(kind, uint32(len(in)))
	registered, current = prev, nil
	if c.failed == nil && status == abi.GuestOK {
		c.settle()
	}

	if c.failed != nil {
		return nil, fmt.Errorf("sdk fake: call failed: %w (plugin said %q)", c.failed, c.errMsg)
	}
	if status != abi.GuestOK {
		return nil, fmt.Errorf("sdk fake: plugin returned status %d: %s", status, c.errMsg)
	}
	res := &FakeResult{Hooks: c.hooks, Logs: c.logs}
	for _, op := range c.ops {
		if op.remove {
			delete(f.files, op.key)
		} else {
			if f.files == nil {
				f.files = map[string]FakeFile{}
			}
			f.files[op.key] = op.file
		}
		res.Changed = append(res.Changed, strings.Replace(op.key, "\x00", ":", 1))
	}
	return res, nil
}

// errFakeRefused marks requests the fake refused.
var errFakeRefused = errors.New("refused")

func (c *fakeCall) refuse(st abi.Status, format string, args ...any) abi.Status {
	if c.failed == nil {
		c.failed = fmt.Errorf("%w: %s: %w", errFakeRefused, fmt.Sprintf(format, args...), st)
	}
	return st
}

// out answers under the output-buffer convention.
func out(b, data []byte) int64 {
	if len(data) <= len(b) {
		copy(b, data)
	}
	return int64(len(data))
}

// configureAtInit does nothing in this build: the Fake configures a
// [Configurer] before each call instead (see [Fake]).
func configureAtInit(Configurer) {}

func hostLog(level int32, msg string) abi.Status {
	name := map[int32]string{abi.LevelDebug: "DEBUG", abi.LevelInfo: "INFO", abi.LevelWarn: "WARN", abi.LevelError: "ERROR"}[level]
	if name == "" {
		name = fmt.Sprintf("LEVEL(%d)", level)
	}
	current.logs = append(current.logs, name+" "+msg)
	return abi.OK
}

func hostInputRead(b []byte) int64 { return out(b, current.input) }

func hostConfigGet(key string, b []byte) int64 {
	v, ok := current.f.Config[key]
	if !ok {
		return int64(abi.ErrNotFound)
	}
	return out(b, []byte(v))
}

func hostConfigKeys(b []byte) int64 { return out(b, abi.AppendConfigKeys(nil, current.f.Config)) }

func hostViewGet(key string, b []byte) int64 {
	e, ok := current.f.view[key]
	if !ok {
		return int64(abi.ErrNotFound)
	}
	return out(b, abi.AppendRecord(nil, e.Record()))
}

// fillPage writes items (already sorted and filtered) into a page for b.
func fillPage[T any](b []byte, items []T, add func(*abi.PageWriter, T) bool) int64 {
	w := abi.NewPageWriter(len(b), len(b))
	for i, it := range items {
		if n := current.f.PageEntries; n > 0 && i == n {
			w.Stop()
			break
		}
		if !add(w, it) {
			break
		}
	}
	page, need := w.Finish()
	if page == nil {
		return int64(need)
	}
	return out(b, page)
}

func hostViewScan(prefix, after string, b []byte) int64 {
	var es []Entry
	for _, k := range slices.Sorted(maps.Keys(current.f.view)) {
		if strings.HasPrefix(k, prefix) && k > after {
			es = append(es, current.f.view[k])
		}
	}
	return fillPage(b, es, func(w *abi.PageWriter, e Entry) bool { return w.AddRecord(e.Record()) })
}

func hostOutputList(output, dir, after string, b []byte) int64 {
	if !slices.Contains(current.f.Outputs, output) {
		return int64(abi.ErrDenied)
	}
	if err := abi.CheckDir(dir); err != nil {
		return int64(abi.ErrInvalid)
	}
	if _, file := current.f.files[output+"\x00"+dir]; file {
		return int64(abi.ErrInvalid) // not a directory
	}
	prefix := output + "\x00"
	if dir != "" {
		prefix += dir + "/"
	}
	types := map[string]abi.EntryType{}
	for k := range current.f.files {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		name, _, nested := strings.Cut(rest, "/")
		if nested {
			types[name] = abi.TypeDir
		} else {
			types[name] = abi.TypeFile
		}
	}
	if len(types) == 0 && dir != "" {
		return int64(abi.ErrNotFound)
	}
	var ents []abi.DirEntry
	for _, n := range slices.Sorted(maps.Keys(types)) {
		if n > after {
			ents = append(ents, abi.DirEntry{Type: types[n], Name: n})
		}
	}
	return fillPage(b, ents, (*abi.PageWriter).AddDirEntry)
}

// stageCheck validates a staging request and drops an earlier op on the
// same path.
func (c *fakeCall) stageCheck(fn, output, path string) (string, abi.Status) {
	if !slices.Contains(c.f.Outputs, output) {
		return "", c.refuse(abi.ErrDenied, "%s: output %q is not declared", fn, output)
	}
	if err := abi.CheckPath(path); err != nil {
		return "", c.refuse(abi.ErrInvalid, "%s: %v", fn, err)
	}
	key := output + "\x00" + path
	c.ops = slices.DeleteFunc(c.ops, func(op fakeOp) bool { return op.key == key })
	return key, abi.OK
}

// isDir reports whether key ("output\x00path") is a directory: a file
// exists below it, or this call staged one there.
func (c *fakeCall) isDir(key string) bool {
	below := key + "/"
	for k := range c.f.files {
		if strings.HasPrefix(k, below) {
			return true
		}
	}
	return c.stagedBelow(key)
}

// stagedBelow reports whether this call staged a write below key.
func (c *fakeCall) stagedBelow(key string) bool {
	below := key + "/"
	return slices.ContainsFunc(c.ops, func(op fakeOp) bool { return !op.remove && strings.HasPrefix(op.key, below) })
}

// dirsOf returns the keys of the directories of key, shallowest first.
func dirsOf(key string) []string {
	var dirs []string
	for i := range len(key) {
		if key[i] == '/' {
			dirs = append(dirs, key[:i])
		}
	}
	return dirs
}

// fileDirConflict refuses, as the host does, a write of path when this call
// staged a write below it or staged one of its directories as a file. A
// file or directory on disk in the way is settle's business: the call may
// still remove it.
func (c *fakeCall) fileDirConflict(output, path string) abi.Status {
	key := output + "\x00" + path
	if c.stagedBelow(key) {
		return c.refuse(abi.ErrInvalid, "stage_write %s: files below it were staged in this call", abi.Quote(path))
	}
	for _, d := range dirsOf(key) {
		if slices.ContainsFunc(c.ops, func(op fakeOp) bool { return !op.remove && op.key == d }) {
			return c.refuse(abi.ErrInvalid, "stage_write %s: %s was staged as a file in this call", abi.Quote(path), abi.Quote(d[len(output)+1:]))
		}
	}
	return abi.OK
}

// settle fails the call, as the host does when the plugin returns, if a
// write lies below a file or onto a directory that the call does not
// remove: the file, or every file below the directory.
func (c *fakeCall) settle() {
	removed := map[string]bool{}
	for _, op := range c.ops {
		removed[op.key] = op.remove
	}
	onDisk := slices.Sorted(maps.Keys(c.f.files))
	for _, op := range c.ops {
		if op.remove {
			continue
		}
		output, path, _ := strings.Cut(op.key, "\x00")
		for _, d := range dirsOf(op.key) {
			if _, file := c.f.files[d]; file && !removed[d] {
				c.refuse(abi.ErrInvalid, "stage_write %s: %s is a file this call does not remove", abi.Quote(path), abi.Quote(d[len(output)+1:]))
				return
			}
		}
		for _, k := range onDisk {
			if strings.HasPrefix(k, op.key+"/") && !removed[k] {
				c.refuse(abi.ErrInvalid, "stage_write %s: it is a directory holding %s, which this call does not remove", abi.Quote(path), abi.Quote(k[len(output)+1:]))
				return
			}
		}
	}
}

func hostStageWrite(output, path string, data []byte, mode uint32) abi.Status {
	c := current
	key, st := c.stageCheck("stage_write", output, path)
	if st != abi.OK {
		return st
	}
	if mode&^abi.ModeMask != 0 {
		return c.refuse(abi.ErrInvalid, "stage_write %q: mode %#o", path, mode)
	}
	if st := c.fileDirConflict(output, path); st != abi.OK {
		return st
	}
	perm := fs.FileMode(mode)
	if perm == 0 {
		perm = 0o644
	}
	if old, ok := c.f.files[key]; ok && old.Mode == perm && bytes.Equal(old.Data, data) {
		return abi.Unchanged
	}
	c.ops = append(c.ops, fakeOp{key: key, file: FakeFile{Data: bytes.Clone(data), Mode: perm}})
	return abi.OK
}

func hostStageRemove(output, path string) abi.Status {
	c := current
	key, st := c.stageCheck("stage_remove", output, path)
	if st != abi.OK {
		return st
	}
	if _, ok := c.f.files[key]; ok { // a file, even if the call writes below it
		c.ops = append(c.ops, fakeOp{key: key, remove: true})
		return abi.OK
	}
	if c.isDir(key) {
		return c.refuse(abi.ErrInvalid, "stage_remove %s: target is a directory", abi.Quote(path))
	}
	return abi.Unchanged
}

func hostHookRequest(name string) abi.Status {
	c := current
	if !slices.Contains(c.f.Hooks, name) {
		return c.refuse(abi.ErrDenied, "hook %q is not declared", name)
	}
	if !slices.Contains(c.hooks, name) {
		c.hooks = append(c.hooks, name)
	}
	return abi.OK
}

func hostReportError(msg string) abi.Status {
	current.errMsg = msg
	return abi.OK
}
