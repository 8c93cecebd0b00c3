package pebblefold

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Opening a fold with compactions due runs none of them before Open
// returns (Pebble's Open would wait for them), and runs them after.
func TestOpenDoesNotWaitForCompactions(t *testing.T) {
	mem := vfs.NewMem()
	// Overlapping tables in L0, more than Pebble lets stay there, and a
	// log to replay (whose flush at Open is what started a compaction).
	po := pebbleOptions(Options{FS: mem, Logger: slog.New(slog.DiscardHandler)}, nil, false)
	po.DisableAutomaticCompactions = true
	db, err := pebble.Open("fold", po)
	if err != nil {
		t.Fatal(err)
	}
	for round := range 8 {
		for i := range 200 {
			if err := db.Set(dataKey(nil, fmt.Sprintf("k%04d", i)), []byte(strings.Repeat("v", round+1)), pebble.NoSync); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Set(cursorKey, []byte{1}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	opts := Options{FS: mem, CacheSize: 1 << 20, Logger: slog.New(slog.DiscardHandler)}
	db, _, gate, err := openDB("fold", opts, nil, &corruption{fs: mem, dir: "fold", log: opts.Logger}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	m := db.Metrics()
	if m.Compact.Count != 0 || m.Compact.NumInProgress != 0 {
		t.Fatalf("Open ran %d compactions (%d running when it returned)", m.Compact.Count, m.Compact.NumInProgress)
	}
	if waiting, _ := db.GetWaitingCompaction(); !waiting {
		t.Fatalf("no compaction is due: the fixture does not test anything (L0: %d tables)", m.Levels[0].TablesCount)
	}
	gate.opened()
	deadline := time.Now().Add(30 * time.Second)
	for db.Metrics().Compact.Count == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no compaction ran in 30 s once the fold was open")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// failOptionsFS fails the creation of Pebble's OPTIONS file, which Open
// writes after it has registered its compaction scheduler.
type failOptionsFS struct{ vfs.FS }

func (fs failOptionsFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	if strings.HasSuffix(name, ".dbtmp") {
		return nil, errors.New("injected: cannot create " + name)
	}
	return fs.FS.Create(name, c)
}

// An Open that fails after Pebble registered the fold's compaction gate
// stops the gate's granter (Pebble does not unregister it then).
func TestFailedOpenStopsTheCompactionGranter(t *testing.T) {
	if _, err := Open("fold", Options{FS: failOptionsFS{vfs.NewMem()}}); err == nil {
		t.Fatal("Open succeeded without its OPTIONS file")
	}
	buf := make([]byte, 1<<20)
	if stacks := string(buf[:runtime.Stack(buf, true)]); strings.Contains(stacks, "compactionGate).granter") {
		t.Fatalf("a granter outlived the failed Open:\n%s", stacks)
	}
}
