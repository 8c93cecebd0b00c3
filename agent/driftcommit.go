package agent

import (
	"context"
	"os"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/plugins/host"
)

// A commit keeps the record of committed outputs in step with the files in
// three writes (see watchRunner.commit):
//
//   - hash, while the files are staged: what each one's record will be;
//   - committed, before the first rename or removal, made durable by
//     synced: every file of the commit marked pending, with its state
//     before and after the commit;
//   - settled, once the commit is over: the state after.
//
// An agent that stops between the first rename and settled (a crash, a
// SIGKILL, a failed commit) leaves pending records, and the files the
// commit did not reach as they were: a drift check takes either state for
// what the agent wrote (driftOf) and settles the record on it, instead of
// reporting drift that no one made. A file in neither state was changed
// outside the agent. Writing the state after alone before the commit (a
// record ahead of the disk) would report every file the commit did not
// reach; writing it after the commit alone would leave files renamed
// before a crash out of the record.

// hash reads the staged files of a commit, before it renames them (the
// rename keeps what the record holds: content, mode, owner, mtime, inode,
// but not the ctime, which settled records after it), and returns the
// record's changes for once it succeeded, one per staged file. A staged file
// it cannot read is left out of the record, and logged. A nil record
// returns nothing.
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

// committed marks pending the files of a commit (staged, and what hash
// returned for them), before the commit touches any. Their fsync runs in the
// background when it returns (the record's writes do not wait for theirs: a
// log fold leaves a small write's fsync to the next one, a Pebble record
// commits without syncing its write-ahead log); the commit overlaps it with
// the staged files' and waits for it with synced before the first rename.
// A failure is logged, not returned: the files and hooks must not wait for
// the record. A record left behind the disk that way reports the files of
// the commit as drift if it is cut short, and leaves new files unchecked
// until they are written again.
func (r *outputRecord) committed(ctx context.Context, staged []host.StagedFile, updates []kvcore.Update) {
	if r == nil {
		return
	}
	r.waitSync() // the settling of the commit before, or this one's marks if it failed before synced
	marks := r.pending(staged, updates)
	if len(marks) == 0 {
		return
	}
	if err := r.write(ctx, marks); err != nil {
		r.l.Warn("cannot record committed outputs; a later drift check may render again needlessly", "err", err)
		return
	}
	r.syncInBackground(ctx)
}

// syncInBackground starts an fsync of the record, which synced, waitSync
// and Close wait for.
func (r *outputRecord) syncInBackground(ctx context.Context) {
	r.syncing = make(chan error, 1)
	go func(done chan<- error) { done <- r.sync(context.WithoutCancel(ctx)) }(r.syncing)
}

// waitSync waits for the fsync started in the background, if any, and logs
// its failure.
func (r *outputRecord) waitSync() {
	if r.syncing == nil {
		return
	}
	if err := <-r.syncing; err != nil {
		r.l.Warn("cannot make the record of committed outputs durable; a crash now may leave a drift check unsure of some files", "err", err)
	}
	r.syncing = nil
}

// pending returns the pending records of a commit's files, the last update
// of each key (the one in force): the state hash computed, or gone for a
// removal, and the state the record holds now (see prior). A file hash
// could not read is forgotten at once; a removal of a file the record
// lacks needs no mark.
func (r *outputRecord) pending(staged []host.StagedFile, updates []kvcore.Update) []kvcore.Update {
	if len(updates) != len(staged) {
		return nil
	}
	marks := make([]kvcore.Update, 0, len(updates))
	for _, i := range inForce(updates) {
		u := updates[i]
		mark := fileRecord{pending: true}
		switch {
		case u.Op == kvcore.OpDelete && !staged[i].Remove:
			marks = append(marks, u)
			continue
		case u.Op == kvcore.OpDelete:
			mark.gone = true
		default:
			fr, err := decodeFileRecord(u.Value)
			if err != nil {
				continue
			}
			mark.fileState = fr.fileState
		}
		prior, ok := r.prior(u.Key)
		if !ok && mark.gone {
			continue
		}
		mark.prior, mark.priorGone = prior, !ok
		marks = append(marks, mark.update(u.Key))
	}
	return marks
}

