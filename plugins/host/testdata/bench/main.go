//go:build wasip1

// Command bench is the benchmark plugin: it decodes each batch through the
// SDK and touches every update, like the native baseline in bench_test.go.
// Updates whose key starts with "hash" are also hashed (loop-heavy work, to
// measure what interruptibility costs).
package main

import (
	"crypto/sha256"
	"strings"

	"github.com/slipstreamkv/slipstream/plugins/sdk"
)

func init() { sdk.Register(sdk.RenderFunc(apply)) }

func main() {}

var sink int

func apply(_ *sdk.Host, b *sdk.Batch) error {
	for _, u := range b.Updates {
		sink += len(u.Key) + len(u.Value)
		if strings.HasPrefix(u.Key, "hash") {
			s := sha256.Sum256(u.Value)
			sink += int(s[0])
		}
	}
	return nil
}
