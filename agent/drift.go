package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/plugins/host"
)

// driftLogCap is how many drifted files one check names in the log; the
// rest are counted.
const driftLogCap = 20

// driftRepair restores a watch's outputs when they are changed or removed
// outside the agent (DESIGN.md invariant 12). The fold being up to date, no
// batch would ever rewrite them until their keys change.
//
// Every interval (drift_check), and once after the watch first catches up,
// it compares the record of committed outputs (outputRecord) with the disk:
// a stat per recorded file, a hash only when the stat fingerprint changed.
// On drift it renders the whole watch through the plugin and commits the
// result through the watch's commit path (checks, hooks journal, hooks),
// without touching the cursor: the plugin restores its own outputs, and a
// file the plugin no longer writes (its key was deleted) is not resurrected.
// Missing output directories are created again first (makeOutputDirs).
//
// A check or repair that fails makes the watch failing, as a failed batch
// does (watchStatus.repairFailed), until a repair or a full render succeeds
// or a check finds no drift: its outputs may not equal the bucket meanwhile.
//
// A drift render must not run while the fold holds more than the outputs
// show: the turn serializes it with every apply attempt, and it runs only while
// the loop is caught up and its last attempt succeeded. While a batch is
// being retried (the fold may be ahead of it) the repair is left to the
// batch's next attempt, which then renders in full. Between the loop
// folding a new batch and applying it, a drift render may render that batch
// already; its apply then finds the files in place.
type driftRepair struct {
	r       *watchRunner
	rec     *outputRecord // nil when drift checks are off
	inst    instance
	fold    kvcore.Fold
	journal hookJournal
	// damaged ends the watch's session with damage a check found in the
	// fold's or the record's files (see damageOf).
	damaged context.CancelCauseFunc

	// turn serializes the plugin calls and commits of apply attempts and
	// drift renders, and guards the flags below (take it with lock). The
	// loop's progress reports take it too, so a resync cannot start
	// folding under a drift render. It is a channel rather than a mutex so
	// that a drift check waiting out a long apply (a held batch waits for
	// its confirmation) gives up when the watch stops.
	turn     chan struct{}
	synced   bool // the loop is caught up (not syncing nor resyncing)
	retrying bool // the last apply attempt failed
	owed     bool // drift was found while retrying: the next attempt renders in full
	// unfinished says the last drift render failed (the plugin, a check or
	// a hook): the next check renders again even if it finds no drift, so
	// that the hooks it owes run without waiting for a batch.
	unfinished bool

	ready     chan struct{} // closed once the loop first catches up
	readyOnce sync.Once
}

// openDriftRecord opens the watch's record of committed outputs, or returns
// nil when drift checks are off (drift_check = "0"), removing any record
// left from before: it would be stale once checks are turned on again.
// A record that starts empty calls owe first: there was none (a first
// start, drift checks turned on, or the record deleted), or it did not load
// and is quarantined. Drift in files committed before then would go
// unnoticed, so the watch owes a full render, which records every output
// as it leaves it.
func openDriftRecord(ctx context.Context, r *watchRunner, outputs map[string]host.Output, owe func() error) (*outputRecord, error) {
	if r.conf.DriftCheck == 0 {
		return nil, removeOutputRecords(r.dir, "")
	}
	if !outputRecordExists(r.dir, r.conf.Fold) {
		if err := owe(); err != nil {
			return nil, err
		}
	}
	rec, err := openOutputRecord(ctx, r.dir, r.conf.Fold, outputs, r.log)
	if ce, ok := errors.AsType[*corruptError](err); ok {
		if err := owe(); err != nil {
			return nil, err
		}
		if err := r.quarantine(ce.kind, ce.path, ce.err); err != nil {
			return nil, err
		}
		rec, err = openOutputRecord(ctx, r.dir, r.conf.Fold, outputs, r.log)
	}
	return rec, err
}

func newDriftRepair(r *watchRunner, rec *outputRecord, inst instance, fold kvcore.Fold, journal hookJournal, damaged context.CancelCauseFunc) *driftRepair {
	return &driftRepair{r: r, rec: rec, inst: inst, fold: fold, journal: journal, damaged: damaged, ready: make(chan struct{}), turn: make(chan struct{}, 1)}
}