// prior is the state of key's file the record holds, if any. A record still
// pending (an earlier commit cut short, not yet settled by a drift check)
// is settled on the state the file is in; one in neither state keeps the
// state that commit wrote, so the drift is still found. A record that
// cannot be read counts as none.
func (r *outputRecord) prior(key string) (fileState, bool) {
	fr, ok, err := r.get(key)
	if err != nil || !ok {
		return fileState{}, false
	}
	if !fr.pending {
		return fr.fileState, true
	}
	if path, owned, known := r.target(key); known {
		if reason, now, err := driftOf(path, owned, fr); err == nil && reason == "" && now != nil {
			return now.fileState, !now.gone
		}
	}
	if fr.gone {
		return fr.prior, !fr.priorGone
	}
	return fr.fileState, true
}

// inForce returns the indexes of the last update of each key in updates
// (the one in force), last first.
func inForce(updates []kvcore.Update) []int {
	idx := make([]int, 0, len(updates))
	seen := make(map[string]bool, len(updates))
	for i := len(updates) - 1; i >= 0; i-- {
		if !seen[updates[i].Key] {
			seen[updates[i].Key] = true
			idx = append(idx, i)
		}
	}
	return idx
}

// synced returns once what committed wrote is durable. A failure is logged,
// as in committed.
func (r *outputRecord) synced(ctx context.Context) {
	if r == nil {
		return
	}
	if r.syncing == nil {
		r.syncInBackground(ctx)
	}
	r.waitSync()
}

// settled records the files of a commit that took place (staged, and what
// hash returned for them) as the commit left them: the removed ones
// forgotten, the written ones with the change time their rename gave them,
// so that the next drift check need not hash them again (a file whose stat
// no longer matches what hash read keeps that, and is hashed). Its fsync
// runs in the background, overlapping the checkpoint that follows the
// commit: until it is done, a crash leaves the records pending, and a file
// put back by hand in its state from before the commit would pass a drift
// check. A failure is logged.
func (r *outputRecord) settled(ctx context.Context, staged []host.StagedFile, updates []kvcore.Update) {
	if r == nil || len(updates) != len(staged) {
		return
	}
	done := make([]kvcore.Update, 0, len(updates))
	for _, i := range inForce(updates) {
		u := updates[i]
		if u.Op == kvcore.OpDelete {
			if staged[i].Remove {
				done = append(done, u)
			}
			continue
		}
		fr, err := decodeFileRecord(u.Value)
		if err != nil {
			continue
		}
		if fi, err := os.Lstat(staged[i].Target); err == nil {
			if now := statRecord(fi); now.size == fr.size && now.mode == fr.mode && now.mtime == fr.mtime && now.ino == fr.ino && now.uid == fr.uid && now.gid == fr.gid {
				fr.ctime = now.ctime
			}
		}
		done = append(done, fr.update(u.Key))
	}
	if len(done) == 0 {
		return
	}
	if err := r.write(ctx, done); err != nil {
		r.l.Warn("cannot record committed outputs; the next drift check settles them", "err", err)
		return
	}
	r.syncInBackground(ctx)
}

// kept records the files a commit found as the plugin wrote them, which it
// staged nothing for (host.KeptFile), when the record lacks them, holds
// another content, mode or owner, or holds them pending: outputs in place
// before the record was (a data_dir wiped, a host provisioned with its
// files) are then checked for drift as the ones the agent wrote are. A
// failure is logged: it leaves those files unchecked until the next render
// that writes them.
func (r *outputRecord) kept(ctx context.Context, files []host.KeptFile) {
	if r == nil || len(files) == 0 {
		return
	}
	var updates []kvcore.Update
	for _, f := range files {
		key := recordKey(f.Output, f.Path)
		now := statRecord(f.Info)
		now.sum = f.SHA256
		if fr, ok, err := r.get(key); err == nil && ok && !fr.pending && fr.sum == now.sum && fr.mode == now.mode && fr.uid == now.uid && fr.gid == now.gid {
			continue
		}
		updates = append(updates, now.update(key))
	}
	if len(updates) == 0 {
		return
	}
	if err := r.write(ctx, updates); err != nil {
		r.l.Warn("cannot record outputs that were already as rendered; drift of them goes unnoticed until they are written again", "files", len(updates), "err", err)
	}
}
