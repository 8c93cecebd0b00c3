// Package abi is version 1 of the slipstream plugin ABI: the names, status
// codes, limits and wire encoding shared by the wazero host
// (plugins/host) and the Go guest SDK (plugins/sdk). plugins/ABI.md is the
// normative description; this package is its executable form.
//
// A plugin is a WebAssembly reactor module (WASI preview1) that exports
// [ExportABIVersion], [ExportApply] and [ExportRender] and imports host
// functions from the module [ImportModule]. Every call's input starts with a
// [Header] followed by [Record]s; paged reads ([FuncViewScan],
// [FuncOutputList]) return a [Page] header followed by records or
// [DirEntry]s. All integers are little-endian and unaligned.
//
// The package depends only on the standard library, so the host and the
// wasip1 SDK can both import it. Its functions are pure and safe for
// concurrent use.
package abi
