package memkv_test

import (
	"context"
	"fmt"
	"log"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/kvcore/memkv"
)

// A memkv Conn stands in for NATS in tests of code built on kvcore.
func Example() {
	ctx := context.Background()
	store, err := memkv.New().Store(ctx, kvcore.StoreConfig{Bucket: "config"})
	if err != nil {
		log.Fatal(err)
	}
	store.Put(ctx, "routes.api", []byte("10.0.0.1"))
	w, err := store.Watch(ctx, kvcore.Prefixes("routes."), kvcore.Cursor{})
	if err != nil {
		log.Fatal(err)
	}
	defer w.Stop()
	store.Delete(ctx, "routes.api")
	for range 3 {
		ev := <-w.Events()
		if ev.Synced {
			fmt.Println("synced")
			continue
		}
		fmt.Println(ev.Op, ev.Key, ev.Version)
	}
	// Output:
	// put routes.api rev 1
	// synced
	// delete routes.api rev 2
}
