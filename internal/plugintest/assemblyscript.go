package plugintest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// RequireNodeEnv names the variable that turns a missing node/npm (for the
// AssemblyScript plugins) from a skip into a failure.
const RequireNodeEnv = "SLIPSTREAM_REQUIRE_NODE"

// ASSDK is the AssemblyScript SDK's npm package, relative to the repository
// root; its package-lock.json pins the compiler.
const ASSDK = "plugins/sdk/assemblyscript"

// ASFlags build a WASI preview1 reactor from an AssemblyScript entry file
// that re-exports the SDK's exports, as `make plugin-as` does: the start
// function becomes _initialize and aborts go to the SDK's handler, so the
// module imports nothing but the slipstream host functions.
var ASFlags = []string{"--exportStart", "_initialize", "--use", "abort=" + ASSDK + "/assembly/index/slipstream_abort", "-O", "--noAssert"}

var (
	ascOnce sync.Once
	asc     string // the path of asc.js, installed by npm ci from the SDK's lockfile
	ascErr  error
	ascDir  string
)

// RequireNode skips (or, with SLIPSTREAM_REQUIRE_NODE=1, fails) the test
// unless node and npm are installed, and installs the AssemblyScript
// compiler from the SDK's package-lock.json (npm ci, into a temporary
// directory: the work tree is not touched).
func RequireNode(tb testing.TB) {
	tb.Helper()
	dir := Root(tb)
	ascOnce.Do(func() {
		for _, tool := range []string{"node", "npm"} {
			if _, err := exec.LookPath(tool); err != nil {
				ascErr = err
				return
			}
		}
		ascDir, ascErr = os.MkdirTemp("", "slipstream-plugintest-npm-")
		if ascErr != nil {
			return
		}
		for _, f := range []string{"package.json", "package-lock.json"} {
			data, err := os.ReadFile(filepath.Join(dir, ASSDK, f))
			if err != nil {
				ascErr = err
				return
			}
			if err := os.WriteFile(filepath.Join(ascDir, f), data, 0o644); err != nil {
				ascErr = err
				return
			}
		}
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = ascDir
		if msg, err := cmd.CombinedOutput(); err != nil {
			ascErr = fmt.Errorf("npm ci in a copy of %s: %v\n%s", ASSDK, err, msg)
			return
		}
		asc = filepath.Join(ascDir, "node_modules", "assemblyscript", "bin", "asc.js")
	})
	if ascErr == nil {
		return
	}
	if os.Getenv(RequireNodeEnv) == "1" {
		tb.Fatalf("plugintest: AssemblyScript toolchain unusable (install node and npm): %v", ascErr)
	}
	tb.Skipf("plugintest: skipping: AssemblyScript toolchain unusable (install node and npm; set %s=1 to fail instead): %v", RequireNodeEnv, ascErr)
}

// ASModule builds an AssemblyScript plugin from its entry file (relative to
// the repository root) with the compiler the SDK's lockfile pins. It calls
// RequireNode first.
func ASModule(tb testing.TB, entry string) []byte {
	tb.Helper()
	RequireNode(tb)
	dir := Root(tb)
	wasm, err := cached("as:"+entry, func() ([]byte, error) {
		out, err := os.MkdirTemp("", "slipstream-plugintest-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(out)
		file := filepath.Join(out, "plugin.wasm")
		args := append(append([]string{asc, filepath.FromSlash(entry)}, ASFlags...), "-o", file)
		cmd := exec.Command("node", args...)
		cmd.Dir = dir // asc names the abort handler by its path from here
		if msg, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("asc %s: %v\n%s", entry, err, msg)
		}
		return os.ReadFile(file)
	})
	if err != nil {
		tb.Fatalf("plugintest: %v", err)
	}
	return wasm
}
