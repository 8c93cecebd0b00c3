// Package plugintest builds WebAssembly plugins for tests: Go plugins with
// the go toolchain running the tests (GOOS=wasip1 GOARCH=wasm
// -buildmode=c-shared), C plugins with clang for wasm32-wasi and
// AssemblyScript plugins with the compiler the AssemblyScript SDK's
// package-lock.json pins (node and npm; SLIPSTREAM_REQUIRE_NODE=1 fails
// instead of skipping without them). Each module
// is built once per test binary and kept in memory.
//
// Test packages that run plugins call [Main] from TestMain; it provides
// [CacheDir], a compilation cache shared by the package's tests (so each
// module is compiled once per test process), and removes it at exit.
//
// C builds skip the test when the toolchain (clang, lld, wasi-libc,
// libclang-rt-14-dev-wasm32) is missing, unless SLIPSTREAM_REQUIRE_CLANG=1 is
// set, as CI does: then a missing toolchain fails the test.
//
// Everything here is safe for concurrent use by parallel tests.
package plugintest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// RequireClangEnv names the variable that turns a missing C toolchain from a
// skip into a failure.
const RequireClangEnv = "SLIPSTREAM_REQUIRE_CLANG"

type build struct {
	once sync.Once
	wasm []byte
	err  error
}

var (
	mu     sync.Mutex
	builds = map[string]*build{}

	rootOnce sync.Once
	root     string
	rootErr  error

	cacheOnce sync.Once
	cacheDir  string
	cacheErr  error

	binaryOnce sync.Once
	binaryDir  string
	binaryErr  error
)

// Main runs the tests of a package that uses CacheDir and removes the cache
// afterwards. Call it from TestMain: func TestMain(m *testing.M) { plugintest.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	if cacheDir != "" {
		_ = os.RemoveAll(cacheDir)
	}
	if ascDir != "" {
		_ = os.RemoveAll(ascDir)
	}
	if binaryDir != "" {
		_ = os.RemoveAll(binaryDir)
	}
	os.Exit(code)
}

// CacheDir returns a compilation cache directory shared by the test process.
func CacheDir(tb testing.TB) string {
	tb.Helper()
	cacheOnce.Do(func() { cacheDir, cacheErr = os.MkdirTemp("", "slipstream-plugintest-cache-") })
	if cacheErr != nil {
		tb.Fatalf("plugintest: %v", cacheErr)
	}
	return cacheDir
}

// Root returns the repository root (the directory of go.mod), found from
// this file's own path, whatever the test's working directory.
func Root(tb testing.TB) string {
	tb.Helper()
	rootOnce.Do(func() {
		_, file, _, ok := runtime.Caller(0)
		if !ok {
			rootErr = fmt.Errorf("cannot tell where plugintest's source is")
			return
		}
		root = filepath.Join(filepath.Dir(file), "..", "..")
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
			rootErr = fmt.Errorf("no go.mod at %s: %w", root, err)
		}
	})
	if rootErr != nil {
		tb.Fatalf("plugintest: %v", rootErr)
	}
	return root
}

func cached(key string, make func() ([]byte, error)) ([]byte, error) {
	mu.Lock()
	b := builds[key]
	if b == nil {
		b = &build{}
		builds[key] = b
	}
	mu.Unlock()
	b.once.Do(func() { b.wasm, b.err = make() })
	return b.wasm, b.err
}

// Module builds the Go plugin in pkg, a directory relative to the repository
// root such as "plugins/examples/files", and returns the module's bytes.
func Module(tb testing.TB, pkg string) []byte {
	tb.Helper()
	dir := Root(tb)
	wasm, err := cached("go:"+pkg, func() ([]byte, error) {
		out, err := os.MkdirTemp("", "slipstream-plugintest-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(out)
		file := filepath.Join(out, "plugin.wasm")
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", file, "./"+filepath.ToSlash(pkg))
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
		if msg, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build %s: %v\n%s", pkg, err, msg)
		}
		return os.ReadFile(file)
	})
	if err != nil {
		tb.Fatalf("plugintest: %v", err)
	}
	return wasm
}

// clangFlags build a WASI preview1 reactor, as plugins/ABI.md documents.
var clangFlags = []string{"--target=wasm32-wasi", "-O2", "-mexec-model=reactor", "-Wall", "-Wextra", "-Werror", "-Wl,--strip-all"}

