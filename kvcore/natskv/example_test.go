package natskv_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/kvcore/natskv"
)

// server starts an embedded NATS server for the examples; real programs
// connect to their own servers.
func server() (url string, stop func()) {
	srv, err := natstest.StartEmbedded()
	if err != nil {
		log.Fatal(err)
	}
	return srv.URL(), srv.Stop
}

// Connect, open a bucket, write and read.
func Example() {
	url, stop := server()
	defer stop()
	ctx := context.Background()

	conn := natskv.New(natskv.Options{Servers: []string{url}, Timeout: 5 * time.Second})
	if err := conn.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	store, err := conn.Store(ctx, kvcore.StoreConfig{Bucket: "config", History: 5})
	if err != nil {
		log.Fatal(err)
	}

	v1, _ := store.Put(ctx, "routes.api", []byte("10.0.0.1"))
	_, err = store.Update(ctx, "routes.api", []byte("10.0.0.2"), v1) // compare-and-swap
	fmt.Println("update:", err)
	_, err = store.Update(ctx, "routes.api", []byte("10.0.0.3"), v1) // v1 is stale now
	fmt.Println("stale update is a mismatch:", err != nil && errors.Is(err, kvcore.ErrRevisionMismatch))

	e, _ := store.Get(ctx, "routes.api")
	fmt.Printf("%s = %s at %v\n", e.Key, e.Value, e.Version)
	_, err = store.Get(ctx, "routes.web")
	fmt.Println("missing key:", errors.Is(err, kvcore.ErrNotFound))
	// Output:
	// update: <nil>
	// stale update is a mismatch: true
	// routes.api = 10.0.0.2 at rev 2
	// missing key: true
}

// open connects to url and opens bucket.
func open(ctx context.Context, url, bucket string) (*natskv.Conn, kvcore.Store) {
	conn := natskv.New(natskv.Options{Servers: []string{url}, Timeout: 5 * time.Second})
	if err := conn.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	store, err := conn.Store(ctx, kvcore.StoreConfig{Bucket: bucket})
	if err != nil {
		log.Fatal(err)
	}
	return conn, store
}

// show shows one watch event.
func show(ev kvcore.Event) {
	switch {
	case ev.Synced:
		fmt.Println("synced")
	case ev.Op == kvcore.OpPut:
		fmt.Printf("put %s = %s (%v)\n", ev.Key, ev.Value, ev.Version)
	default:
		fmt.Printf("%s %s (%v)\n", ev.Op, ev.Key, ev.Version)
	}
}

// showUntilSynced shows the events of w up to Synced.
func showUntilSynced(w kvcore.Watch) {
	for ev := range w.Events() {
		show(ev)
		if ev.Synced {
			return
		}
	}
}

// A state-sync watch delivers the current value of every key in scope,
// then Synced, then live updates, with no gap in between.
func Example_watch() {
	url, stop := server()
	defer stop()
	ctx := context.Background()
	conn, store := open(ctx, url, "routes")
	defer conn.Close()

	store.Put(ctx, "routes.api", []byte("a"))
	store.Put(ctx, "routes.web", []byte("b"))
	store.Put(ctx, "other.x", []byte("not in scope"))

	w, err := store.Watch(ctx, kvcore.Prefixes("routes."), kvcore.Cursor{})
	if err != nil {
		log.Fatal(err)
	}
	defer w.Stop()
	showUntilSynced(w)
	store.Put(ctx, "routes.db", []byte("c"))
	store.Delete(ctx, "routes.api")
	show(<-w.Events())
	show(<-w.Events())
	// Output:
	// put routes.api = a (rev 1)
	// put routes.web = b (rev 2)
	// synced
	// put routes.db = c (rev 4)
	// delete routes.api (rev 5)
}

// A watch from a saved cursor delivers only what changed after it. A cursor
// the bucket no longer covers fails with ErrCursorExpired: re-sync then.
func Example_resume() {
	url, stop := server()
	defer stop()
	ctx := context.Background()
	conn, store := open(ctx, url, "routes")
	defer conn.Close()

	store.Put(ctx, "routes.api", []byte("a"))
	v, _ := store.Put(ctx, "routes.web", []byte("b"))
	saved := kvcore.CursorAt(v) // what a process would persist with its copy
	store.Put(ctx, "routes.api", []byte("a2"))
	store.Purge(ctx, "routes.web")

	w, err := store.Watch(ctx, kvcore.AllKeys(), saved)
	if errors.Is(err, kvcore.ErrCursorExpired) {
		log.Fatal("re-sync: start over with a state-sync watch")
	} else if err != nil {
		log.Fatal(err)
	}
	defer w.Stop()
	showUntilSynced(w)
	// Output:
	// put routes.api = a2 (rev 3)
	// purge routes.web (rev 4)
	// synced
}

// FromConn shares a connection the program already has. The program keeps
// owning it: closing the Conn does not close it.
func ExampleFromConn() {
	url, stop := server()
	defer stop()
	ctx := context.Background()

	nc, err := nats.Connect(url)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	conn, err := natskv.FromConn(nc, natskv.Options{})
	if err != nil {
		log.Fatal(err)
	}
	store, err := conn.Store(ctx, kvcore.StoreConfig{Bucket: "flags"})
	if err != nil {
		log.Fatal(err)
	}
	_, err = store.Create(ctx, "feature.x", []byte("on"))
	fmt.Println("create:", err)
	_, err = store.Create(ctx, "feature.x", []byte("off"))
	fmt.Println("create again:", errors.Is(err, kvcore.ErrAlreadyExists))

	conn.Close()
	fmt.Println("caller's connection open:", !nc.IsClosed())
	// Output:
	// create: <nil>
	// create again: true
	// caller's connection open: true
}
