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
	"github.com/slipstreamkv/slipstream/kvcore/natskv"
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
	// Restored lists the files an in-place check a crash interrupted left
	// new (check.pending), which the watch puts back as they were before
	// anything else, then renders in full and checks again (nil: none).
	Restored []string
	// DriftUnchecked names the outputs whose drift could not be checked
	// (nil: none): the drift check would fail the watch.
	DriftUnchecked error
}

// Changed reports whether applying the plan would change a file (if only
// for a while: Restored) or run a hook.
func (p *WatchPlan) Changed() bool {
	return len(p.Files) > 0 || len(p.Hooks) > 0 || len(p.Restored) > 0
}

// PlannedFile is a file the plan would write or remove.
type PlannedFile struct {
	Target string // its path
	// New is the path of a copy of the new content, valid while the plan's
	// callback runs; "" for a removal.
	New    string
	Remove bool
	// Drift says how the file was changed outside the agent (the drift
	// check's reason: "content changed", "missing", ...) when writing it
	// repairs that drift; "" otherwise.
	Drift string
}

// PlannedCheck is the check command of a hook that would run.
type PlannedCheck struct {
	Hook string
	Err  error // the check failed (nil: it passed, or it was not run)
	// Ignored: the hook's on_failure is "ignore", so a failed check would
	// be logged and the files committed anyway; otherwise it keeps the old
	// files, and no hook of the batch runs.
	Ignored bool
	// NotRun says why the check was not run, if it was not.
	NotRun string
}

// Plan works out, for each watch named (all when none is), what the agent
// would do with the changes pending since its checkpoint, or with the whole
// bucket for a fresh data_dir: it runs the plugin on a private copy of the
// fold and of the outputs, then does what the drift check that follows
// would (outputs changed outside the agent since it committed them are
// rendered again), runs the checks on the result, and calls fn with each
// watch's plan. It commits nothing and checkpoints nothing: the fold,
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
		return fmt.Errorf("%w at %s: %w", ErrUnreachable, natskv.RedactServers(a.cfg.NATS.Servers), err)
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
			out.Owner = o.FileOwner
		}
		outputs[o.Name], targets[o.Name] = out, o.Dir
	}
	p := &WatchPlan{Watch: r.conf.Name}
	// An in-place check a crash interrupted is undone first, as the
	// watch's start does (recoverPlacement), and the watch then renders in
	// full.
	restored, err := r.planPlacement(scratch, outputs, p)
	if err != nil {
		return err
	}
	fold, st, err := r.foldCopy(filepath.Join(scratch, logFoldFile))
	if err != nil {
		return err
	}
	defer fold.Close()
	p.From, _ = fold.Cursor().Revision()
	rec, recordLost, err := r.recordCopy(ctx, filepath.Join(scratch, outputsRecordFile))
	if err != nil {
		return err
	}
	if rec != nil {
		defer rec.Close()
	}
	_, err = os.Stat(filepath.Join(r.dir, heldFile))
	// A lost record of committed outputs makes the watch render in full
	// (openDriftRecord), as a hold does.
	fullRender := !st.renderedWith(r.conf, r.plugin, plugin.SHA256()) || err == nil || recordLost || restored
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
		// What the watch's reconciliation would read back, the plan's does.
		Unreconciled: st.Unreconciled,
		NoRetry:      true, // the first failure is the plan's
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
	drift, driftHooks, err := r.planDrift(ctx, rec, inst, fold, changed)
	if err != nil {
		return err
	}
	p.DriftUnchecked = drift.unchecked
	repairs := map[string]string{} // record key → why it drifted
	for _, f := range drift.drifted {
		repairs[f.key] = f.reason
	}
	hooks = append(hooks, driftHooks...)
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
		why := repairs[recordKey(f.Output, f.Path)]
		if same && why == "" {
			continue // written back as it was
		}
		pf := PlannedFile{Target: real, Remove: f.Remove, Drift: why}
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
				c.Ignored = h.OnFailure == FailIgnore // plan's own failure above is no check's verdict
			}
			p.Checks = append(p.Checks, c)
		}
	}
	return fn(p)
}

// planDrift does in the copies what the watch's first drift check after
// catching up would do (driftRepair.check): it compares the record of
// committed outputs with the real outputs (outputRecord.scan) and, when a
// file drifted that the pending changes do not write (their commit would
// record it anew), renders the whole watch into the copies and adds what
// the render stages to changed. It returns the scan with only that drift,
// and the hooks the render asks for. Nothing is found when there is no
// record (rec nil: drift checks are off, nothing is recorded, or the record
// is lost and the plan is a full render).
func (r *watchRunner) planDrift(ctx context.Context, rec *outputRecord, inst instance, fold kvcore.Fold, changed map[string]host.StagedFile) (driftScan, []string, error) {
	if rec == nil {
		return driftScan{}, nil, nil
	}
	s, err := rec.scan(ctx)
	if err != nil {
		return driftScan{}, nil, fmt.Errorf("checking outputs for drift: %w", err)
	}
	written := map[string]bool{}
	for _, f := range changed {
		written[recordKey(f.Output, f.Path)] = true
	}
	s.drifted = slices.DeleteFunc(s.drifted, func(f driftedFile) bool { return written[f.key] })
	if len(s.drifted) == 0 {
		return s, nil, nil
	}
	res, err := inst.Render(ctx, hostCursor(fold.Cursor()), foldView{fold: fold})
	if err != nil {
		return driftScan{}, nil, err // a *host.CallError: it names the plugin
	}
	for _, f := range res.Staged() {
		changed[f.Target] = f
	}
	if err := res.Commit(ctx); err != nil {
		return driftScan{}, nil, err
	}
	return s, res.Hooks(), nil
}

