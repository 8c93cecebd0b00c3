package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/slipstreamkv/slipstream/plugins/host"
)

// commitFiles commits staged as watchRunner.commit does, applying only the
// first n of its renames and removals: n < len(staged) is an agent stopped
// in the middle (the record is not settled then).
func commitFiles(t *testing.T, rec *outputRecord, staged []host.StagedFile, n int) {
	t.Helper()
	ctx := context.Background()
	updates := rec.hash(staged)
	rec.committed(ctx, staged, updates)
	rec.synced(ctx)
	for _, f := range staged[:n] {
		var err error
		if f.Remove {
			err = os.Remove(f.Target)
		} else {
			err = os.Rename(f.File, f.Target)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if n == len(staged) {
		rec.settled(ctx, staged, updates)
	}
}

// settleScan applies what a drift check's scan found, as driftRepair.find
// does, and returns the drifted files' names and reasons.
func settleScan(t *testing.T, rec *outputRecord) map[string]string {
	t.Helper()
	ctx := context.Background()
	s, err := rec.scan(ctx)
	if err != nil || s.unchecked != nil {
		t.Fatal(err, s.unchecked)
	}
	updates := s.stale
	for key, u := range s.refreshed {
		updates = append(updates, u[1].update(key))
	}
	if err := rec.apply(ctx, updates); err != nil {
		t.Fatal(err)
	}
	drifted := map[string]string{}
	for _, f := range s.drifted {
		drifted[filepath.Base(f.path)] = f.reason
	}
	return drifted
}

// An agent stopped in the middle of a commit (SIGKILL, a crash, a failed
// rename) leaves the files the commit reached as it wrote them and the
// others as they were: neither is drift, and a drift check settles the
// record on what is there. Recorded after the commit only, a removal done
// before the stop was reported as a file "missing"; recorded before it, a
// write not yet renamed was.
func TestACommitCutShortIsNotDrift(t *testing.T) {
	for _, kind := range []string{FoldMemory, FoldDisk} {
		// The commit updates a, removes b and writes the new c; it stops
		// after n of the three.
		for n := range 4 {
			t.Run(fmt.Sprintf("%s/%d", kind, n), func(t *testing.T) {
				dir, out := t.TempDir(), t.TempDir()
				rec := openTestRecord(t, kind, dir, out)
				commitFiles(t, rec, []host.StagedFile{stageFile(t, out, "a", "alpha"), stageFile(t, out, "b", "bravo")}, 2)
				cut := []host.StagedFile{
					stageFile(t, out, "a", "ALPHA!"),
					{Output: "files", Path: "b", Target: filepath.Join(out, "b"), Remove: true},
					stageFile(t, out, "c", "charlie"),
				}
				commitFiles(t, rec, cut, n)
				if n == len(cut) {
					return // a commit that took place: TestOutputRecordPutRemoveReopen
				}
				if err := rec.Close(); err != nil {
					t.Fatal(err)
				}
				rec = openTestRecord(t, kind, dir, out)
				if drifted := settleScan(t, rec); len(drifted) > 0 {
					t.Fatalf("a commit stopped after %d of 3 files reads as drift: %v", n, drifted)
				}
				// The record now holds what is there, and nothing pending.
				for _, name := range []string{"a", "b", "c"} {
					fr, ok, err := rec.get("files/" + name)
					if err != nil {
						t.Fatal(err)
					}
					_, statErr := os.Stat(filepath.Join(out, name))
					if ok != (statErr == nil) || ok && fr.pending {
						t.Errorf("%s: recorded %v (pending %v), on disk %v", name, ok, fr.pending, statErr == nil)
					}
				}
				if drifted := settleScan(t, rec); len(drifted) > 0 {
					t.Errorf("drift after settling: %v", drifted)
				}
			})
		}
	}
}

// A file changed by hand after a commit was cut short is in neither of the
// states that commit left: that is drift, reported against the state the
// commit wrote (or the one before it, for a removal).
func TestEditAfterACommitCutShortIsDrift(t *testing.T) {
	for _, kind := range []string{FoldMemory, FoldDisk} {
		t.Run(kind, func(t *testing.T) {
			dir, out := t.TempDir(), t.TempDir()
			rec := openTestRecord(t, kind, dir, out)
			commitFiles(t, rec, []host.StagedFile{stageFile(t, out, "a", "alpha"), stageFile(t, out, "b", "bravo")}, 2)
			commitFiles(t, rec, []host.StagedFile{
				stageFile(t, out, "a", "ALPHA!"),
				{Output: "files", Path: "b", Target: filepath.Join(out, "b"), Remove: true},
				stageFile(t, out, "c", "charlie"),
			}, 0)
			for name, content := range map[string]string{"a": "by hand", "b": "by hand too", "c": "made by hand"} {
				if err := os.WriteFile(filepath.Join(out, name), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			drifted := settleScan(t, rec)
			want := map[string]string{"a": "content changed", "b": "content changed", "c": "content changed"}
			if fmt.Sprint(drifted) != fmt.Sprint(want) {
				t.Errorf("drift %v, want %v", drifted, want)
			}
			// Still pending, so the repair's render settles them.
			for _, name := range []string{"a", "b", "c"} {
				if fr, ok, err := rec.get("files/" + name); err != nil || !ok || !fr.pending {
					t.Errorf("%s after the check: %+v, %v, %v; want it still pending", name, fr, ok, err)
				}
			}
		})
	}
}

// A commit on top of records left pending (the first after a restart,
// before any drift check) takes as the state before it the one its file is
// in, so that a second cut-short commit is not drift either.
func TestACommitOverPendingRecords(t *testing.T) {
	dir, out := t.TempDir(), t.TempDir()
	rec := openTestRecord(t, FoldMemory, dir, out)
	commitFiles(t, rec, []host.StagedFile{stageFile(t, out, "a", "alpha")}, 1)
	commitFiles(t, rec, []host.StagedFile{stageFile(t, out, "a", "beta")}, 0)  // a is still alpha
	commitFiles(t, rec, []host.StagedFile{stageFile(t, out, "a", "gamma")}, 0) // and still is
	if drifted := settleScan(t, rec); len(drifted) > 0 {
		t.Fatalf("drift %v, want none: a is as the first commit wrote it", drifted)
	}
	fr, ok, err := rec.get("files/a")
	if err != nil || !ok || fr.pending || fr.sum != sha256.Sum256([]byte("alpha")) {
		t.Errorf("record of a: %+v, %v, %v; want alpha, settled", fr, ok, err)
	}
}

// A drift check's find reads a pending record and its file without the
// turn, while a commit may be under way; unchanged applies what it found
// under the turn. A commit that moved the file without recording anything
// (a rename before the commit failed on another file, a check in place
// that put the old file back) must not leave the record settled on the
// state find saw: the next check would report drift no one made.
func TestADriftCheckDuringACommitSettlesOnTheFileAsItEnds(t *testing.T) {
	for _, undo := range []bool{false, true} {
		t.Run(fmt.Sprintf("undo=%v", undo), func(t *testing.T) {
			ctx := context.Background()
			dir, out := t.TempDir(), t.TempDir()
			rec := openTestRecord(t, FoldMemory, dir, out)
			commitFiles(t, rec, []host.StagedFile{stageFile(t, out, "a", "alpha")}, 1)
			d := &driftRepair{rec: rec}
			// The commit marks a pending.
			staged := []host.StagedFile{stageFile(t, out, "a", "beta")}
			rec.committed(ctx, staged, rec.hash(staged))
			rec.synced(ctx)
			target, backup := filepath.Join(out, "a"), filepath.Join(out, ".backup")
			if undo { // check_in_place: the old file kept aside, the new one placed
				if err := errors.Join(os.Link(target, backup), os.Rename(staged[0].File, target)); err != nil {
					t.Fatal(err)
				}
			}
			s, err := rec.scan(ctx) // find, without the turn
			if err != nil {
				t.Fatal(err)
			}
			if undo { // the check fails: the old file is put back
				err = os.Rename(backup, target)
			} else { // renamed, then the commit fails on another file
				err = os.Rename(staged[0].File, target)
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := rec.apply(ctx, append(s.stale, d.unchanged(s.refreshed)...)); err != nil { // under the turn
				t.Fatal(err)
			}
			if drifted := settleScan(t, rec); len(drifted) > 0 {
				t.Errorf("only the agent touched a, yet the next check reports %v", drifted)
			}
		})
	}
}

// The record's encodings decode to what was encoded, and an encoding that
// does not decode is refused, not misread.
func TestFileRecordEncodings(t *testing.T) {
	s := fileState{size: 5, mode: 0o644, uid: 1, gid: 2, mtime: 3, ino: 4, ctime: 6}
	s.sum[0] = 9
	p := fileState{size: 7, mode: 0o600, uid: 11, gid: 12, mtime: 13, ino: 14, ctime: 16}
	p.sum[31] = 8
	for _, fr := range fileRecordSeeds(s, p) {
		got, err := decodeFileRecord(fr.encode())
		if err != nil || got != fr {
			t.Errorf("%+v decodes to %+v, %v", fr, got, err)
		}
	}
	for _, b := range [][]byte{nil, {2}, {3, pendingGone | pendingPriorGone}, {3, 4}, append([]byte{3, 0}, make([]byte, fileStateLen)...)} {
		if fr, err := decodeFileRecord(b); err == nil {
			t.Errorf("%x decodes to %+v", b, fr)
		}
	}
}

func fileRecordSeeds(s, p fileState) []fileRecord {
	return []fileRecord{
		{fileState: s},
		{fileState: s, pending: true, prior: p},
		{fileState: s, pending: true, priorGone: true},
		{pending: true, gone: true, prior: p},
	}
}

// FuzzDecodeFileRecord: whatever decodes encodes back to the same bytes
// (format 1 aside, which is written as format 2), so a record is never
// misread.
func FuzzDecodeFileRecord(f *testing.F) {
	s := fileState{size: 5, mode: 0o644, mtime: 1}
	for _, fr := range fileRecordSeeds(s, s) {
		f.Add(fr.encode())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := decodeFileRecord(b)
		if err != nil || len(b) == fileRecordLenV1 {
			return
		}
		if got := fr.encode(); !bytes.Equal(got, b) {
			t.Fatalf("%x decodes to %+v, which encodes to %x", b, fr, got)
		}
	})
}