// probe is a minimal C file that needs the whole toolchain: libc and the
// compiler builtins (64-bit division on wasm32 comes from libclang_rt).
const probe = `#include <stdlib.h>
#include <stdio.h>
__attribute__((export_name("f"))) long long f(long long a, long long b) { char *p = malloc(16); snprintf(p, 16, "%lld", a / b); return p[0]; }
`

var (
	clangOnce sync.Once
	clangErr  error
)

// RequireClang skips (or, with SLIPSTREAM_REQUIRE_CLANG=1, fails) the test
// unless clang can build wasm32-wasi reactors here.
func RequireClang(tb testing.TB) {
	tb.Helper()
	clangOnce.Do(func() {
		if _, err := exec.LookPath("clang"); err != nil {
			clangErr = err
			return
		}
		dir, err := os.MkdirTemp("", "slipstream-plugintest-")
		if err != nil {
			clangErr = err
			return
		}
		defer os.RemoveAll(dir)
		src := filepath.Join(dir, "probe.c")
		if err := os.WriteFile(src, []byte(probe), 0o644); err != nil {
			clangErr = err
			return
		}
		args := append(append([]string{}, clangFlags...), "-o", filepath.Join(dir, "probe.wasm"), src)
		if msg, err := exec.Command("clang", args...).CombinedOutput(); err != nil {
			clangErr = fmt.Errorf("%v: %s", err, bytes.TrimSpace(msg))
		}
	})
	if clangErr == nil {
		return
	}
	const hint = "install clang lld wasi-libc libclang-rt-14-dev-wasm32"
	if os.Getenv(RequireClangEnv) == "1" {
		tb.Fatalf("plugintest: C toolchain for wasm32-wasi unusable (%s): %v", hint, clangErr)
	}
	tb.Skipf("plugintest: skipping: C toolchain for wasm32-wasi unusable (%s; set %s=1 to fail instead): %v", hint, RequireClangEnv, clangErr)
}

// CModule builds a C plugin from src (relative to the repository root) with
// clang for wasm32-wasi, adding the source's directory to the include path.
// It calls RequireClang first.
func CModule(tb testing.TB, src string) []byte {
	tb.Helper()
	RequireClang(tb)
	dir := Root(tb)
	wasm, err := cached("c:"+src, func() ([]byte, error) {
		out, err := os.MkdirTemp("", "slipstream-plugintest-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(out)
		file := filepath.Join(out, "plugin.wasm")
		path := filepath.Join(dir, filepath.FromSlash(src))
		args := append(append([]string{}, clangFlags...), "-I", filepath.Dir(path), "-o", file, path)
		if msg, err := exec.Command("clang", args...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("clang %s: %v\n%s", src, err, msg)
		}
		return os.ReadFile(file)
	})
	if err != nil {
		tb.Fatalf("plugintest: %v", err)
	}
	return wasm
}

// Binary builds the slipagent binary (./cmd/slipagent, without the race
// detector whatever the tests run with) once per test process and returns
// its path, for tests that run commands as a user would. Main removes it.
func Binary(tb testing.TB) string {
	tb.Helper()
	binaryOnce.Do(func() {
		if binaryDir, binaryErr = os.MkdirTemp("", "slipstream-plugintest-bin-"); binaryErr != nil {
			return
		}
		build := exec.Command("go", "build", "-o", filepath.Join(binaryDir, "slipagent"), "./cmd/slipagent")
		build.Dir = Root(tb)
		if out, err := build.CombinedOutput(); err != nil {
			binaryErr = fmt.Errorf("go build ./cmd/slipagent: %w\n%s", err, out)
		}
	})
	if binaryErr != nil {
		tb.Fatalf("plugintest: %v", binaryErr)
	}
	return filepath.Join(binaryDir, "slipagent")
}

// Agent returns the slipagent binary (see Binary) and the template example
// plugin, built into a test directory, for tests that run the agent as a
// process.
func Agent(tb testing.TB) (binary, templatePlugin string) {
	tb.Helper()
	dir := tb.TempDir()
	binary = Binary(tb)
	templatePlugin = filepath.Join(dir, "template.wasm")
	if err := os.WriteFile(templatePlugin, Module(tb, "plugins/examples/template"), 0o644); err != nil {
		tb.Fatal(err)
	}
	return binary, templatePlugin
}
