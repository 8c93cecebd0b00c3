package host

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestCommitFsyncsEveryChangedDirectory(t *testing.T) {
	s, dir := newTestStage(t, Limits{})
	if err := os.MkdirAll(filepath.Join(dir, "old"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "old/gone"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	synced := recordDirSyncs(s)
	mustStage(t)(s.write("out", "top", []byte("1"), 0))
	mustStage(t)(s.write("out", "new/deeper/f", []byte("2"), 0))
	mustStage(t)(s.remove("out", "old/gone"))
	if err := s.commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	// "." holds top and the new directory "new"; "new" holds "deeper".
	if got, want := synced(), []string{".", "new", "new/deeper", "old"}; !slices.Equal(got, want) {
		t.Fatalf("synced %v, want %v", got, want)
	}
}

// TestCommitFsyncsEachDirectoryOnce: a commit of many files fsyncs each
// directory it changed once, not once per file (issue 7: a render of a
// million files).
func TestCommitFsyncsEachDirectoryOnce(t *testing.T) {
	s, _ := newTestStage(t, Limits{})
	synced := recordDirSyncs(s)
	for i := range 300 {
		mustStage(t)(s.write("out", "d"+itoa(i%3)+"/f"+itoa(i), []byte("x"), 0))
	}
	if err := s.commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := synced(), []string{".", "d0", "d1", "d2"}; !slices.Equal(got, want) {
		t.Fatalf("synced %v, want %v", got, want)
	}
}

// recordDirSyncs makes s record the directories its commit fsyncs
// (concurrently); the function returned lists them, sorted.
func recordDirSyncs(s *stage) func() []string {
	var (
		mu     sync.Mutex
		synced []string
	)
	s.syncDir = func(r *os.Root, d string) error {
		mu.Lock()
		synced = append(synced, d)
		mu.Unlock()
		return syncPath(r, d)
	}
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Sorted(slices.Values(synced))
	}
}

func TestCommitFailureMidwayDiscardsTheRest(t *testing.T) {
	s, dir := newTestStage(t, Limits{})
	for _, p := range []string{"1", "2", "3"} {
		mustStage(t)(s.write("out", p, []byte(p), 0))
	}
	calls := 0
	s.rename = func(r *os.Root, from, to string) error {
		calls++
		if calls == 2 {
			return errors.New("injected: disk on fire")
		}
		return r.Rename(from, to)
	}
	err := s.commit(context.Background())
	if !errors.Is(err, ErrIO) || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("err = %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "1")); string(b) != "1" {
		t.Fatal("the first file was not committed")
	}
	for _, p := range []string{"2", "3"} {
		if _, err := os.Stat(filepath.Join(dir, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists after a failed commit", p)
		}
	}
	noStaged(t, dir)
	if err := s.commit(context.Background()); !errors.Is(err, ErrDone) {
		t.Fatalf("second commit: %v", err)
	}
}

func TestCommitWithCancelledContextDiscards(t *testing.T) {
	s, dir := newTestStage(t, Limits{})
	mustStage(t)(s.write("out", "f", []byte("x"), 0))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.commit(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "f")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("committed despite a cancelled context")
	}
	noStaged(t, dir)
}

// TestFailedCommitRemovesCreatedDirectories: a commit that fails midway
// removes the directories staging created for the files it did not rename,
// so nothing is left where a later call may need to write a file.
func TestFailedCommitRemovesCreatedDirectories(t *testing.T) {
	s, dir := newTestStage(t, Limits{})
	mustStage(t)(s.write("out", "kept/1", []byte("1"), 0))
	mustStage(t)(s.write("out", "new/deeper/2", []byte("2"), 0))
	s.rename = func(r *os.Root, from, to string) error {
		if to == "new/deeper/2" {
			return errors.New("injected: disk on fire")
		}
		return r.Rename(from, to)
	}
	if err := s.commit(context.Background()); !errors.Is(err, ErrIO) {
		t.Fatalf("err = %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "kept/1")); string(b) != "1" {
		t.Fatal("the file renamed before the failure is gone")
	}
	if _, err := os.Lstat(filepath.Join(dir, "new")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the directory created for the file not renamed is still there: %v", err)
	}
	noStaged(t, dir)
}

// recorder logs the file system steps of a commit through the stage's
// seams; commit runs fsyncs concurrently.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(e string) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) watch(s *stage) {
	s.syncFile = func(root *os.Root, name string) error { r.add("sync " + name); return syncPath(root, name) }
	s.rename = func(root *os.Root, from, to string) error { r.add("rename " + to); return root.Rename(from, to) }
}

// TestCommitFsyncsStagedFilesBeforeAnyRename: staging waits for no fsync
// (it cost 0.4 ms a file inside the guest's time limit: 10,000 files took
// most of the default 5 s), it only starts those of the first earlySyncs
// files in the background; the commit fsyncs the other staged files,
// concurrently, and renames only once all are durable, so a renamed file
// is never torn.
func TestCommitFsyncsStagedFilesBeforeAnyRename(t *testing.T) {
	s, dir := newTestStage(t, Limits{})
	var rec recorder
	rec.watch(s)
	const n = 40
	for i := range n {
		mustStage(t)(s.write("out", "d"+itoa(i%3)+"/f"+itoa(i), []byte(itoa(i)), 0))
	}
	rec.mu.Lock()
	for _, e := range rec.events {
		if !strings.HasPrefix(e, "sync ") {
			t.Errorf("staging did %q", e)
		}
	}
	if len(rec.events) > earlySyncs {
		t.Errorf("staging started %d fsyncs, want at most %d", len(rec.events), earlySyncs)
	}
	rec.mu.Unlock()
	temps := map[string]bool{}
	for _, f := range s.staged() {
		rel, _ := filepath.Rel(dir, f.File)
		temps[filepath.ToSlash(rel)] = true
	}
	if err := s.commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(rec.events) != 2*n {
		t.Fatalf("%d steps, want %d syncs then %d renames", len(rec.events), n, n)
	}
	for i, e := range rec.events {
		name, isSync := strings.CutPrefix(e, "sync ")
		if isSync != (i < n) || isSync && !temps[name] {
			t.Fatalf("step %d is %q; steps %v", i, e, rec.events)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "d1/f7")); string(b) != "7" {
		t.Fatalf("d1/f7 = %q", b)
	}
}

// TestCommitFsyncFailureCommitsNothing: a failed fsync, or a context that
// ends while the files are fsynced, abandons the commit before any rename.
func TestCommitFsyncFailureCommitsNothing(t *testing.T) {
	for _, cancelled := range []bool{false, true} {
		t.Run(map[bool]string{false: "fsync fails", true: "context ends"}[cancelled], func(t *testing.T) {
			s, dir := newTestStage(t, Limits{})
			if err := os.WriteFile(filepath.Join(dir, "old"), []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			// The seam is in place before staging, which may start the
			// fsyncs (earlysync.go).
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var once sync.Once
			s.syncFile = func(r *os.Root, name string) error {
				if cancelled {
					once.Do(cancel)
					return syncPath(r, name)
				}
				return errors.New("injected: fsync failed")
			}
			for _, p := range []string{"a", "new/b", "old"} {
				mustStage(t)(s.write("out", p, []byte("new"), 0))
			}
			s.rename = func(*os.Root, string, string) error {
				t.Error("renamed after a failed fsync")
				return nil
			}
			err := s.commit(ctx)
			if want := map[bool]error{false: ErrIO, true: context.Canceled}[cancelled]; !errors.Is(err, want) {
				t.Fatalf("err = %v, want %v", err, want)
			}
			ents, _ := os.ReadDir(dir)
			if len(ents) != 1 || ents[0].Name() != "old" {
				t.Fatalf("the output holds %v", ents)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, "old")); string(b) != "old" {
				t.Fatalf("old = %q", b)
			}
			if err := s.commit(ctx); !errors.Is(err, ErrDone) {
				t.Fatalf("second commit: %v", err)
			}
		})
	}
}

// TestFailedDirectoryFsyncIsOwedByLaterCommits: a commit whose directory
// fsync failed after its renames fails, and so does every later commit
// sharing its owed directories (an instance's retries) until that fsync
// succeeds, although the retry finds its file in place and stages nothing.
func TestFailedDirectoryFsyncIsOwedByLaterCommits(t *testing.T) {
	first, dir := newTestStage(t, Limits{})
	first.syncDir = func(*os.Root, string) error { return errors.New("injected: EIO") }
	mustStage(t)(first.write("out", "sub/f", []byte("x"), 0))
	if err := first.commit(context.Background()); !errors.Is(err, ErrIO) || !strings.Contains(err.Error(), "fsync directory") {
		t.Fatalf("commit with a failing directory fsync: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "sub/f")); string(b) != "x" {
		t.Fatal("the file was not renamed into place")
	}
	retry := func(syncDir func(*os.Root, string) error) ([]string, error) {
		s := newStage(first.outputs, first.limits, false)
		t.Cleanup(s.discard)
		s.owed = first.owed
		var mu sync.Mutex
		var synced []string
		s.syncDir = func(r *os.Root, d string) error {
			mu.Lock()
			synced = append(synced, d)
			mu.Unlock()
			return syncDir(r, d)
		}
		err := s.commit(context.Background())
		return slices.Sorted(slices.Values(synced)), err
	}
	if synced, err := retry(func(*os.Root, string) error { return errors.New("injected: EIO again") }); !errors.Is(err, ErrIO) || !slices.Equal(synced, []string{".", "sub"}) {
		t.Fatalf("a retry that stages nothing while the fsync still fails: err %v, synced %v; want ErrIO after trying . and sub", err, synced)
	}
	if synced, err := retry(syncPath); err != nil || !slices.Equal(synced, []string{".", "sub"}) {
		t.Fatalf("a retry once the fsync works: err %v, synced %v; want nil after . and sub", err, synced)
	}
	if synced, err := retry(syncPath); err != nil || len(synced) != 0 {
		t.Fatalf("the commit after: err %v, synced %v; want nothing owed", err, synced)
	}
}

// TestOwedDirectoryOutlivesTheInstance: the directories a commit could not
// fsync are the engine's to owe. A later call of the instance, and a new
// instance over the same output (a new watch session), fsync them again,
// although the rewrite of the same file stages nothing.
func TestOwedDirectoryOutlivesTheInstance(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, PluginConfig{})
	failing := func(*os.Root, string) error { return errors.New("injected: EIO") }
	res, err := f.apply("write=out:sub/f:x")
	if err != nil {
		t.Fatal(err)
	}
	res.stage.syncDir = failing
	if err := res.Commit(ctx); !errors.Is(err, ErrIO) {
		t.Fatalf("commit with a failing directory fsync: %v", err)
	}
	if res, err = f.apply("write=out:sub/f:x"); err != nil || res.Changed() {
		t.Fatalf("the rewrite of the same file: changed %v, err %v; want nothing staged", res.Changed(), err)
	}
	res.stage.syncDir = failing
	if err := res.Commit(ctx); !errors.Is(err, ErrIO) {
		t.Fatalf("the instance's next commit while the fsync still fails: %v, want ErrIO", err)
	}
	inst, err := f.p.NewInstance(ctx, f.inst.cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(ctx)
	res, err = inst.Apply(ctx, f.batch("write=out:sub/f:x"), f.view)
	if err != nil {
		t.Fatal(err)
	}
	synced := recordDirSyncs(res.stage)
	if err := res.Commit(ctx); err != nil || !slices.Equal(synced(), []string{".", "sub"}) {
		t.Fatalf("a new instance's commit: err %v, synced %v; want nil after . and sub", err, synced())
	}
}
