package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/plugins/host"
	"github.com/slipstreamkv/slipstream/snapshot"
	"github.com/slipstreamkv/slipstream/snapshot/pebblefold"
)

// WatchPlan is what applying a watch's pending changes would do (Plan).
type WatchPlan struct {
	Watch string
	// Full is true when the plan is a full render: a fresh data_dir, a fold
	// of another bucket, or a plugin or configuration changed since the
	// last render.
	Full bool
	// From and To are the revisions the fold is at and would reach.
	From, To uint64
	Updates  int // updates pending since the checkpoint (0 for a render from scratch)
	Files    []PlannedFile
	// Hooks would run, in order (owed ones from an earlier run included).
	Hooks  []string
	Checks []PlannedCheck
}

// Changed reports whether applying the plan would change a file or run a hook.
func (p *WatchPlan) Changed() bool { return len(p.Files) > 0 || len(p.Hooks) > 0 }

// PlannedFile is a file the plan would write or remove.
type PlannedFile struct {
	Target string // its path
	// New is the path of a copy of the new content, valid while the plan's
	// callback runs; "" for a removal.
	New    string
	Remove bool
}

// PlannedCheck is the check command of a hook that would run.
type PlannedCheck struct {
	Hook string
	Err  error // the check failed (nil: it passed, or it was not run)
	// NotRun says why the check was not run, if it was not.
	NotRun string
}

// Plan works out, for each watch named (all when none is), what the agent
// would do with the changes pending since its checkpoint, or with the whole
// bucket for a fresh data_dir: it runs the plugin on a private copy of the
// fold and of the outputs, runs the checks on the result, and calls fn with
// each watch's plan. It commits nothing and checkpoints nothing: the fold,
// the state files and the outputs are left as they are, and a running agent
// is not disturbed. Checks with check_in_place are not run (they would
// change the live files). The deletion guard is not consulted. Like Run,
// it refuses (a *TrustError) files it trusts that others can change: the
// plugins it runs come from them.
//
// An error that wraps ErrUnreachable means NATS could not be reached.
func (a *Agent) Plan(ctx context.Context, names []string, fn func(*WatchPlan) error) error {
	for _, n := range names {
		if !slices.ContainsFunc(a.watches, func(w *watchRunner) bool { return w.conf.Name == n }) {
			return fmt.Errorf("no watch %q in the configuration", n)
		}
	}
	engine, err := a.startEngine(ctx)
	if err != nil {
		return err
	}
	defer engine.Close(context.WithoutCancel(ctx))
	connectCtx, cancel := context.WithTimeout(ctx, a.cfg.NATS.Timeout)
	err = a.conn.Connect(connectCtx)
	cancel()
	if err != nil {
		return fmt.Errorf("%w at %s: %w", ErrUnreachable, redactedServers(a.cfg.NATS.Servers), err)
	}
	if a.ownConn {
		defer a.conn.Close()
	}
	for _, w := range a.watches {
		if len(names) > 0 && !slices.Contains(names, w.conf.Name) {
			continue
		}
		if err := w.plan(ctx, fn); err != nil {
			return fmt.Errorf("watch %s: %w", w.conf.Name, err)
		}
	}
	return nil
}

