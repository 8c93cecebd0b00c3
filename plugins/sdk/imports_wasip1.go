//go:build wasip1

package sdk

import (
	"unsafe"

	"github.com/slipstreamkv/slipstream/plugins/abi"
)

// The host functions, as plugins/ABI.md declares them. Pointers are passed
// as unsafe.Pointer so the referenced memory stays alive during the call.

//go:wasmimport slipstream log
func wasmLog(level int32, msg unsafe.Pointer, msgLen uint32) int32

//go:wasmimport slipstream input_read
func wasmInputRead(buf unsafe.Pointer, bufCap uint32) int64

//go:wasmimport slipstream config_get
func wasmConfigGet(key unsafe.Pointer, keyLen uint32, buf unsafe.Pointer, bufCap uint32) int64

//go:wasmimport slipstream config_keys
func wasmConfigKeys(buf unsafe.Pointer, bufCap uint32) int64

//go:wasmimport slipstream view_get
func wasmViewGet(key unsafe.Pointer, keyLen uint32, buf unsafe.Pointer, bufCap uint32) int64

//go:wasmimport slipstream view_scan
func wasmViewScan(prefix unsafe.Pointer, prefixLen uint32, after unsafe.Pointer, afterLen uint32, buf unsafe.Pointer, bufCap uint32) int64

//go:wasmimport slipstream output_list
func wasmOutputList(output unsafe.Pointer, outputLen uint32, dir unsafe.Pointer, dirLen uint32, after unsafe.Pointer, afterLen uint32, buf unsafe.Pointer, bufCap uint32) int64

//go:wasmimport slipstream stage_write
func wasmStageWrite(output unsafe.Pointer, outputLen uint32, path unsafe.Pointer, pathLen uint32, data unsafe.Pointer, dataLen uint32, mode uint32) int32

//go:wasmimport slipstream stage_remove
func wasmStageRemove(output unsafe.Pointer, outputLen uint32, path unsafe.Pointer, pathLen uint32) int32

//go:wasmimport slipstream hook_request
func wasmHookRequest(name unsafe.Pointer, nameLen uint32) int32

//go:wasmimport slipstream report_error
func wasmReportError(msg unsafe.Pointer, msgLen uint32) int32

func str(s string) (unsafe.Pointer, uint32) {
	return unsafe.Pointer(unsafe.StringData(s)), uint32(len(s))
}

func buf(b []byte) (unsafe.Pointer, uint32) {
	return unsafe.Pointer(unsafe.SliceData(b)), uint32(len(b))
}

func hostLog(level int32, msg string) abi.Status {
	p, n := str(msg)
	return abi.Status(wasmLog(level, p, n))
}

func hostInputRead(b []byte) int64 {
	p, n := buf(b)
	return wasmInputRead(p, n)
}

func hostConfigGet(key string, b []byte) int64 {
	kp, kn := str(key)
	p, n := buf(b)
	return wasmConfigGet(kp, kn, p, n)
}

func hostConfigKeys(b []byte) int64 {
	p, n := buf(b)
	return wasmConfigKeys(p, n)
}

func hostViewGet(key string, b []byte) int64 {
	kp, kn := str(key)
	p, n := buf(b)
	return wasmViewGet(kp, kn, p, n)
}

func hostViewScan(prefix, after string, b []byte) int64 {
	pp, pn := str(prefix)
	ap, an := str(after)
	p, n := buf(b)
	return wasmViewScan(pp, pn, ap, an, p, n)
}

func hostOutputList(output, dir, after string, b []byte) int64 {
	op, on := str(output)
	dp, dn := str(dir)
	ap, an := str(after)
	p, n := buf(b)
	return wasmOutputList(op, on, dp, dn, ap, an, p, n)
}

func hostStageWrite(output, path string, data []byte, mode uint32) abi.Status {
	op, on := str(output)
	pp, pn := str(path)
	dp, dn := buf(data)
	return abi.Status(wasmStageWrite(op, on, pp, pn, dp, dn, mode))
}

func hostStageRemove(output, path string) abi.Status {
	op, on := str(output)
	pp, pn := str(path)
	return abi.Status(wasmStageRemove(op, on, pp, pn))
}

func hostHookRequest(name string) abi.Status {
	p, n := str(name)
	return abi.Status(wasmHookRequest(p, n))
}

func hostReportError(msg string) abi.Status {
	p, n := str(msg)
	return abi.Status(wasmReportError(p, n))
}
