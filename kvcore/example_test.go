package kvcore_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/kvcore/memkv"
	"github.com/slipstreamkv/slipstream/snapshot"
)

// WatchApplied keeps a durable fold of a bucket and hands each batch to an
// apply function; the fold's cursor moves only after apply returned nil, so a
// restart resumes from the delta. (memkv stands in for NATS here; use
// natskv.New to watch a real bucket.)
func ExampleWatchApplied() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store, err := memkv.New().Store(ctx, kvcore.StoreConfig{Bucket: "routes"})
	if err != nil {
		log.Fatal(err)
	}
	store.Put(ctx, "upstream.api", []byte("10.0.0.1:8080"))
	store.Put(ctx, "upstream.web", []byte("10.0.0.2:80"))

	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	fold, err := snapshot.Open(filepath.Join(dir, "routes.snap"), snapshot.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer fold.Close()

	applied := make(chan struct{})
	apply := func(ctx context.Context, b kvcore.Batch) error {
		if b.Full { // after the initial sync: render everything from the fold
			fold.Range(ctx, "upstream.", "", func(e kvcore.Entry) error {
				fmt.Printf("render %s = %s\n", e.Key, e.Value)
				return nil
			})
		}
		for _, u := range b.Updates {
			fmt.Println(u.Op, u.Key, u.Version)
		}
		applied <- struct{}{}
		return nil
	}
	checkpointed := make(chan kvcore.Cursor, 8)
	cfg := kvcore.AppliedConfig{
		Scope:      kvcore.Prefixes("upstream."),
		Logger:     slog.New(slog.DiscardHandler),
		OnProgress: func(p kvcore.Progress) { checkpointed <- p.Cursor },
	}
	go kvcore.WatchApplied(ctx, store, fold, cfg, apply)
	<-applied
	store.Delete(ctx, "upstream.web")
	<-applied
	for c := range checkpointed {
		if c == kvcore.RevisionCursor(3) {
			fmt.Println("fold checkpointed at", c)
			break
		}
	}
	// Output:
	// render upstream.api = 10.0.0.1:8080
	// render upstream.web = 10.0.0.2:80
	// delete upstream.web rev 3
	// fold checkpointed at rev 3
}
