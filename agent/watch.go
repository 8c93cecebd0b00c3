package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/plugins/host"
)

// Backoff between attempts to (re)start a failed watch.
const (
	minRestartBackoff = 500 * time.Millisecond
	maxRestartBackoff = time.Minute
)

// reconcileEvery is how often a watch compares its bucket's keys with its
// fold's, to catch deletions whose markers NATS purged before the watch saw
// them (it also does so whenever it resumes from its cursor).
const reconcileEvery = 30 * time.Minute

// watchRunner runs one configured watch: it keeps the watch's fold in sync
// with its bucket and applies every batch through the watch's plugin. A
// failure of any kind (NATS, plugin, check, hook, disk) only affects this
// watch: it is retried with backoff while the others keep running.
type watchRunner struct {
	a      *Agent
	conf   *WatchConf
	plugin *PluginConf
	log    *slog.Logger
	dir    string // data_dir/watches/<name>
	hooks  map[string]*HookConf
	status *watchStatus
	guard  *guard
	record *outputRecord // what the session committed; nil with drift checks off
	// stop closes when the watch stops for good (its run's ctx ends): a
	// hook waiting for its turn gives up then, even in a batch that is
	// otherwise finished after shutdown.
	stop <-chan struct{}
	// cancel stops the watch and done closes once it stopped (see start).
	cancel context.CancelFunc
	done   chan struct{}
	// firstCheck is closed once the first drift check is over (Once waits for it).
	firstCheck *firstCheck
}

func newWatchRunner(a *Agent, w *WatchConf) *watchRunner {
	r := &watchRunner{
		a:      a,
		conf:   w,
		log:    a.log.With("watch", w.Name),
		dir:    filepath.Join(a.cfg.DataDir, "watches", w.Name),
		hooks:  make(map[string]*HookConf, len(w.Hooks)),
		status: newWatchStatus(w, a.changed, time.Now),

		firstCheck: newFirstCheck(),
	}
	a.metrics.watchAdded(w)
	r.guard = &guard{watch: w.Name, conf: w.Guard, scope: r.scope(), dir: r.dir, log: r.log, status: r.status, now: time.Now}
	for _, p := range a.cfg.Plugins {
		if p.Name == w.Plugin {
			r.plugin = p
		}
	}
	for _, h := range w.Hooks {
		r.hooks[h.Name] = h
	}
	return r
}

// run restarts the watch until ctx ends.
func (r *watchRunner) run(ctx context.Context) {
	r.stop = ctx.Done()
	for attempt := 0; ; attempt++ {
		started := time.Now()
		err := r.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > maxRestartBackoff {
			attempt = 0 // it ran for a while: start the backoff over
		}
		if errors.As(err, new(*loadError)) {
			r.status.loadFailed(err)
		} else {
			r.status.failed(err)
		}
		if r.a.once {
			r.log.Error("watch failed; once stops it", "err", err)
			return
		}
		r.log.Error("watch failed; restarting", "err", err, "attempt", attempt+1)
		d := min(minRestartBackoff<<min(attempt, 20), maxRestartBackoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(d/2 + rand.N(d/2+1)):
		}
	}
}

