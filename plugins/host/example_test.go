package host

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
)

// A plugin stages a file; the caller inspects it, then commits it.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "slipstream-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	eng, err := New(ctx, Config{}) // set CacheDir in production
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close(ctx)
	p, err := eng.Load(ctx, helloPlugin(), PluginConfig{Name: "hello"})
	if err != nil {
		log.Fatal(err)
	}
	inst, err := p.NewInstance(ctx, InstanceConfig{Watch: "demo", Outputs: map[string]Output{"out": {Dir: dir}}})
	if err != nil {
		log.Fatal(err)
	}
	view := NewMemView(Entry{Key: "greeting", Value: []byte("hi")})
	res, err := inst.Apply(ctx, Batch{Updates: []Update{{Op: OpPut, Key: "greeting", Value: []byte("hi")}}}, view)
	if err != nil {
		log.Fatal(err) // nothing stays staged after a failed call
	}
	for _, f := range res.Staged() {
		fmt.Println("staged", f.Output, f.Path) // a check command could read f.File here
	}
	if err := res.Commit(ctx); err != nil {
		log.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "hello.txt"))
	fmt.Printf("%q %v\n", b, err)
	// Output:
	// staged out hello.txt
	// "hi\n" <nil>
}
