//go:build !wasip1

package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/slipstreamkv/slipstream/internal/plugintest"
	"github.com/slipstreamkv/slipstream/internal/plugintest/harness"
	"github.com/slipstreamkv/slipstream/plugins/host"
)

// benchTemplate is the template of ../shared/bench/peers and make bench-e2e.
const benchTemplate = "{{ range .Entries }}{{ .Key }}={{ .Value }}\n{{ end }}"

// BenchmarkTemplate runs the bench-e2e template over a 10,000-key view of
// 100-byte values through the host: a full render, and a batch of one put.
func BenchmarkTemplate(b *testing.B) {
	h := harness.New(b, plugintest.Module(b, "plugins/examples/template"), harness.Options{
		Outputs: []string{"out"},
		Plugin: host.PluginConfig{Name: "template", MemoryLimit: 256 << 20, Config: map[string]string{
			"template": benchTemplate, "output": "out", "path": "render", "hook": "",
		}},
	})
	value := strings.Repeat("v", 100)
	for i := range 10_000 {
		h.View.Put(host.Entry{Key: fmt.Sprintf("app/key%06d", i), Value: []byte(value), Revision: uint64(i + 1)})
	}
	b.Run("render", func(b *testing.B) {
		for range b.N {
			res, err := h.Render()
			if err != nil {
				b.Fatal(err)
			}
			res.Discard()
		}
	})
	b.Run("put", func(b *testing.B) {
		for i := range b.N {
			res, err := h.Apply(h.Put(fmt.Sprintf("app/key%06d", i%10_000), fmt.Sprintf("%0100d", i)))
			if err != nil {
				b.Fatal(err)
			}
			res.Discard()
		}
	})
}
