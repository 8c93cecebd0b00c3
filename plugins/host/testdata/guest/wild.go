//go:build wasip1

package main

import "fmt"

// Raw imports, to pass pointers the SDK never would.

//go:wasmimport slipstream log
func rawLog(level, ptr, n uint32) int32

//go:wasmimport slipstream input_read
func rawInputRead(ptr, n uint32) int64

//go:wasmimport slipstream config_get
func rawConfigGet(kp, kn, bp, bn uint32) int64

//go:wasmimport slipstream view_get
func rawViewGet(kp, kn, bp, bn uint32) int64

//go:wasmimport slipstream view_scan
func rawViewScan(pp, pn, ap, an, bp, bn uint32) int64

//go:wasmimport slipstream output_list
func rawOutputList(op, on, dp, dn, ap, an, bp, bn uint32) int64

//go:wasmimport slipstream stage_write
func rawStageWrite(op, on, pp, pn, dp, dn, mode uint32) int32

//go:wasmimport slipstream report_error
func rawReportError(p, n uint32) int32

// wild calls host functions with pointers and lengths outside memory; every
// call must answer ErrMemory (-1) rather than crash the host.
func wild() error {
	const far = 0xfffffff0
	results := map[string]int64{
		"log":          int64(rawLog(0, far, 100)),
		"input_read":   rawInputRead(far, 1<<20),
		"config_get":   rawConfigGet(far, 1, 0, 0),
		"view_get":     rawViewGet(0, 0, far, 1<<31),
		"view_scan":    rawViewScan(0, 0, 0, 0, 1, 0xffffffff),
		"output_list":  rawOutputList(far, 4, 0, 0, 0, 0, 0, 64),
		"report_error": int64(rawReportError(1, 0xffffffff)),
		// last: a refused staging request fails the call
		"stage_write": int64(rawStageWrite(0, 0, 0, 0, far, 16, 0)),
	}
	for name, r := range results {
		if r != -1 {
			return fmt.Errorf("%s with a wild pointer returned %d, want -1", name, r)
		}
	}
	return nil
}