// planPlacement does in the copies of the outputs (outputs, below scratch)
// what recoverPlacement does at the watch's start to an in-place check that
// a crash interrupted: unless the check had passed, it puts the old files
// back from their backups (copied with the outputs) and lists the real
// targets in p.Restored. It reports whether the watch renders in full for it: when
// it restores files, and when the journal does not load (the watch
// quarantines it).
func (r *watchRunner) planPlacement(scratch string, outputs map[string]host.Output, p *WatchPlan) (restored bool, err error) {
	pl, err := loadPlacement(filepath.Join(r.dir, placementFile), r.conf.Outputs)
	if _, ok := errors.AsType[*corruptError](err); ok {
		return true, nil
	}
	if err != nil || pl == nil || pl.Passed {
		return false, err
	}
	inCopy := func(path string) (string, error) {
		dir := outputHolding(r.conf.Outputs, path)
		i := slices.IndexFunc(r.conf.Outputs, func(o *OutputConf) bool { return dir != "" && filepath.Clean(o.Dir) == dir })
		if i < 0 {
			return "", fmt.Errorf("%s is in none of the watch's outputs", path) // loadPlacement refused it
		}
		rel, err := filepath.Rel(dir, path)
		return filepath.Join(outputs[r.conf.Outputs[i].Name].Dir, rel), err
	}
	copied := &placement{path: filepath.Join(scratch, placementFile)}
	for _, f := range pl.Files {
		c := f
		if c.Target, err = inCopy(f.Target); err != nil {
			return false, err
		}
		if f.Backup != "" { // copied with the output (host.CopyTree), beside its target
			if c.Backup, err = inCopy(f.Backup); err != nil {
				return false, err
			}
		}
		copied.Files = append(copied.Files, c)
		p.Restored = append(p.Restored, f.Target)
	}
	return true, copied.undo()
}

// recordCopy copies the watch's record of committed outputs into a new log
// at path, reading it without its lock as foldCopy reads the fold; the copy
// names the real outputs, so that a scan compares them. It returns nil when
// drift checks are off or nothing is recorded; lost says there is no record
// (deleted, or of the other fold kind, which the watch drops when it starts)
// or that it does not load or holds an entry it cannot read, for which the
// watch renders in full.
func (r *watchRunner) recordCopy(ctx context.Context, path string) (rec *outputRecord, lost bool, err error) {
	if r.conf.DriftCheck == 0 {
		return nil, false, nil
	}
	if !outputRecordExists(r.dir, r.conf.Fold) {
		return nil, true, nil
	}
	snap, err := readFold(r.conf.Fold, filepath.Join(r.dir, outputsRecordFile), filepath.Join(r.dir, outputsRecordDir))
	switch {
	case errors.Is(err, os.ErrNotExist) || err != nil && foldCorrupt(err):
		return nil, true, nil
	case err != nil:
		return nil, false, fmt.Errorf("reading the record of committed outputs: %w", err)
	case snap == nil:
		return nil, false, nil
	}
	outs := r.resolvedOutputs()
	log, err := snapshot.Open(path, snapshot.Options{})
	if err != nil {
		return nil, false, err
	}
	if err := fillFold(log, snap); err != nil {
		log.Close()
		return nil, false, err
	}
	rec = &outputRecord{log: log, outs: outs, l: r.log}
	if bad, err := rec.unreadable(ctx); bad != nil || err != nil {
		rec.Close()
		if bad != nil {
			return nil, true, nil
		}
		return nil, false, fmt.Errorf("reading the record of committed outputs: %w", err)
	}
	return rec, false, nil
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
	snap, err := readFold(r.conf.Fold, filepath.Join(r.dir, logFoldFile), filepath.Join(r.dir, diskFoldDir))
	switch {
	case errors.Is(err, os.ErrNotExist) || err == nil && snap == nil:
		return fold, &watchState{}, nil
	case err != nil:
		fold.Close()
		return nil, nil, fmt.Errorf("reading the fold: %w", err)
	}
	if err := fillFold(fold, snap); err != nil {
		fold.Close()
		return nil, nil, err
	}
	return fold, &st, nil
}

// readFold reads a fold of the given kind, the log at logPath or the
// Pebble directory diskDir, without writing to it: nil for one that holds
// nothing.
func readFold(kind, logPath, diskDir string) (*snapshot.Snapshot, error) {
	if kind == FoldDisk {
		return diskFoldSnapshot(diskDir)
	}
	return logFoldSnapshot(logPath)
}

// fillFold applies the entries of snap to fold, at snap's cursor.
func fillFold(fold kvcore.Fold, snap *snapshot.Snapshot) error {
	updates := make([]kvcore.Update, len(snap.Entries))
	for i, e := range snap.Entries {
		updates[i] = kvcore.Update{Op: kvcore.OpPut, Key: e.Key, Value: e.Value, Version: e.Version, Created: e.Created}
	}
	return fold.Apply(context.Background(), updates, snap.Cursor)
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
