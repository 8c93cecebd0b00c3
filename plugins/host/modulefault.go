package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"runtime/debug"

	"github.com/tetratelabs/wazero"
)

// errModuleFault is a fault reading a module's bytes: a module file that
// LoadFile mapped (readModule) was truncated meanwhile.
var errModuleFault = errors.New("the module file changed while it was read")

// compileModule compiles wasm with r; a fault reading wasm is
// errModuleFault, not a crash. wazero copies what it keeps of wasm.
func compileModule(ctx context.Context, r wazero.Runtime, wasm []byte) (cm wazero.CompiledModule, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverFault(&err)
	return r.CompileModule(ctx, wasm)
}

// hashModule returns the hex sha256 of wasm, or errModuleFault.
func hashModule(wasm []byte) (digest string, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverFault(&err)
	sum := sha256.Sum256(wasm)
	return hex.EncodeToString(sum[:]), nil
}

// recoverFault, deferred, turns the panic of a memory fault (under
// debug.SetPanicOnFault) into errModuleFault in *err; other panics go on.
func recoverFault(err *error) {
	r := recover()
	if r == nil {
		return
	}
	if _, fault := r.(interface{ Addr() uintptr }); !fault {
		panic(r)
	}
	*err = errModuleFault
}
