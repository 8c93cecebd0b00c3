// Package sdk is the Go guest SDK for slipstream apply plugins (ABI version
// 1, see plugins/ABI.md). A plugin is a main package that registers itself
// from an init function and is built as a WASI reactor:
//
//	package main
//
//	import "github.com/slipstreamkv/slipstream/plugins/sdk"
//
//	func init() { sdk.Register(sdk.RenderFunc(render)) }
//
//	func render(h *sdk.Host, b *sdk.Batch) error {
//		for e, err := range h.Scan("app.") {
//			if err != nil {
//				return err
//			}
//			if _, err := h.WriteFile("conf", e.Key, e.Value, 0); err != nil {
//				return err
//			}
//		}
//		return nil
//	}
//
//	func main() {}
//
// Build it with:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugin.wasm .
//
// The SDK exports the ABI's functions (slipstream_abi_version,
// slipstream_apply, slipstream_render), decodes each call's input into a
// [Batch], turns a returned error or a panic into a failure the host reports,
// and yields to the Go scheduler at the end of every call: a Go guest that
// never yields stops collecting garbage and grows without bound.
//
// A plugin that implements [Configurer] checks its configuration when the
// host loads it, so that slipagent validate reports a bad one; its
// Configure should call [CheckConfigKeys] with the keys it reads, so that a
// misspelt key is refused rather than silently ignored.
//
// A view is read three ways, from the most convenient to the cheapest:
// [Host.Scan] (entries that can be kept), [Host.ScanTransient] (entries
// valid until the next one) and [Host.ScanPages] (a host page of entries at
// a time, looped over without a function call per entry: for a full render
// of a large view, where a Go guest's cost per call dominates).
//
// Outside wasip1 (plain go test), the same API runs against [Fake], an
// in-process host with an in-memory view and file tree, so plugin logic is
// unit-testable without building a module.
//
// Plugins run one call at a time; nothing in this package is safe for
// concurrent use, and none of it needs to be.
package sdk
