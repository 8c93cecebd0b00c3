package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/slipstreamkv/slipstream/plugins/abi"
	"github.com/slipstreamkv/slipstream/plugins/host"
)

const pluginInspectUsage = `usage: slipagent plugin inspect [-json] MODULE.wasm

Describes a plugin module: its size, its sha256 as the line to paste into
the plugin block of the configuration, the ABI version it declares (read by
instantiating it once, with no outputs and an empty config), its memory,
exports and imports. Exits 1 when the agent would refuse to load it, saying
why.`

// wasmMagic starts every WebAssembly binary module.
var wasmMagic = []byte("\x00asm")

// readModule reads a module file, refusing one that is not WebAssembly with
// a message naming the path.
func readModule(path string) ([]byte, error) {
	wasm, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(wasm, wasmMagic) {
		return nil, fmt.Errorf("%s is not a WebAssembly module (no \\0asm header)", path)
	}
	return wasm, nil
}

// inspectJSON is the -json form of plugin inspect.
type inspectJSON struct {
	Path            string              `json:"path"`
	Size            int                 `json:"size"`
	SHA256          string              `json:"sha256"`
	ABIVersion      int32               `json:"abi_version"` // 0: could not be read
	HostABIVersions []int               `json:"host_abi_versions"`
	Memory          *memoryJSON         `json:"memory"` // null: no exported memory
	Exports         []host.FunctionInfo `json:"exports"`
	Imports         []host.FunctionInfo `json:"imports"`
	Problem         string              `json:"problem,omitempty"`
}

type memoryJSON struct {
	MinPages uint32  `json:"min_pages"`
	MaxPages *uint32 `json:"max_pages"` // null: no maximum
	MinBytes uint64  `json:"min_bytes"`
	MaxBytes *uint64 `json:"max_bytes"`
}

func pluginInspect(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("slipagent plugin inspect", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return parseFailed(fs, pluginInspectUsage, err, stdout, stderr)
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "slipagent plugin inspect: want exactly one MODULE.wasm")
		printUsage(stderr, fs, pluginInspectUsage)
		return exitUsage
	}
	path := pos[0]
	wasm, err := readModule(path)
	if err != nil {
		fmt.Fprintf(stderr, "slipagent plugin inspect: %v\n", err)
		return exitFailure
	}
	in, err := host.Inspect(ctx, wasm)
	if err != nil {
		fmt.Fprintf(stderr, "slipagent plugin inspect: %s: %v\n", path, err)
		return exitFailure
	}
	out := inspectJSON{Path: path, Size: in.Size, SHA256: in.SHA256, ABIVersion: in.ABIVersion,
		HostABIVersions: []int{abi.Version}, Exports: in.Exports, Imports: in.Imports, Problem: in.Problem}
	if m := in.Memory; m != nil {
		out.Memory = &memoryJSON{MinPages: m.MinPages, MinBytes: uint64(m.MinPages) * host.PageSize}
		if m.HasMax {
			maxBytes := uint64(m.MaxPages) * host.PageSize
			out.Memory.MaxPages, out.Memory.MaxBytes = &m.MaxPages, &maxBytes
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			fmt.Fprintf(stderr, "slipagent plugin inspect: %v\n", err)
			return exitFailure
		}
	} else {
		printInspection(stdout, out)
	}
	if in.Problem != "" {
		fmt.Fprintf(stderr, "slipagent plugin inspect: %s would not load: %s\n", path, in.Problem)
		return exitFailure
	}
	return exitOK
}

func printInspection(w io.Writer, in inspectJSON) {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	fmt.Fprintf(tw, "module:\t%s\n", in.Path)
	fmt.Fprintf(tw, "size:\t%d bytes\n", in.Size)
	abiText := "unknown (not callable)"
	if in.ABIVersion != 0 {
		abiText = fmt.Sprint(in.ABIVersion)
	}
	fmt.Fprintf(tw, "ABI version:\t%s (this host speaks %s)\n", abiText, abiList(in.HostABIVersions))
	memText := "none exported"
	if m := in.Memory; m != nil {
		memText = fmt.Sprintf("min %d pages (%s), ", m.MinPages, byteSize(m.MinBytes))
		if m.MaxPages == nil {
			memText += "no max (the plugin's memory setting caps it)"
		} else {
			memText += fmt.Sprintf("max %d pages (%s)", *m.MaxPages, byteSize(*m.MaxBytes))
		}
	}
	fmt.Fprintf(tw, "memory:\t%s\n", memText)
	tw.Flush()
	fmt.Fprintf(w, "sha256 = %q\n", in.SHA256)
	fmt.Fprintf(w, "exports (%d):\n", len(in.Exports))
	for _, f := range in.Exports {
		fmt.Fprintf(w, "  %s\n", f.Signature)
	}
	fmt.Fprintf(w, "imports (%d):\n", len(in.Imports))
	for _, f := range in.Imports {
		fmt.Fprintf(w, "  %s.%s\n", f.Module, f.Signature)
	}
}

// byteSize renders n bytes with a binary unit.
func byteSize(n uint64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%.4g MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.4g KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
