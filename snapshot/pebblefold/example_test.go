package pebblefold_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/snapshot/pebblefold"
)

// Open an on-disk fold, apply a batch, and resume after a restart.
func Example() {
	dir, _ := os.MkdirTemp("", "fold")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "routes.fold")
	ctx := context.Background()

	fold, err := pebblefold.Open(path, pebblefold.Options{})
	if err != nil {
		log.Fatal(err)
	}
	batch := []kvcore.Update{
		{Op: kvcore.OpPut, Key: "route.a", Value: []byte("1"), Version: kvcore.RevisionVersion(1)},
		{Op: kvcore.OpPut, Key: "route.b", Value: []byte("2"), Version: kvcore.RevisionVersion(2)},
	}
	if err := fold.Apply(ctx, batch, kvcore.RevisionCursor(2)); err != nil {
		log.Fatal(err)
	}
	fold.Close()

	fold, err = pebblefold.Open(path, pebblefold.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer fold.Close()
	r := fold.Reader() // hand this to other goroutines
	e, _ := r.Get("route.b")
	fmt.Println("resume from:", fold.Cursor(), "route.b =", string(e.Value))
	// Output: resume from: rev 2 route.b = 2
}