// lock takes the turn, or gives up when ctx ends first.
func (d *driftRepair) lock(ctx context.Context) bool {
	select {
	case d.turn <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (d *driftRepair) unlock() { <-d.turn }

// start runs the drift checks until ctx ends or the returned stop is
// called; stop waits for a check in progress to finish.
func (d *driftRepair) start(ctx context.Context) (stop func()) {
	if d.rec == nil {
		d.r.firstCheck.mark()
		d.r.status.driftChecked()
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

func (d *driftRepair) run(ctx context.Context) {
	select {
	case <-ctx.Done():
		return
	case <-d.ready:
	}
	for {
		err := d.check(ctx)
		var damage error
		if err != nil {
			damage = damageOf(d.fold, d.rec)
		}
		switch {
		case err == nil:
			d.r.status.repaired()
		case damage != nil:
			d.damaged(damage) // the session ends; the next rebuilds the fold
			return
		case ctx.Err() == nil:
			d.r.log.Warn("drift check failed; trying again at the next one", "err", err, "drift_check", d.r.conf.DriftCheck)
			d.r.status.repairFailed(err)
		}
		d.r.firstCheck.mark()
		if ctx.Err() == nil { // a check cut short is not over
			d.r.status.driftChecked()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(d.r.conf.DriftCheck):
		}
	}
}

// apply runs one apply attempt of the loop holding the turn, as a full render when
// a drift repair is owed.
func (d *driftRepair) apply(ctx context.Context, b kvcore.Batch, apply kvcore.ApplyFunc) error {
	// Busy from now: waiting for a repair's turn is part of the batch.
	d.r.status.batchStarted(time.Now())
	defer d.r.status.batchEnded()
	d.lock(context.Background())
	defer d.unlock()
	if d.owed {
		b.Full = true
	}
	err := apply(ctx, b)
	d.retrying = err != nil
	if err == nil {
		// The attempt ran every owed hook; drift left is found again.
		d.unfinished = false
		if b.Full {
			d.owed = false
			d.r.status.repaired()
		}
	}
	return err
}

// progress records the loop's progress (for the status too).
func (d *driftRepair) progress(p kvcore.Progress) {
	d.lock(context.Background())
	d.synced = p.Synced
	d.unlock()
	if p.Synced {
		d.readyOnce.Do(func() { close(d.ready) })
	}
	d.r.status.progress(p)
}

// driftedFile is a recorded file that differs from its record.
type driftedFile struct {
	key, path, reason string
	owned             bool // its output declares an owner
}

// check runs one drift check and, on drift, the repair. Files that could
// not be checked fail the check once the others are repaired: whether they
// drifted is unknown.
func (d *driftRepair) check(ctx context.Context) error {
	drifted, unchecked, err := d.find(ctx)
	if err != nil {
		return fmt.Errorf("checking outputs for drift: %w", err)
	}
	if !d.lock(ctx) {
		return ctx.Err()
	}
	unfinished := d.unfinished
	d.unlock()
	if len(drifted) == 0 && !unfinished {
		return unchecked
	}
	drifted, staged, err := d.render(ctx, drifted)
	if err != nil {
		return fmt.Errorf("repairing drift: %w", err)
	}
	if staged == nil {
		return unchecked
	}
	if err := d.recheck(ctx, drifted, staged); err != nil {
		return fmt.Errorf("checking repaired outputs: %w", err)
	}
	return unchecked
}

// find compares every recorded file with the disk (outputRecord.scan).
// Files whose content is the recorded one but whose stat fingerprint
// changed get their record updated, so the next check does not hash them
// again; pending records are settled on the state their file is in; outputs
// the watch no longer declares are forgotten.
func (d *driftRepair) find(ctx context.Context) (drifted []driftedFile, unchecked, err error) {
	s, err := d.rec.scan(ctx)
	if err != nil {
		return nil, nil, err
	}
	if len(s.stale) > 0 || len(s.refreshed) > 0 {
		if !d.lock(ctx) {
			return nil, nil, ctx.Err()
		}
		err := d.rec.apply(ctx, append(s.stale, d.unchanged(s.refreshed)...))
		d.unlock()
		if err != nil {
			d.r.log.Warn("cannot update the record of committed outputs", "err", err)
		}
	}
	return s.drifted, s.unchecked, nil
}

// driftScan is what one comparison of the record with the disk found.
type driftScan struct {
	drifted []driftedFile
	// unchecked names the files that could not be checked (nil: none).
	unchecked error
	// stale deletes the entries of outputs the watch no longer declares.
	stale []kvcore.Update
	// refreshed holds, by key, the old and new record of files whose
	// content is the recorded one but whose stat fingerprint changed, and
	// of pending records settled on the state their file is in (a new
	// record standing for no entry when that state is none).
	refreshed map[string][2]fileRecord
}

// scan compares every recorded file with the disk: a stat per file, a hash
// only when the stat fingerprint changed (driftOf). It changes nothing:
// the drift check (driftRepair.find) applies what it found to the record,
// and a plan (watchRunner.plan) shows the repairs it calls for.
func (r *outputRecord) scan(ctx context.Context) (driftScan, error) {
	s := driftScan{refreshed: map[string][2]fileRecord{}}
	failed := 0
	err := r.each(ctx, func(key string, fr fileRecord) error {
		path, owned, ok := r.target(key)
		if !ok {
			s.stale = append(s.stale, kvcore.Update{Op: kvcore.OpDelete, Key: key})
			return nil
		}
		reason, now, err := driftOf(path, owned, fr)
		switch {
		case err != nil:
			if failed++; failed == 1 {
				s.unchecked = fmt.Errorf("cannot check output %s for drift: %w", path, err)
			}
		case reason != "":
			s.drifted = append(s.drifted, driftedFile{key, path, reason, owned})
		case now != nil:
			s.refreshed[key] = [2]fileRecord{fr, *now}
		}
		return nil
	})
	if err != nil {
		return driftScan{}, err
	}
	if failed > 1 {
		s.unchecked = fmt.Errorf("%w (and %d more files)", s.unchecked, failed-1)
	}
	return s, nil
}

// unchanged turns into record updates the entries of updates (key → old,
// new) whose record is still the old one: a commit may have recorded a newer
// file meanwhile. The turn is held, so no commit records anything or moves
// a file during the comparison. A pending record is compared with its file
// again: a commit that did not record anything may still have moved the
// file since find looked (a rename before the commit failed, a check in
// place that put the old file back), and the record settles on the state
// the file is in now.
func (d *driftRepair) unchanged(updates map[string][2]fileRecord) []kvcore.Update {
	var out []kvcore.Update
	for key, u := range updates {
		cur, ok, err := d.rec.get(key)
		if err != nil || !ok || cur != u[0] {
			continue
		}
		if cur.pending {
			path, owned, known := d.rec.target(key)
			if !known {
				continue
			}
			reason, now, err := driftOf(path, owned, cur)
			if err != nil || reason != "" || now == nil {
				continue // the next check finds it
			}
			u[1] = *now
		}
		out = append(out, u[1].update(key))
	}
	return out
}

// render confirms the drift of the files find reported, then renders the
// whole watch and commits the result. It returns the files still drifted
// before the render and the record keys of the files the render staged;
// nil staged (and no error) when nothing is to be rendered now (no drift
// left, or the watch is not in a state to render: see driftRepair).
func (d *driftRepair) render(ctx context.Context, drifted []driftedFile) ([]driftedFile, map[string]bool, error) {
	if !d.lock(ctx) {
		return nil, nil, nil
	}
	defer d.unlock()
	ctx = context.WithoutCancel(ctx) // a render that started runs to its end
	// find ran without the turn: a commit may have moved a file since
	// (marked pending, not settled yet). Holding the turn, the record is
	// up to date and no commit is under way.
	drifted = d.confirm(drifted)
	if len(drifted) == 0 && !d.unfinished {
		return nil, nil, nil
	}
	if len(drifted) > 0 {
		d.report("output changed outside the agent", drifted)
	} else {
		d.r.log.Info("rendering again after a failed drift repair")
	}
	switch {
	case !d.synced:
		d.r.log.Info("not repairing drift now: the watch is syncing, and renders everything once done")
		return nil, nil, nil
	case d.retrying:
		d.owed = true
		d.r.log.Info("drift is left to the next attempt of the failing batch, which renders everything")
		return nil, nil, nil
	}
	d.r.log.Info("rendering the watch to restore its outputs", "drifted", len(drifted))
	start := time.Now()
	d.r.status.repairStarted(start)
	defer d.r.status.repairEnded()
	if err := d.r.makeOutputDirs(); err != nil {
		d.unfinished = true
		return nil, nil, err
	}
	cursor := d.fold.Cursor()
	res, err := d.inst.Render(ctx, hostCursor(cursor), foldView{fold: d.fold})
	d.r.a.metrics.pluginCall(d.r.conf.Name, true, time.Since(start), err)
	if err != nil {
		d.unfinished = true
		return nil, nil, err // it names the plugin
	}
	staged := map[string]bool{}
	for _, f := range res.Staged() {
		staged[recordKey(f.Output, f.Path)] = true
	}
	if err := d.r.commit(ctx, res, d.journal, cursor); err != nil {
		d.unfinished = true
		return nil, nil, err
	}
	d.owed, d.unfinished = false, false
	return drifted, staged, nil
}

// confirm keeps the files that still differ from their current record.
// the turn is held.
func (d *driftRepair) confirm(drifted []driftedFile) []driftedFile {
	var still []driftedFile
	for _, f := range drifted {
		fr, ok, err := d.rec.get(f.key)
		if err != nil || !ok {
			continue
		}
		if reason, _, err := driftOf(f.path, f.owned, fr); err == nil && reason != "" {
			f.reason = reason
			still = append(still, f)
		}
	}
	return still
}

// recheck compares the drifted files with the record again after the
// render, counts the repaired ones, and reports those that drifted again at
// once (they are repaired again at the next check, not in a loop). A file
// the render left alone is what the plugin wants, or one it no longer
// writes: the record takes it as it is, or forgets it if it is gone.
func (d *driftRepair) recheck(ctx context.Context, drifted []driftedFile, staged map[string]bool) error {
	if !d.lock(ctx) {
		return ctx.Err()
	}
	defer d.unlock()
	var again []driftedFile
	var updates []kvcore.Update
	repaired, adopted := 0, 0
	for _, f := range drifted {
		fr, ok, err := d.rec.get(f.key)
		if err != nil {
			return err
		}
		if !ok {
			continue // the render removed it
		}
		reason, now, err := driftOf(f.path, f.owned, fr)
		if err != nil {
			d.r.log.Warn("cannot check a repaired output", "path", f.path, "err", err)
			continue
		}
		switch {
		case reason == "":
			if staged[f.key] {
				repaired++
			}
			if now != nil {
				updates = append(updates, now.update(f.key))
			}
		case staged[f.key]:
			f.reason = reason
			again = append(again, f)
		default:
			adopted++
			if cur, err := readFileRecord(f.path); err == nil {
				updates = append(updates, kvcore.Update{Op: kvcore.OpPut, Key: f.key, Value: cur.encode()})
			} else {
				updates = append(updates, kvcore.Update{Op: kvcore.OpDelete, Key: f.key})
			}
		}
	}
	if err := d.rec.apply(ctx, updates); err != nil {
		d.r.log.Warn("cannot update the record of committed outputs", "err", err)
	}
	if repaired > 0 {
		d.r.a.metrics.driftRepaired(d.r.conf.Name, repaired)
		d.r.log.Info("drift repaired", "files", repaired)
	}
	if adopted > 0 {
		d.r.log.Info("the render left some drifted outputs as they are (the plugin wants them so, or no longer writes them); the record now takes them as they are, or forgets them if gone", "files", adopted)
	}
	if len(again) > 0 {
		d.report("output changed again right after its repair; repairing it again at the next check", again)
	}
	return nil
}

// report logs the first driftLogCap files, then the total.
func (d *driftRepair) report(msg string, files []driftedFile) {
	for _, f := range files[:min(len(files), driftLogCap)] {
		d.r.log.Warn(msg, "path", f.path, "drift", f.reason)
	}
	if len(files) > driftLogCap {
		d.r.log.Warn(msg, "files", len(files), "not_listed", len(files)-driftLogCap)
	}
}
