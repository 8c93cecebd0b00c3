package pebblefold

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipstreamkv/slipstream/internal/bitrot"
	"github.com/slipstreamkv/slipstream/internal/logtest"
	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/snapshot"
)

// settledFold returns the directory of a closed fold of n keys, all in
// tables, and the largest of those tables.
func settledFold(t *testing.T, n int) (dir, table string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "fold")
	f, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	batch := make([]kvcore.Update, 0, n)
	for i := range n {
		batch = append(batch, putU(fmt.Sprintf("key%06d", i), strings.Repeat("v", 100), uint64(i+1)))
	}
	if err := f.Apply(context.Background(), batch, kvcore.RevisionCursor(uint64(n))); err != nil {
		t.Fatal(err)
	}
	if err := f.Settle(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	tables, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	var size int64
	for _, p := range tables {
		if fi, err := os.Stat(p); err == nil && fi.Size() > size {
			table, size = p, fi.Size()
		}
	}
	if table == "" {
		t.Fatal("the fold has no table")
	}
	return dir, table
}

// A table damaged behind the fold (bits flipped on the disk) fails the
// read that finds it, and every use after it, with an error wrapping
// snapshot.ErrCorrupted, logged at error level, instead of Pebble's
// default, which ends the process (at every start, since its compactions
// read the table again); and the fold is refused at its next open until
// its directory is moved aside.
func TestADamagedTableFailsTheFoldInsteadOfTheProcess(t *testing.T) {
	dir, table := settledFold(t, 20_000)
	bitrot.Flip(t, table)
	var log logtest.Buffer
	f, err := Open(dir, Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if err == nil {
		err = f.Range(context.Background(), "", "", func(kvcore.Entry) error { return nil })
		if err == nil {
			t.Fatal("a scan over a damaged table succeeded")
		}
		if _, err := f.Get("key000001"); !errors.Is(err, snapshot.ErrCorrupted) {
			t.Errorf("a get after the damage was found: %v, want snapshot.ErrCorrupted", err)
		}
		if err := f.Damaged(); !errors.Is(err, snapshot.ErrCorrupted) || !strings.Contains(err.Error(), table) {
			t.Errorf("Damaged = %v, want snapshot.ErrCorrupted naming %s", err, table)
		}
		f.Close()
	}
	if !strings.Contains(log.String(), "level=ERROR") || !strings.Contains(log.String(), "damaged") {
		t.Errorf("the damage was not logged at error level:\n%s", log.String())
	}
	if _, err := Open(dir, Options{}); !errors.Is(err, snapshot.ErrCorrupted) {
		t.Fatalf("reopening a damaged fold: %v, want snapshot.ErrCorrupted", err)
	}
}

// A table shorter than Pebble's manifest records (truncated behind the
// fold) is refused at open with an error wrapping snapshot.ErrCorrupted,
// which the agent takes for damage to move aside; Pebble does not mark it.
func TestATruncatedTableIsRefusedAsCorrupted(t *testing.T) {
	dir, table := settledFold(t, 20_000)
	if err := os.Truncate(table, 5000); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{}); !errors.Is(err, snapshot.ErrCorrupted) {
		t.Fatalf("Open over a truncated table: %v, want snapshot.ErrCorrupted", err)
	}
}
