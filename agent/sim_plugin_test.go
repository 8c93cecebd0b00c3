package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/slipstreamkv/slipstream/plugins/abi"
	"github.com/slipstreamkv/slipstream/plugins/host"
)

// simModule is the simulator's stand-in for a WebAssembly plugin: the files
// example's behaviour (one file per key, named by the key; a full render
// writes every key and prunes the files no key maps to) in native Go, with
// its staging and commit as the host does them (hidden staging files beside
// their targets, renamed at commit), and with the world's faults and crash
// points on every call and every committed file.
type simModule struct{ w *simWorld }

func (m simModule) SHA256() string { return "sim" }

func (m simModule) NewInstance(_ context.Context, cfg host.InstanceConfig) (instance, error) {
	out, ok := cfg.Outputs["files"]
	if !ok {
		return nil, errors.New("sim: no output named files")
	}
	return &simInstance{w: m.w, dir: out.Dir}, nil
}

type simInstance struct {
	w   *simWorld
	dir string
}

func (i *simInstance) Close(context.Context) error { return nil }

// call runs a plugin call's faults: a crash point, a scripted failure, a
// slow call.
func (i *simInstance) call(ctx context.Context) error {
	if err := i.w.step("plugin call"); err != nil {
		return err
	}
	i.w.mu.Lock()
	fail, slow := i.w.faults.pluginFail > 0, i.w.faults.pluginSlow
	if fail {
		i.w.faults.pluginFail--
	}
	i.w.faults.pluginSlow = 0
	i.w.mu.Unlock()
	if fail {
		return errors.New("sim: plugin call failed")
	}
	if d := slow; d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
	}
	return nil
}

func (i *simInstance) Apply(ctx context.Context, b host.Batch, _ host.View) (result, error) {
	if err := i.call(ctx); err != nil {
		return nil, err
	}
	res := &simResult{w: i.w, dir: i.dir}
	var desc []string
	for _, u := range b.Updates {
		desc = append(desc, fmt.Sprintf("%s:%s@%d", u.Op, u.Key, u.Revision))
	}
	i.w.tracef("plugin apply to cursor %d: %s", b.Cursor.Revision, strings.Join(desc, " "))
	for _, u := range b.Updates {
		if u.Op == host.OpPut {
			res.write(u.Key, u.Value)
		} else {
			res.remove(u.Key)
		}
	}
	return res.staged()
}

func (i *simInstance) Render(ctx context.Context, _ host.Cursor, v host.View) (result, error) {
	if err := i.call(ctx); err != nil {
		return nil, err
	}
	i.w.tracef("plugin render")
	res := &simResult{w: i.w, dir: i.dir}
	keep := map[string]bool{}
	after := ""
	for {
		n := 0
		err := v.Scan(ctx, "", after, func(e host.Entry) bool {
			keep[e.Key] = true
			res.write(e.Key, e.Value)
			after, n = e.Key, n+1
			return n < 3 // small pages, as a guest short of memory would read
		})
		if err != nil {
			return nil, err
		}
		if n == 0 {
			break
		}
	}
	names, err := i.w.outputNames()
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		if !keep[name] {
			res.remove(name)
		}
	}
	return res.staged()
}

// simResult is what a sim call staged, in order, and the writes that found
// their file as written (kept), as the host reports them.
type simResult struct {
	w    *simWorld
	dir  string
	ops  []simOp
	kept map[string]host.KeptFile
	err  error
}

type simOp struct {
	name string
	data []byte // nil for a removal
	tmp  string
}