// plan works out the watch's plan in a scratch directory, and calls fn.
func (r *watchRunner) plan(ctx context.Context, fn func(*WatchPlan) error) error {
	scratch, err := os.MkdirTemp("", "slipagent-plan-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	plugin, err := r.a.load(ctx, r.plugin)
	if err != nil {
		return err
	}
	outputs := map[string]host.Output{}
	targets := map[string]string{} // output name → its real directory
	// A check that runs as another user reads the staged copies as it reads
	// the real staged files: the copied outputs keep their owners and what
	// the plugin stages gets the real run's. Otherwise owners are left out
	// (the copy need not be chowned to be compared), so plan needs no
	// privilege the checks do not.
	checkAsOther := slices.ContainsFunc(r.conf.Hooks, func(h *HookConf) bool {
		return len(h.Check) > 0 && !h.CheckInPlace && h.RunAs.credential() != nil
	})
	// The copies' parent opens for traversal whatever the umask: the
	// scratch directory above it decides who may enter (openScratchTo).
	if err := os.Mkdir(filepath.Join(scratch, "out"), 0o711); err != nil {
		return err
	}
	if err := os.Chmod(filepath.Join(scratch, "out"), 0o711); err != nil {
		return err
	}
	for _, o := range r.conf.Outputs {
		dir := filepath.Join(scratch, "out", o.Name)
		if err := host.CopyTree(o.Dir, dir); err != nil {
			return fmt.Errorf("output %s: copying %s: %w", o.Name, o.Dir, err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		out := host.Output{Dir: dir, Mode: o.Mode}
		if checkAsOther {
			if err := copyOwners(o.Dir, dir); err != nil {
				return fmt.Errorf("output %s: copying the owners of %s: %w", o.Name, o.Dir, err)
			}
			if out.Owner, err = resolveOwner(o.Owner, o.Group); err != nil {
				return fmt.Errorf("output %s: %w", o.Name, err)
			}
		}
		outputs[o.Name], targets[o.Name] = out, o.Dir
	}
	fold, st, err := r.foldCopy(filepath.Join(scratch, logFoldFile))
	if err != nil {
		return err
	}
	defer fold.Close()
	p := &WatchPlan{Watch: r.conf.Name}
	p.From, _ = fold.Cursor().Revision()
	_, err = os.Stat(filepath.Join(r.dir, heldFile))
	fullRender := !st.renderedWith(r.conf, r.plugin, plugin.SHA256()) || err == nil
	pending, _, err := hookJournal{path: filepath.Join(r.dir, journalFile)}.load()
	if err != nil {
		return err
	}
	store, err := r.a.store(ctx, r.conf.Bucket)
	if err != nil {
		return err
	}
	inst, err := plugin.NewInstance(ctx, host.InstanceConfig{Watch: r.conf.Name, Outputs: outputs, Hooks: hookNames(r.conf.Hooks)})
	if err != nil {
		return err // a *host.CallError: it names the plugin
	}
	defer inst.Close(context.WithoutCancel(ctx))

	// The loop runs on the copy of the fold until it has caught up; every
	// batch it hands over is committed into the copy of the outputs, so that
	// a later batch sees what an earlier one wrote.
	changed := map[string]host.StagedFile{} // by target in the copy
	hooks := pending
	loopCtx, stop := context.WithCancel(ctx)
	defer stop()
	err = kvcore.WatchApplied(loopCtx, store, fold, kvcore.AppliedConfig{
		Scope:      r.scope(),
		Window:     time.Hour, // catching up closes the batch: one batch of everything pending
		MaxBatch:   math.MaxInt32,
		FullRender: fullRender,
		BucketID:   st.BucketID,
		OnBucketID: func(context.Context, string) error { return nil },
		// A watch left folding syncs with a full render when it runs
		// next; the plan shows that render (the copy forgets the mark).
		Folding:   st.Folding,
		OnFolding: func(context.Context, bool) error { return nil },
		NoRetry:   true, // the first failure is the plan's
		OnProgress: func(pr kvcore.Progress) {
			if pr.Synced {
				stop()
			}
		},
		Logger: r.log,
	}, func(ctx context.Context, b kvcore.Batch) error {
		var res result
		var err error
		if b.Full {
			res, err = inst.Render(ctx, hostCursor(b.Cursor), foldView{fold: fold})
		} else {
			res, err = inst.Apply(ctx, hostBatch(b), foldView{fold: fold})
		}
		if err != nil {
			return err // a *host.CallError: it names the plugin
		}
		p.Full = p.Full || b.Full
		p.Updates += len(b.Updates)
		for _, f := range res.Staged() {
			changed[f.Target] = f
		}
		hooks = append(hooks, res.Hooks()...)
		return res.Commit(ctx)
	})
	if err != nil {
		return err
	}
	p.To, _ = fold.Cursor().Revision()
	if p.Full {
		p.Updates = 0
	}
	p.Hooks = r.ordered(hooks)
	var staged []host.StagedFile // for the checks: the new content and its real target
	for _, f := range changed {
		rel, err := filepath.Rel(outputs[f.Output].Dir, f.Target)
		if err != nil {
			return err
		}
		real := filepath.Join(targets[f.Output], rel)
		same, err := sameFile(f.Target, real)
		if err != nil {
			return err
		}
		if same {
			continue // written back as it was
		}
		pf := PlannedFile{Target: real, Remove: f.Remove}
		if !f.Remove {
			pf.New = f.Target
		}
		p.Files = append(p.Files, pf)
		staged = append(staged, host.StagedFile{Output: f.Output, Path: f.Path, File: pf.New, Target: real, Remove: f.Remove})
	}
	slices.SortFunc(p.Files, func(x, y PlannedFile) int { return strings.Compare(x.Target, y.Target) })
	slices.SortFunc(staged, func(x, y host.StagedFile) int { return strings.Compare(x.Target, y.Target) })
	if len(staged) > 0 {
		cursor := fold.Cursor()
		for _, name := range p.Hooks {
			h := r.hooks[name]
			if len(h.Check) == 0 {
				continue
			}
			c := PlannedCheck{Hook: name}
			if h.CheckInPlace {
				c.NotRun = "check_in_place: it would change the live files"
			} else if c.Err = openScratchTo(scratch, h.RunAs); c.Err == nil {
				c.Err = runCommand(ctx, r.log.With("hook", name, "check", true), h.Check, h.Timeout, hookProcess(h, append(r.env(name, cursor), stagedEnv(staged))))
			}
			p.Checks = append(p.Checks, c)
		}
	}
	return fn(p)
}

// openScratchTo lets a check that runs as another user reach the staged
// copies below the scratch directory, which MkdirTemp makes 0700: the
// directory becomes traversable (not listable) by the check's group only,
// and the copies' own modes and owners, those of the real run, decide what
// it reads. The fold's copy beside them stays the agent's alone (0600).
func openScratchTo(scratch string, r *RunAs) error {
	if r.credential() == nil {
		return nil // the check runs as the agent
	}
	if err := os.Chown(scratch, -1, int(r.GID)); err != nil {
		return fmt.Errorf("letting the check's group %d into the plan's scratch directory %s: %w", r.GID, scratch, err)
	}
	return os.Chmod(scratch, 0o710)
}

// copyOwners gives every file and directory of the copy dst the owner of
// its original below src (a missing original keeps the copier's).
func copyOwners(src, dst string) error {
	return filepath.WalkDir(dst, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dst, p)
		if err != nil {
			return err
		}
		fi, err := os.Lstat(filepath.Join(src, rel))
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		return os.Lchown(p, int(st.Uid), int(st.Gid))
	})
}

// foldCopy copies the watch's fold, as its last checkpoint left it, into a
// new fold at path, with the watch's state (empty, as for a fresh data_dir,
// when the fold is missing or belongs to another bucket, scope or kind). It
// reads the fold without locking it: a running agent is not disturbed.
func (r *watchRunner) foldCopy(path string) (kvcore.Fold, *watchState, error) {
	st, err := loadState(r.dir)
	var ce *corruptError
	if errors.As(err, &ce) {
		st, err = watchState{}, nil
	}
	if err != nil {
		return nil, nil, err
	}
	fold, err := snapshot.Open(path, snapshot.Options{})
	if err != nil {
		return nil, nil, err
	}
	if st.Bucket != r.conf.Bucket || !samePrefixes(st.Prefixes, r.conf.Prefixes) || st.Fold != r.conf.Fold {
		return fold, &watchState{}, nil
	}
	var snap *snapshot.Snapshot
	if r.conf.Fold == FoldDisk {
		snap, err = diskFoldSnapshot(filepath.Join(r.dir, diskFoldDir))
	} else {
		snap, err = logFoldSnapshot(filepath.Join(r.dir, logFoldFile))
	}
	switch {
	case errors.Is(err, os.ErrNotExist) || err == nil && snap == nil:
		return fold, &watchState{}, nil
	case err != nil:
		fold.Close()
		return nil, nil, fmt.Errorf("reading the fold: %w", err)
	}
	updates := make([]kvcore.Update, len(snap.Entries))
	for i, e := range snap.Entries {
		updates[i] = kvcore.Update{Op: kvcore.OpPut, Key: e.Key, Value: e.Value, Version: e.Version, Created: e.Created}
	}
	if err := fold.Apply(context.Background(), updates, snap.Cursor); err != nil {
		fold.Close()
		return nil, nil, err
	}
	return fold, &st, nil
}

// logFoldSnapshot reads a log fold as loading it would, without the
// rewrite that loading does to a file with superseded records or a torn
// tail: nil for one that holds nothing.
func logFoldSnapshot(path string) (*snapshot.Snapshot, error) {
	rep, err := snapshot.Inspect(path)
	if err != nil {
		return nil, err
	}
	return rep.Snapshot(), nil
}

// diskFoldSnapshot reads an on-disk fold without writing to it (a running
// agent keeps it locked: plan then fails, naming it).
func diskFoldSnapshot(dir string) (*snapshot.Snapshot, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, err
	}
	f, err := pebblefold.OpenReadOnly(dir, pebblefold.Options{})
	if err != nil {
		return nil, fmt.Errorf("%s (stop the agent to plan a fold = \"disk\" watch): %w", dir, err)
	}
	defer f.Close()
	snap := &snapshot.Snapshot{Cursor: f.Cursor()}
	err = f.Range(context.Background(), "", "", func(e kvcore.Entry) error {
		snap.Entries = append(snap.Entries, e)
		return nil
	})
	return snap, err
}

// sameFile reports whether the file at a (in the copy) and the one at b
// (the real output) have the same content and mode, or are both absent.
func sameFile(a, b string) (bool, error) {
	ai, aerr := os.Lstat(a)
	bi, berr := os.Lstat(b)
	switch {
	case errors.Is(aerr, os.ErrNotExist) && errors.Is(berr, os.ErrNotExist):
		return true, nil
	case errors.Is(aerr, os.ErrNotExist) || errors.Is(berr, os.ErrNotExist):
		return false, nil
	case aerr != nil:
		return false, aerr
	case berr != nil:
		return false, berr
	}
	if !ai.Mode().IsRegular() || !bi.Mode().IsRegular() || ai.Mode() != bi.Mode() || ai.Size() != bi.Size() {
		return false, nil
	}
	ab, err := os.ReadFile(a)
	if err != nil {
		return false, err
	}
	bb, err := os.ReadFile(b)
	if err != nil {
		return false, err
	}
	return string(ab) == string(bb), nil
}
