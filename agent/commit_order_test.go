package agent

import (
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/plugins/host"
)

// events is the order in which a commit's steps ran. The record's fsync
// runs on a goroutine of its own: add is safe for concurrent use.
type events struct {
	mu   sync.Mutex
	list []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, s)
}

func (e *events) get() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.list)
}

// syncSpy is a record fold that logs its writes and syncs.
type syncSpy struct {
	kvcore.Fold
	ev *events
}

func (s syncSpy) Apply(ctx context.Context, updates []kvcore.Update, c kvcore.Cursor) error {
	s.ev.add("record write")
	return s.Fold.Apply(ctx, updates, c)
}

func (s syncSpy) Sync(ctx context.Context) error {
	err := s.Fold.(syncer).Sync(ctx)
	s.ev.add("record synced")
	return err
}

// orderResult is a plugin result that logs its fsync and its commit.
type orderResult struct {
	staged []host.StagedFile
	ev     *events
}

func (r *orderResult) Hooks() []string              { return nil }
func (r *orderResult) Staged() []host.StagedFile    { return r.staged }
func (r *orderResult) Kept() []host.KeptFile        { return nil }
func (r *orderResult) Changed() bool                { return true }
func (r *orderResult) Discard()                     { r.ev.add("discard") }
func (r *orderResult) Sync(context.Context) error   { r.ev.add("files synced"); return nil }
func (r *orderResult) Commit(context.Context) error { r.ev.add("rename"); return nil }

// TestCommitRecordDurableBeforeRename: the record of committed outputs is
// written (the files marked pending) before the staged files are fsynced
// (the two fsyncs overlap) and is durable before the first rename, so a
// power loss never leaves renamed files the record lacks; it is settled
// after the renames, and that is synced too, or a power loss after the
// checkpoint would leave the records pending and accept the files' old
// state as well.
func TestCommitRecordDurableBeforeRename(t *testing.T) {
	dir, out := t.TempDir(), t.TempDir()
	rec := openTestRecord(t, FoldMemory, dir, out)
	var ev events
	rec.log = syncSpy{Fold: rec.log, ev: &ev}
	r := &watchRunner{
		conf:   &WatchConf{Name: "w"},
		log:    slog.New(slog.DiscardHandler),
		guard:  &guard{watch: "w", conf: &GuardConf{Allow: true}},
		record: rec,
	}
	res := &orderResult{staged: []host.StagedFile{stageFile(t, out, "a", "1")}, ev: &ev}
	if err := r.commit(context.Background(), res, hookJournal{path: filepath.Join(dir, journalFile)}, kvcore.RevisionCursor(1)); err != nil {
		t.Fatal(err)
	}
	// The settling's fsync runs in the background, beside the checkpoint.
	if rec.syncing == nil {
		t.Fatal("the commit returned without syncing the record's settling")
	}
	rec.waitSync()
	got := ev.get()
	overlapped := [][]string{
		{"record write", "files synced", "record synced", "rename", "record write", "record synced"},
		{"record write", "record synced", "files synced", "rename", "record write", "record synced"},
	}
	if !slices.ContainsFunc(overlapped, func(want []string) bool { return slices.Equal(got, want) }) {
		t.Fatalf("commit steps %v, want the record written, then it and the files synced (in either order), then the renames, then the record settled and synced", got)
	}
}
