//go:build wasip1

package sdk

import "github.com/slipstreamkv/slipstream/plugins/abi"

//go:wasmexport slipstream_abi_version
func exportABIVersion() int32 { return abi.Version }

//go:wasmexport slipstream_apply
func exportApply(inputLen uint32) int32 { return run(abi.KindApply, inputLen) }

//go:wasmexport slipstream_render
func exportRender(inputLen uint32) int32 { return run(abi.KindRender, inputLen) }