// write stages name = data unless the file already holds it, as the host's
// stage_write does. A value starting with simRefused fails the call, as the
// host fails a write over the plugin's file size limit.
func (r *simResult) write(name string, data []byte) {
	if bytes.HasPrefix(data, []byte(simRefused)) {
		if r.err == nil {
			r.err = fmt.Errorf("sim: write %s: %d bytes exceed the file limit", name, len(data))
		}
		return
	}
	r.drop(name)
	target := filepath.Join(r.dir, name)
	if cur, err := os.ReadFile(target); err == nil && bytes.Equal(cur, data) {
		if fi, err := os.Lstat(target); err == nil {
			if r.kept == nil {
				r.kept = map[string]host.KeptFile{}
			}
			r.kept[name] = host.KeptFile{Output: "files", Path: name, Target: target, Info: fi, SHA256: sha256.Sum256(data)}
		}
		return
	}
	tmp := filepath.Join(r.dir, fmt.Sprintf("%ssim-%d.tmp", abi.StagePrefix, r.w.nextTmp()))
	if err := os.WriteFile(tmp, data, 0o644); err != nil && r.err == nil {
		r.err = err
	}
	r.ops = append(r.ops, simOp{name: name, data: append([]byte{}, data...), tmp: tmp})
}

// remove stages the removal of name if it exists.
func (r *simResult) remove(name string) {
	r.drop(name)
	if _, err := os.Lstat(filepath.Join(r.dir, name)); err == nil {
		r.ops = append(r.ops, simOp{name: name})
	}
}

// drop forgets an earlier op on name (the last one wins).
func (r *simResult) drop(name string) {
	delete(r.kept, name)
	r.ops = slices.DeleteFunc(r.ops, func(op simOp) bool {
		if op.name == name && op.tmp != "" {
			os.Remove(op.tmp)
		}
		return op.name == name
	})
}

func (r *simResult) staged() (result, error) {
	if r.err != nil {
		r.Discard()
		return nil, r.err
	}
	return r, nil
}

// Hooks asks for the watch's hook when the call changes a file.
func (r *simResult) Hooks() []string {
	if r.Changed() {
		return []string{simHook}
	}
	return nil
}

func (r *simResult) Kept() []host.KeptFile {
	return slices.SortedFunc(maps.Values(r.kept), func(a, b host.KeptFile) int { return strings.Compare(a.Path, b.Path) })
}
func (r *simResult) Changed() bool { return len(r.ops) > 0 }

func (r *simResult) Staged() []host.StagedFile {
	files := make([]host.StagedFile, len(r.ops))
	for i, op := range r.ops {
		files[i] = host.StagedFile{Output: "files", Path: op.name, File: op.tmp, Target: filepath.Join(r.dir, op.name), Remove: op.data == nil}
	}
	return files
}

// Sync does nothing: the simulation has no power loss, only crashes.
func (r *simResult) Sync(context.Context) error { return nil }

// Commit renames the staged files into place one by one, each a crash point.
// Before touching anything it reports a result that deletes more outputs
// than the watch's guard allows without a confirmation.
func (r *simResult) Commit(context.Context) error {
	removals := 0
	for _, op := range r.ops {
		if op.data == nil {
			removals++
		}
	}
	r.w.checkMassDelete(removals)
	var desc []string
	for _, op := range r.ops {
		if op.data == nil {
			desc = append(desc, "-"+op.name)
		} else {
			desc = append(desc, op.name+"="+string(op.data))
		}
	}
	r.w.tracef("commit %s", strings.Join(desc, " "))
	for i, op := range r.ops {
		if err := r.w.step("commit " + op.name); err != nil {
			r.discard(r.ops[i:])
			return err
		}
		target := filepath.Join(r.dir, op.name)
		var err error
		if op.data == nil {
			err = os.Remove(target)
		} else {
			err = os.Rename(op.tmp, target)
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			r.discard(r.ops[i:])
			return err
		}
		r.w.committed(op.name)
	}
	r.ops = nil
	return nil
}

func (r *simResult) Discard() { r.discard(r.ops); r.ops = nil }

func (r *simResult) discard(ops []simOp) {
	for _, op := range ops {
		if op.tmp != "" {
			os.Remove(op.tmp)
		}
	}
}
