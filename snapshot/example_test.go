package snapshot_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/snapshot"
)

func put(key, value string, rev uint64) kvcore.Update {
	return kvcore.Update{Op: kvcore.OpPut, Key: key, Value: []byte(value), Version: kvcore.RevisionVersion(rev)}
}

// Open a fold, apply batches with their cursors, and resume after a restart.
func Example() {
	dir, _ := os.MkdirTemp("", "fold")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "routes.snap")
	ctx := context.Background()

	fold, err := snapshot.Open(path, snapshot.Options{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("new fold resumes from:", fold.Cursor())
	batch := []kvcore.Update{put("upstream.a", "10.0.0.1", 1), put("upstream.b", "10.0.0.2", 2)}
	if err := fold.Apply(ctx, batch, kvcore.RevisionCursor(2)); err != nil {
		log.Fatal(err)
	}
	del := kvcore.Update{Op: kvcore.OpDelete, Key: "upstream.a", Version: kvcore.RevisionVersion(3)}
	if err := fold.Apply(ctx, []kvcore.Update{del}, kvcore.RevisionCursor(3)); err != nil {
		log.Fatal(err)
	}
	fold.Close()

	// After a restart, the fold is back with the cursor to resume from.
	fold, err = snapshot.Open(path, snapshot.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer fold.Close()
	fmt.Println("resume from:", fold.Cursor())
	fold.Range(ctx, "upstream.", "", func(e kvcore.Entry) error {
		fmt.Printf("%s = %s (%v)\n", e.Key, e.Value, e.Version)
		return nil
	})
	// Output:
	// new fold resumes from: none
	// resume from: rev 3
	// upstream.b = 10.0.0.2 (rev 2)
}

// Load reads a snapshot file the way the Rust crate does, compacting it.
func ExampleLoad() {
	dir, _ := os.MkdirTemp("", "fold")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "fold.snap")

	w, err := snapshot.OpenWriter(path, snapshot.Options{})
	if err != nil {
		log.Fatal(err)
	}
	w.WriteUpdate(put("a", "1", 1))
	w.WriteUpdate(put("a", "2", 2))
	w.Checkpoint(kvcore.RevisionCursor(2))
	w.Close()

	s, err := snapshot.Load(path)
	if err != nil {
		log.Fatal(err)
	}
	fi, _ := os.Stat(path)
	fmt.Println(s.Cursor, len(s.Entries), string(s.Entries[0].Value), fi.Size(), "bytes")
	// Output: rev 2 1 2 42 bytes
}

// Inspect tells what a file holds and what loading would do, without
// modifying it.
func ExampleInspect() {
	dir, _ := os.MkdirTemp("", "fold")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "fold.snap")
	// V2 of the upstream vectors, then half of a torn record.
	img := []byte("PGSS\x02\x00\x48\x4f\x85\x77\x01\x01\x00a\x01\x00\x00\x00b\x08\x00\x00\x00\x00\x00\x00\x00\x05" +
		"\xe2\x85\x0f\xc3\x03\x08\x00\x00\x00\x00\x00\x00\x00\x05" + "\x12\x34\x56")
	os.WriteFile(path, img, 0o644)

	rep, err := snapshot.Inspect(path)
	if err != nil {
		log.Fatal(err)
	}
	off, _ := rep.BadOffset()
	fmt.Printf("%d keys at %v; torn tail at %d; load would %v\n", rep.Keys, rep.Cursor, off, rep.Action)
	// Output: 1 keys at rev 5; torn tail at 42; load would compact
}
