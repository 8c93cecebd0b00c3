package agent

import (
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/plugins/host"
)

// events is the order in which a commit's steps ran.
type events []string

// syncSpy is a record fold that logs its writes and syncs.
type syncSpy struct {
	kvcore.Fold
	ev *events
}

func (s syncSpy) Apply(ctx context.Context, updates []kvcore.Update, c kvcore.Cursor) error {
	*s.ev = append(*s.ev, "record write")
	return s.Fold.Apply(ctx, updates, c)
}

func (s syncSpy) Sync(ctx context.Context) error {
	*s.ev = append(*s.ev, "record sync")
	return s.Fold.(syncer).Sync(ctx)
}

// orderResult is a plugin result that logs its fsync and its commit.
type orderResult struct {
	staged []host.StagedFile
	ev     *events
}

func (r *orderResult) Hooks() []string              { return nil }
func (r *orderResult) Staged() []host.StagedFile    { return r.staged }
func (r *orderResult) Changed() bool                { return true }
func (r *orderResult) Discard()                     { *r.ev = append(*r.ev, "discard") }
func (r *orderResult) Sync(context.Context) error   { *r.ev = append(*r.ev, "files sync"); return nil }
func (r *orderResult) Commit(context.Context) error { *r.ev = append(*r.ev, "rename"); return nil }

// TestCommitRecordDurableBeforeRename: the record of committed outputs is
// written before the staged files are fsynced (the two fsyncs overlap) and
// is durable before the first rename, so a power loss never leaves renamed
// files the record lacks.
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
	if want := (events{"record write", "files sync", "record sync", "rename"}); !slices.Equal(ev, want) {
		t.Fatalf("commit steps %v, want %v", ev, want)
	}
}
