package snapshot

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"testing"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// arenaLen is the number of bytes allocated in l's arena.
func arenaLen(l *Log) (n int) {
	for _, c := range l.idx.ar.chunks {
		n += len(c)
	}
	return n
}

// A put that replaces an entry of the same length, loaded (the file's
// image) or applied, is written over it: a fold whose keys change takes no
// more memory, and the file and the fold still say the same.
func TestOverwriteOfSameLengthTakesNoArenaMemory(t *testing.T) {
	p := newPath(t)
	l := openLog(t, p, Options{CompactThreshold: 1 << 40})
	var batch []kvcore.Update
	for k := range 500 {
		batch = append(batch, put(fmt.Sprintf("key-%03d", k), "value-00", 1))
	}
	apply(t, l, cur(1), batch...)
	l.Close()
	l = openLog(t, p, Options{CompactThreshold: 1 << 40}) // the entries are in the file's image now
	before := arenaLen(l)
	for r := range 20 {
		for k := range batch {
			batch[k] = put(fmt.Sprintf("key-%03d", k), fmt.Sprintf("value-%02d", r+1), uint64(r+2))
		}
		apply(t, l, cur(uint64(r+2)), batch...)
	}
	if after := arenaLen(l); after != before {
		t.Fatalf("the arena grew from %d to %d bytes over 20 rounds of same-length overwrites", before, after)
	}
	if e, err := l.Get("key-007"); err != nil || string(e.Value) != "value-20" || e.Version != kvcore.RevisionVersion(21) {
		t.Fatalf("Get = %+v, %v", e, err)
	}
	if n := l.Len(); n != 500 {
		t.Fatalf("Len = %d", n)
	}
	l.Close()
	l = openLog(t, p, Options{})
	if e, err := l.Get("key-499"); err != nil || string(e.Value) != "value-20" {
		t.Fatalf("after reopening: %+v, %v", e, err)
	}
}

// An overwrite is written only once the batch is durable: a batch whose
// fsync fails leaves the entry it would have overwritten as it was.
func TestOverwriteWaitsForTheFsync(t *testing.T) {
	p := newPath(t)
	l := openLog(t, p, Options{})
	apply(t, l, cur(1), put("a", "1", 1))
	inject := errors.New("injected")
	l.fs.sync = func(*os.File) error { return inject }
	if err := l.Apply(context.Background(), []kvcore.Update{put("a", "2", 2)}, cur(2)); !errors.Is(err, inject) {
		t.Fatalf("err = %v", err)
	}
	if e, err := l.Get("a"); err != nil || string(e.Value) != "1" || e.Version != kvcore.RevisionVersion(1) {
		t.Fatalf("after the failed fsync, Get = %+v, %v", e, err)
	}
}

// While a compaction writes its image of the arena (without the lock), no
// entry is written over: the image holds the fold as it was captured.
func TestOverwriteSparesACompactionsSnapshot(t *testing.T) {
	p := newPath(t)
	l := openLog(t, p, Options{})
	apply(t, l, cur(1), put("a", "1", 1), put("b", "1", 1))
	l.Close()
	l = openLog(t, p, Options{}) // a loaded fold, not a growing one
	apply(t, l, cur(2), put("a", "2", 2))
	started, release := blockImage(l)
	compacted := make(chan error, 1)
	go func() { compacted <- l.Compact() }() // captures a=2 b=1
	<-started
	l.mu.RLock()
	job := l.job
	l.mu.RUnlock()
	apply(t, l, cur(3), put("a", "3", 3), put("b", "3", 3))
	var got []string
	for _, r := range job.snap.refs {
		e := payloadEntry(job.snap.ar.payload(r))
		got = append(got, e.Key+"="+string(e.Value))
	}
	close(release)
	if err := <-compacted; err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"a=2", "b=1"}) {
		t.Fatalf("the compaction's snapshot reads %q, want [a=2 b=1]", got)
	}
	if e, err := l.Get("a"); err != nil || string(e.Value) != "3" {
		t.Fatalf("Get = %+v, %v", e, err)
	}
}

// Batches that change a key several times, with deletes and values of the
// same and of other lengths between, fold as a map does, before and after
// merges, compactions and a reopen.
func TestOverwritesWithinABatchFoldLikeAMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 11))
	p := newPath(t)
	l := openLog(t, p, Options{CompactThreshold: 64 << 10})
	want := map[string]string{}
	rev := uint64(0)
	for b := range 300 {
		var batch []kvcore.Update
		for range 1 + rng.IntN(40) {
			rev++
			k := fmt.Sprintf("k%02d", rng.IntN(60))
			if rng.IntN(6) == 0 {
				batch = append(batch, del(k, rev))
				delete(want, k)
				continue
			}
			v := fmt.Sprintf("%0*d", 1+rng.IntN(3), rng.IntN(10)) // lengths 1 to 3
			batch = append(batch, put(k, v, rev))
			want[k] = v
		}
		apply(t, l, cur(rev), batch...)
		if b%50 == 0 {
			mergeBetweenJobs(l)
		}
		if b%25 == 0 {
			checkFold(t, l, want)
		}
	}
	checkFold(t, l, want)
	l.Close()
	checkFold(t, openLog(t, p, Options{}), want)
}

// mergeBetweenJobs merges mem into base as Apply does, never while a
// compaction runs: the job installs the base it captured when it ends, so
// a merge meanwhile would be undone (and the live count with it).
func mergeBetweenJobs(l *Log) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.awaitJobLocked()
	l.idx.merge()
}

// checkFold fails t unless l holds exactly want, by Get, Range and Len.
func checkFold(t *testing.T, l *Log, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if e, err := l.Get(k); err != nil || string(e.Value) != v {
			t.Fatalf("Get(%q) = %+v, %v; want %q", k, e, err, v)
		}
	}
	var got []string
	if err := l.Range(context.Background(), "", "", func(e kvcore.Entry) error {
		got = append(got, e.Key+"="+string(e.Value))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var exp []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		exp = append(exp, k+"="+want[k])
	}
	if !slices.Equal(got, exp) {
		t.Fatalf("Range = %q\nwant    %q", got, exp)
	}
	if n := l.Len(); n != len(want) {
		t.Fatalf("Len = %d, want %d", n, len(want))
	}
}
