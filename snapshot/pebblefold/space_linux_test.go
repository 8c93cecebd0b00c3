package pebblefold

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/slipstreamkv/slipstream/internal/rootonly"
	"github.com/slipstreamkv/slipstream/kvcore"
)

// A disk that fills up under a fold fails its Applies with ENOSPC, naming
// the fold, instead of letting Pebble find its log unwritable (a fatal
// commit error: a panic that takes the process down, and a restart that
// retries the log's flush for ever); once space is freed, the fold goes on
// with every Apply that succeeded. Open refuses as loudly.
func TestFullDiskFailsApplyThenRecovers(t *testing.T) {
	mnt := t.TempDir()
	rootonly.Tmpfs(t, mnt, 160<<20)
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, 100<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(mnt, "fold")
	_, err := Open(dir, Options{})
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("Open with 60 MiB free: %v, want ENOSPC naming %s", err, dir)
	}
	if err := os.Truncate(filler, 80<<20); err != nil {
		t.Fatal(err)
	}
	f, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { f.Close() }()

	value := strings.Repeat("v", 64<<10)
	var rev uint64
	for {
		var batch []kvcore.Update
		for range 16 {
			rev++
			batch = append(batch, putU(fmt.Sprintf("k%06d", rev), value, rev))
		}
		err = f.Apply(context.Background(), batch, kvcore.RevisionCursor(rev))
		if err != nil {
			rev -= 16
			break
		}
		if rev > 1<<20 {
			t.Fatal("the file system never filled")
		}
	}
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("Apply on a full disk: %v, want ENOSPC naming %s", err, dir)
	}
	if f.Cursor() != kvcore.RevisionCursor(rev) {
		t.Fatalf("cursor %v after the failed Apply, want %d", f.Cursor(), rev)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	rev++
	apply(t, f, rev, putU(fmt.Sprintf("k%06d", rev), "after", rev))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if f, err = Open(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	if f.Cursor() != kvcore.RevisionCursor(rev) {
		t.Fatalf("reopened at %v, want %d", f.Cursor(), rev)
	}
	n := 0
	err = f.Reader().Range(context.Background(), "", "", func(e kvcore.Entry) error {
		if n++; e.Key != fmt.Sprintf("k%06d", n) {
			return fmt.Errorf("entry %d is %q", n, e.Key)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != int(rev) {
		t.Fatalf("reopened fold holds %d keys, want %d", n, rev)
	}
}
