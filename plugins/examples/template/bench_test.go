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

// benchHarness returns a harness running the bench-e2e template over a view
// of keys 100-byte values.
func benchHarness(b testing.TB, keys int) *harness.Harness {
	h := harness.New(b, plugintest.Module(b, "plugins/examples/template"), harness.Options{
		Outputs: []string{"out"},
		Plugin: host.PluginConfig{Name: "template", MemoryLimit: 256 << 20, Config: map[string]string{
			"template": benchTemplate, "output": "out", "path": "render", "hook": "",
		}},
	})
	value := strings.Repeat("v", 100)
	for i := range keys {
		h.View.Put(host.Entry{Key: fmt.Sprintf("app/key%06d", i), Value: []byte(value), Revision: uint64(i + 1)})
	}
	return h
}

// benchmarkRender times full renders of h's view, not the view's setup.
func benchmarkRender(b *testing.B, h *harness.Harness) {
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		res, err := h.Render()
		if err != nil {
			b.Fatal(err)
		}
		res.Discard()
	}
}

// BenchmarkTemplate runs the bench-e2e template over a 10,000-key view of
// 100-byte values through the host: a full render, and batches of one put.
func BenchmarkTemplate(b *testing.B) {
	h := benchHarness(b, 10_000)
	b.Run("render", func(b *testing.B) { benchmarkRender(b, h) })
	b.Run("put", func(b *testing.B) { benchmarkPut(b, h, 10_000) })
}

// benchmarkPut times the plugin calls of batches of one put over h's view
// of keys keys, not their commits (the fsyncs): the first prints the whole
// listing, the next ones patch it.
func benchmarkPut(b *testing.B, h *harness.Harness, keys int) {
	for i := range b.N {
		res, err := h.Apply(h.Put(fmt.Sprintf("app/key%06d", i*7%keys), fmt.Sprintf("%0100d", i)))
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		res.Discard()
		b.StartTimer()
	}
}

// BenchmarkTemplateRender100k is the full render of issue 8's goal: the
// bench-e2e template over 100,000 keys of 100-byte values. "first" is the
// first call of a fresh instance, as an agent's first render is (its render
// buffer grows); "again" a render by an instance that rendered before.
func BenchmarkTemplateRender100k(b *testing.B) {
	h := benchHarness(b, 100_000)
	b.Run("first", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			b.StopTimer()
			inst, err := h.Plugin.NewInstance(b.Context(), host.InstanceConfig{Watch: "test", Outputs: map[string]host.Output{"out": {Dir: h.Outputs["out"]}}})
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			res, err := inst.Render(b.Context(), host.Cursor{}, h.View)
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			res.Discard()
			inst.Close(b.Context())
			b.StartTimer()
		}
	})
	b.Run("again", func(b *testing.B) { benchmarkRender(b, h) })
	b.Run("put", func(b *testing.B) { benchmarkPut(b, h, 100_000) })
}
