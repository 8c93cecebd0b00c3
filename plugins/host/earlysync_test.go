package host

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"testing"
)

// A staged file's fsync starts when it is staged, before the commit: the
// commit of a one-file batch then waits for an fsync already under way.
func TestStagedFileFsyncStartsWhenStaged(t *testing.T) {
	s, _ := newTestStage(t, Limits{})
	started := make(chan string, 1)
	s.syncFile = func(r *os.Root, name string) error { started <- name; return syncPath(r, name) }
	mustStage(t)(s.write("out", "a", []byte("new"), 0))
	if len(s.early) != 1 {
		t.Fatal("staging the file did not start its fsync")
	}
	if name := <-started; name != s.ops[0].tmp() {
		t.Errorf("fsynced %s, want the staged %s", name, s.ops[0].tmp())
	}
	if err := s.commit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A failed fsync is the commit's error, even if a second fsync would
// succeed: after a failure the kernel may have dropped the pages it could
// not write, so the file is never fsynced again and renamed.
func TestFailedEarlyFsyncIsNotRetried(t *testing.T) {
	s, dir := newTestStage(t, Limits{})
	failFirstFileSync(s)
	mustStage(t)(s.write("out", "a", []byte("new"), 0))
	if err := s.commit(context.Background()); !errors.Is(err, ErrIO) {
		t.Fatalf("commit after a failed fsync: %v, want ErrIO", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("the output holds %v", ents)
	}
}

// A file staged again in the same call drops the first one: the first
// one's fsync, failed or not, is no concern of the commit.
func TestSupersededFileFsyncFailureIsIgnored(t *testing.T) {
	s, dir := newTestStage(t, Limits{})
	calls := failFirstFileSync(s)
	mustStage(t)(s.write("out", "a", []byte("first"), 0))
	mustStage(t)(s.write("out", "a", []byte("second"), 0))
	if err := s.commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(dir + "/a"); err != nil || string(b) != "second" {
		t.Fatalf("a = %q, %v", b, err)
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d fsyncs, want 2 (the dropped file's and the second's)", n)
	}
}

// failFirstFileSync makes the first file fsync of s fail and the others
// run; the counter it returns counts them all.
func failFirstFileSync(s *stage) *atomic.Int32 {
	var calls atomic.Int32
	s.syncFile = func(r *os.Root, name string) error {
		if calls.Add(1) == 1 {
			return errors.New("injected: fsync failed")
		}
		return syncPath(r, name)
	}
	return &calls
}
