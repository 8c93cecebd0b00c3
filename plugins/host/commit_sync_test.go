package host

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSyncThenCommitFsyncsEachFileOnce: Result.Sync runs the commit's
// first step ahead of it; the commit then renames without fsyncing the
// staged files again.
func TestSyncThenCommitFsyncsEachFileOnce(t *testing.T) {
	s, dir := newTestStage(t, Limits{})
	var rec recorder
	rec.watch(s)
	const n = 5
	for i := range n {
		mustStage(t)(s.write("out", "f"+itoa(i), []byte(itoa(i)), 0))
	}
	if err := s.sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(rec.events) != n {
		t.Fatalf("sync did %v, want %d fsyncs", rec.events, n)
	}
	if err := s.commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(rec.events) != 2*n {
		t.Fatalf("steps %v, want %d fsyncs then %d renames", rec.events, n, n)
	}
	for i, e := range rec.events {
		if strings.HasPrefix(e, "sync ") != (i < n) {
			t.Fatalf("step %d is %q; steps %v", i, e, rec.events)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "f3")); string(b) != "3" {
		t.Fatalf("f3 = %q", b)
	}
}

// TestSyncFailureDiscards: a failed Sync discards the staged files, as a
// failed commit fsync does, and the commit after it commits nothing.
func TestSyncFailureDiscards(t *testing.T) {
	s, dir := newTestStage(t, Limits{})
	s.syncFile = func(*os.Root, string) error { return errors.New("injected: fsync failed") }
	mustStage(t)(s.write("out", "a", []byte("new"), 0)) // may start the fsync
	if err := s.sync(context.Background()); !errors.Is(err, ErrIO) {
		t.Fatalf("err = %v, want ErrIO", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("the output holds %v", ents)
	}
	if err := s.commit(context.Background()); !errors.Is(err, ErrDone) {
		t.Fatalf("commit after a failed sync: %v, want ErrDone", err)
	}
}
