package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/slipstreamkv/slipstream/plugins/abi"
)

func TestInspect(t *testing.T) {
	ctx := context.Background()
	good := minimalPlugin()
	good.imports = []wasmImport{{module: abi.ImportModule, name: abi.FuncLog, params: []byte{i32, i32, i32}, results: []byte{i32}}}
	wasm := good.bytes()
	in, err := Inspect(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(wasm)
	if in.Size != len(wasm) || in.SHA256 != hex.EncodeToString(sum[:]) || in.ABIVersion != 1 || in.Problem != "" {
		t.Errorf("Inspect = %+v", in)
	}
	if in.Memory == nil || in.Memory.MinPages != 1 || in.Memory.HasMax {
		t.Errorf("memory = %+v, want min 1 page, no max", in.Memory)
	}
	if len(in.Exports) != 3 || in.Exports[1] != (FunctionInfo{Name: abi.ExportApply, Signature: "slipstream_apply(i32) -> i32"}) {
		t.Errorf("exports = %+v", in.Exports)
	}
	if len(in.Imports) != 1 || in.Imports[0] != (FunctionInfo{Module: abi.ImportModule, Name: abi.FuncLog, Signature: "log(i32, i32, i32) -> i32"}) {
		t.Errorf("imports = %+v", in.Imports)
	}

	// Another declared version is read and reported, not refused.
	v2 := minimalPlugin()
	v2.funcs[0].body = constI32(2)
	in, err = Inspect(ctx, v2.bytes())
	if err != nil || in.ABIVersion != 2 || !strings.Contains(in.Problem, "declares ABI version 2; this host speaks version 1") {
		t.Errorf("Inspect of a version 2 module = %+v, %v", in, err)
	}

	// A module failing the export checks is described, with the problem.
	missing := minimalPlugin()
	missing.funcs = missing.funcs[:2]
	missing.memory = false
	in, err = Inspect(ctx, missing.bytes())
	if err != nil || in.ABIVersion != 0 || in.Memory != nil || !strings.Contains(in.Problem, "missing export slipstream_render") {
		t.Errorf("Inspect of a module missing exports = %+v, %v", in, err)
	}

	if _, err := Inspect(ctx, []byte("not wasm")); !errors.Is(err, ErrInvalidModule) {
		t.Errorf("Inspect of garbage: err = %v, want ErrInvalidModule", err)
	}
}