// session sets the watch up and runs it until ctx ends or setup fails.
// The plugin loads meanwhile (see pendingInstance).
func (r *watchRunner) session(parent context.Context) error {
	if err := os.MkdirAll(r.dir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	outputs, err := r.outputs()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(parent)
	inst := r.loadInBackground(ctx, cancel, host.InstanceConfig{
		Watch: r.conf.Name, Outputs: outputs, Hooks: hookNames(r.conf.Hooks), ReportKept: r.conf.DriftCheck > 0,
		OnLog: r.status.pluginLogged,
	})
	defer inst.Close(context.WithoutCancel(ctx))
	defer cancel(nil) // before Close: ends a load that never started
	err = r.runLoop(ctx, inst, outputs)
	if cause := context.Cause(ctx); parent.Err() == nil && cause != nil {
		return &loadError{cause} // the plugin did not load
	}
	return err
}

// runLoop opens the watch's fold and runs its loop until ctx ends or setup
// fails.
func (r *watchRunner) runLoop(ctx context.Context, inst *pendingInstance, outputs map[string]host.Output) error {
	if err := r.bootstrap(ctx); err != nil {
		return err
	}
	restored, err := r.recoverPlacement()
	if err != nil {
		return err
	}
	// Nothing rendered yet (a first start, a lost state file): a full
	// render is owed whatever the module, so the load starts before the
	// fold opens.
	if st, err := loadState(r.dir); err != nil || st.Rendered == "" {
		inst.begin()
	}
	fold, st, err := r.openFold()
	if err != nil {
		return err
	}
	fold = r.a.wrapFold(fold)
	defer fold.Close()
	if err := r.guard.load(); err != nil {
		return err
	}
	if err := r.guard.reevaluate(); err != nil {
		return err
	}
	// A record that starts empty, when the watch rendered before, owes a
	// full render (openDriftRecord), durably: it is owed from before the
	// new record exists, so that no crash or stop leaves an empty record
	// and a render key saying nothing is owed.
	oweRender := func() error {
		if st.Rendered == "" {
			return nil // a first render is owed already
		}
		r.log.Warn("no record of the files committed to the outputs before (it was lost, or drift checks were off); rendering in full to check them all",
			"record", outputRecordPath(r.dir, r.conf.Fold))
		st.Rendered = ""
		return st.save(r.dir)
	}
	if r.record, err = openDriftRecord(ctx, r, outputs, oweRender); err != nil {
		return err
	}
	defer r.record.Close()
	digest, err := inst.moduleDigest(ctx)
	if err != nil {
		return err
	}
	key := renderKey(r.conf, r.plugin, digest)
	// A hold left by an earlier run needs a batch to hold (or release):
	// ask for a full one even if nothing else arrives.
	fullRender := !st.renderedWith(r.conf, r.plugin, digest) || r.guard.held != nil || restored
	// Hooks owed from before a crash or a failed run go first, before NATS
	// is needed. If they fail again the watch still starts, owing a full
	// render: its commit runs them with backoff, and a change that fixes
	// them can arrive meanwhile.
	journal := hookJournal{path: filepath.Join(r.dir, journalFile)}
	pending, cursor, err := journal.load()
	if err != nil {
		if pending, cursor, err = r.recoverJournal(journal, err, fold.Cursor()); err != nil {
			return err
		}
		fullRender = true
	}
	if len(pending) > 0 {
		r.log.Info("running hooks left over from an earlier run", "hooks", pending, "cursor", cursor.String())
		if err := r.runHooks(ctx, journal, r.ordered(pending), cursor); err != nil {
			r.log.Warn("left-over hooks failed again; retrying them with the first batch", "err", err)
			r.status.failed(err)
			fullRender = true
		}
	}
	if fullRender {
		inst.begin() // else once caught up, or when a batch needs it
	}
	// A watch needs the connection: it waits for the agent's first
	// connect (whose failures the status shows) rather than failing.
	select {
	case <-r.a.connected:
	case <-ctx.Done():
		return ctx.Err()
	}
	store, err := r.a.store(ctx, r.conf.Bucket)
	if err != nil {
		return err
	}
	// st is only touched from WatchApplied's goroutine: in apply and in
	// its On callbacks.
	update := func(change func(*watchState)) error {
		next := *st
		change(&next)
		if err := next.save(r.dir); err != nil {
			return err
		}
		*st = next
		return nil
	}
	// Damage a read finds in the fold's files fails every later use of
	// the fold: the session ends with it, and the next one's open moves
	// the fold aside and rebuilds it (openFold).
	wctx, damaged := context.WithCancelCause(ctx)
	defer damaged(nil)
	drift := newDriftRepair(r, r.record, inst, fold, journal, damaged)
	exports, stopExports := r.startExports(ctx, store)
	defer stopExports()
	defer drift.start(ctx)()
	apply := func(actx context.Context, b kvcore.Batch) error {
		// A held batch waits on the session's ctx (actx outlives shutdown).
		full, err := r.guard.check(ctx, fold, store, b)
		if err != nil {
			return err
		}
		b.Full = b.Full || full
		return r.apply(actx, inst, fold, journal, b, func() error {
			if st.Rendered == key {
				return nil
			}
			return update(func(s *watchState) { s.Rendered = key })
		})
	}
	err = kvcore.WatchApplied(wctx, newAttachSource(store, r.status, r.conf.Name), fold, kvcore.AppliedConfig{
		Scope:    r.scope(),
		Window:   r.window(),
		Quiet:    r.quiet(),
		MaxBatch: r.conf.Batch.Max,
		// Read a whole batch ahead while one is applied: with no window,
		// what queued meanwhile is the next batch, and the watch's own
		// buffer (256) would cut a burst into many full renders.
		ChannelCapacity: r.conf.Batch.Max,
		FullRender:      fullRender,
		BucketID:        st.BucketID,
		OnBucketID: func(_ context.Context, id string) error {
			return update(func(s *watchState) { s.BucketID = id })
		},
		Mark: st.Mark,
		OnMark: func(_ context.Context, mark string) error {
			return update(func(s *watchState) { s.Mark = mark })
		},
		Folding: st.Folding,
		OnFolding: func(_ context.Context, folding bool) error {
			return update(func(s *watchState) { s.Folding = folding })
		},
		Unreconciled: st.Unreconciled,
		OnUnreconciled: func(_ context.Context, c kvcore.Cursor) error {
			return update(func(s *watchState) { s.Unreconciled = c })
		},
		Reconcile: reconcileEvery,
		NoRetry:   r.a.once, // Once reports the failure
		OnProgress: func(p kvcore.Progress) {
			if p.Synced {
				inst.begin()
			}
			drift.progress(p)
			if p.Err != nil {
				if err := damageOf(fold, r.record); err != nil {
					damaged(err)
				}
			}
		},
		Logger:  r.log,
		Exports: exports,
	}, func(ctx context.Context, b kvcore.Batch) error { return drift.apply(ctx, b, apply) })
	if cause := context.Cause(wctx); ctx.Err() == nil && cause != nil {
		return fmt.Errorf("agent: the fold's files are damaged: %w", cause)
	}
	return err
}

// window is the watch's batch window; none unless configured.
func (r *watchRunner) window() time.Duration {
	if r.conf.Batch.Window > 0 {
		return r.conf.Batch.Window
	}
	return kvcore.NoWindow
}

func (r *watchRunner) quiet() kvcore.Quiescence {
	if r.conf.Wait == nil {
		return kvcore.Quiescence{}
	}
	return kvcore.Quiescence{Min: r.conf.Wait.Min, Max: r.conf.Wait.Max}
}

func (r *watchRunner) scope() kvcore.Scope {
	if r.conf.Prefixes == nil {
		return kvcore.AllKeys()
	}
	return kvcore.Prefixes(r.conf.Prefixes...)
}

// sweptLogCap is how many of the staging files a crash left the log names.
const sweptLogCap = 10

// outputs creates the output directories, removes staging files a crash
// left in them, and returns them as the host writes them.
func (r *watchRunner) outputs() (map[string]host.Output, error) {
	if err := r.makeOutputDirs(); err != nil {
		return nil, err
	}
	for _, o := range r.conf.Outputs {
		swept, err := host.SweepStaged(o.Dir)
		if err != nil {
			return nil, fmt.Errorf("output %s: %w", o.Name, err)
		}
		if n := len(swept); n > 0 {
			r.log.Info("removed staging files left by a crash", "output", o.Name, "files", n, "first", swept[:min(n, sweptLogCap)])
		}
	}
	return r.resolvedOutputs(), nil
}

// resolvedOutputs is the watch's outputs as the host writes them: their
// directories, modes and owners (resolved when the configuration loaded).
func (r *watchRunner) resolvedOutputs() map[string]host.Output {
	outs := make(map[string]host.Output, len(r.conf.Outputs))
	for _, o := range r.conf.Outputs {
		outs[o.Name] = host.Output{Dir: o.Dir, Mode: o.Mode, Owner: o.FileOwner}
	}
	return outs
}

// apply hands one batch to the plugin and commits what it staged. It returns
// nil only once files are committed and requested hooks ran, which is what
// lets WatchApplied move the cursor.
func (r *watchRunner) apply(ctx context.Context, inst instance, fold kvcore.Fold, journal hookJournal, b kvcore.Batch, rendered func() error) error {
	start := time.Now()
	view := foldView{fold: fold}
	var res result
	var err error
	if b.Full {
		if err := r.makeOutputDirs(); err != nil {
			return err
		}
		res, err = inst.Render(ctx, hostCursor(b.Cursor), view)
	} else {
		res, err = inst.Apply(ctx, hostBatch(b), view)
	}
	r.a.metrics.pluginCall(r.conf.Name, b.Full, time.Since(start), err)
	if err != nil {
		return err // it names the plugin
	}
	if err := r.commit(ctx, res, journal, b.Cursor); err != nil {
		return err
	}
	if b.Full {
		if err := rendered(); err != nil {
			return err
		}
	}
	if err := r.guard.committed(); err != nil {
		return err
	}
	r.status.applied(b, time.Now())
	r.a.metrics.batchApplied(r.conf.Name, len(b.Updates))
	return nil
}

// commit checks, commits and runs the hooks of one plugin result:
//
//  1. the check command of every hook due runs against the staged files; a
//     failing check discards them (unless its hook says on_failure = "ignore");
//  2. the hooks due are journaled;
//  3. the staged files are renamed into place and their directories fsynced;
//  4. the hooks run, in configuration order; the journal is cleared once all
//     succeeded.
//
// A hook with check_in_place = true has its check run after step 3, with
// the old files kept aside and put back if it fails (checkplace.go); the
// hooks are then journaled once the checks passed.
func (r *watchRunner) commit(ctx context.Context, res result, journal hookJournal, cursor kvcore.Cursor) error {
	pending, _, err := journal.load()
	if err != nil {
		res.Discard()
		return err
	}
	staged := res.Staged()
	if err := r.guard.checkCommit(removals(staged), r.countOutputs); err != nil {
		res.Discard()
		return err
	}
	due := r.ordered(append(pending, res.Hooks()...))
	inPlace := false
	if res.Changed() {
		if err := r.runChecks(ctx, due, staged, cursor, false); err != nil {
			res.Discard()
			return err
		}
		inPlace = r.checksInPlace(due)
	}
	if inPlace {
		return r.commitChecked(ctx, res, staged, journal, due, cursor)
	}
	// With no hook owed or due there is no journal to write or clear.
	journaled := len(due) > 0 || len(pending) > 0
	if journaled {
		if err := journal.store(due, cursor); err != nil {
			res.Discard()
			return err
		}
	}
	// The record of committed outputs marks the files pending before the
	// renames and removals, and settles them after (driftcommit.go): a
	// crash among them is not taken for drift, and leaves no renamed file
	// the record lacks, which a later render would find in place and not
	// stage. The record's fsync and the staged files' overlap.
	recorded := r.record.hash(staged)
	r.record.committed(ctx, staged, recorded)
	if err := res.Sync(ctx); err != nil {
		return fmt.Errorf("committing files: %w", err)
	}
	r.record.synced(ctx)
	if err := res.Commit(ctx); err != nil {
		return fmt.Errorf("committing files: %w", err)
	}
	r.record.settled(ctx, staged, recorded)
	r.record.kept(ctx, res.Kept())
	if !journaled {
		return nil
	}
	return r.runHooks(ctx, journal, due, cursor)
}

// commitChecked commits res with the old files kept aside, runs the
// checks in place, and puts the old files back if one fails.
func (r *watchRunner) commitChecked(ctx context.Context, res result, staged []host.StagedFile, journal hookJournal, due []string, cursor kvcore.Cursor) error {
	recorded := r.record.hash(staged)
	r.record.committed(ctx, staged, recorded) // as in commit
	r.record.synced(ctx)
	p, err := r.place(ctx, res, staged)
	if err != nil {
		return err
	}
	if err := r.runChecks(ctx, due, placedEnv(staged), cursor, true); err != nil {
		if uerr := p.undo(); uerr != nil {
			return errors.Join(err, fmt.Errorf("restoring the old files (retried at the next start): %w", uerr))
		}
		return err
	}
	if err := journal.store(due, cursor); err != nil {
		return errors.Join(err, p.undo())
	}
	if err := p.keep(); err != nil {
		return err
	}
	r.record.settled(ctx, staged, recorded)
	r.record.kept(ctx, res.Kept())
	return r.runHooks(ctx, journal, due, cursor)
}

// runChecks runs the check command of every hook in due whose
// check_in_place is inPlace, against files; the first that fails (and
// whose on_failure is not "ignore") is the error.
func (r *watchRunner) runChecks(ctx context.Context, due []string, files []host.StagedFile, cursor kvcore.Cursor, inPlace bool) error {
	var env string // built once, for the first check
	for _, name := range due {
		h := r.hooks[name]
		if len(h.Check) == 0 || h.CheckInPlace != inPlace {
			continue
		}
		if env == "" {
			env = stagedEnv(files)
		}
		err := runCommand(ctx, r.log.With("hook", name, "check", true), h.Check, h.Timeout, hookProcess(h, append(r.env(name, cursor), env)))
		r.a.metrics.command(r.conf.Name, name, "check", err)
		if err != nil {
			if h.OnFailure == FailIgnore {
				r.log.Warn("check failed; committing anyway (on_failure = ignore)", "hook", name, "err", err)
				continue
			}
			return fmt.Errorf("check of hook %s refused the new files (kept the old ones): %w", name, err)
		}
	}
	return nil
}

// checksInPlace reports whether a hook in due checks with the files in place.
func (r *watchRunner) checksInPlace(due []string) bool {
	for _, name := range due {
		if h := r.hooks[name]; len(h.Check) > 0 && h.CheckInPlace {
			return true
		}
	}
	return false
}

// runHooks runs hooks in order through the agent's hook scheduler (splay,
// min_interval, one run for watches asking for the same command), then
// clears the journal. A failing hook with on_failure = "retry" stops the run
// and stays journaled with the ones after it; so do hooks still waiting for
// their turn when the watch stops (ctx or r.stop ends).
func (r *watchRunner) runHooks(ctx context.Context, journal hookJournal, hooks []string, cursor kvcore.Cursor) error {
	for i, name := range hooks {
		h := r.hooks[name]
		err := r.a.hooks.request(ctx, r.stop, hookRequest{
			watch: r.conf.Name, log: r.log.With("hook", name), argv: h.Command, hook: h, env: r.env(name, cursor),
			timeout: h.Timeout, splay: h.Splay, minInterval: h.MinInterval,
		})
		abandoned := errors.Is(err, errHookAbandoned)
		if !abandoned {
			r.a.metrics.command(r.conf.Name, name, "hook", err)
		}
		if err == nil {
			r.log.Info("hook ran", "hook", name)
			continue
		}
		if h.OnFailure == FailIgnore && !abandoned {
			r.log.Warn("hook failed; going on (on_failure = ignore)", "hook", name, "err", err)
			continue
		}
		if jerr := journal.store(hooks[i:], cursor); jerr != nil {
			return errors.Join(err, jerr)
		}
		return fmt.Errorf("hook %s: %w", name, err)
	}
	return journal.store(nil, kvcore.Cursor{})
}

// ordered keeps the declared hooks among names, once each, in the order the
// watch declares them. The host already refuses undeclared hook requests; a
// journal naming a hook the configuration no longer has drops it, saying so.
func (r *watchRunner) ordered(names []string) []string {
	var out []string
	for _, h := range r.conf.Hooks {
		if slices.Contains(names, h.Name) {
			out = append(out, h.Name)
		}
	}
	for _, n := range names {
		if _, ok := r.hooks[n]; !ok {
			r.log.Warn("dropping an owed hook the configuration no longer declares", "hook", n)
		}
	}
	return out
}

// env is what the agent sets in the environment of hook and check
// commands, besides what their env block passes.
func (r *watchRunner) env(hook string, cursor kvcore.Cursor) []string {
	rev, _ := cursor.Revision()
	return []string{
		"SLIPAGENT_WATCH=" + r.conf.Name,
		"SLIPAGENT_BUCKET=" + r.conf.Bucket,
		"SLIPAGENT_HOOK=" + hook,
		"SLIPAGENT_REVISION=" + strconv.FormatUint(rev, 10),
	}
}

// removals counts the files a result removes.
func removals(files []host.StagedFile) int {
	n := 0
	for _, f := range files {
		if f.Remove {
			n++
		}
	}
	return n
}

// countOutputs counts the files below the watch's output directories.
func (r *watchRunner) countOutputs() (int, error) {
	dirs := make([]string, len(r.conf.Outputs))
	for i, o := range r.conf.Outputs {
		dirs[i] = o.Dir
	}
	return countFiles(dirs)
}

// stagedEnv lists staged files for check commands: one line per file,
// "<staged path>\t<target path>", with an empty staged path for a removal.
func stagedEnv(files []host.StagedFile) string {
	var b strings.Builder
	b.WriteString("SLIPAGENT_STAGED=")
	for i, f := range files {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(f.File + "\t" + f.Target)
	}
	return b.String()
}

func hookNames(hooks []*HookConf) []string {
	names := make([]string, len(hooks))
	for i, h := range hooks {
		names[i] = h.Name
	}
	return names
}

// damageOf returns the damage found in the files of fold or of rec's log
// while they run (see pebblefold.Fold.Damaged), nil when none: an error
// that reports it may have crossed the plugin's boundary as text.
func damageOf(fold kvcore.Fold, rec *outputRecord) error {
	folds := []kvcore.Fold{fold}
	if rec != nil {
		folds = append(folds, rec.log)
	}
	for _, f := range folds {
		if d, ok := f.(interface{ Damaged() error }); ok {
			if err := d.Damaged(); err != nil {
				return err
			}
		}
	}
	return nil
}
