package plugintest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// RequireRustEnv names the variable that turns a missing Rust toolchain for
// WASI (for the Rust plugins) from a skip into a failure.
const RequireRustEnv = "SLIPSTREAM_REQUIRE_RUST"

// RustToolchain is a rustc that has the standard library of a WASI preview1
// target, and the cargo to drive it.
type RustToolchain struct {
	Rustc, Cargo string
	// Sysroot is rustc's: the target's libraries are in
	// Sysroot/lib/rustlib/Target/lib.
	Sysroot string
	// Target is wasm32-wasip1, or wasm32-wasi for a Rust older than 1.78
	// (Debian 12's).
	Target string
}

// Env is the environment that has cargo run this toolchain's rustc and
// rustdoc (for doc tests), whatever rustup has on PATH.
func (tc RustToolchain) Env() []string {
	env := append(os.Environ(), "RUSTC="+tc.Rustc)
	if rustdoc := filepath.Join(filepath.Dir(tc.Rustc), "rustdoc"); fileExists(rustdoc) {
		env = append(env, "RUSTDOC="+rustdoc)
	}
	return env
}

func fileExists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}

var (
	rustOnce sync.Once
	rust     RustToolchain
	rustErr  error
)

// FindRust finds a Rust toolchain that builds WASI preview1 modules: the
// rustc named by $RUSTC, else the one on PATH, else Debian's
// (/usr/bin/rustc; rustup's rustc comes first on PATH but often lacks the
// target), with the cargo beside it, else the one on PATH. It is what
// `make plugin-rust` looks for too.
func FindRust() (RustToolchain, error) {
	rustOnce.Do(func() { rust, rustErr = findRust() })
	return rust, rustErr
}

func findRust() (RustToolchain, error) {
	var candidates []string
	if rc := os.Getenv("RUSTC"); rc != "" {
		if path, err := exec.LookPath(rc); err == nil {
			rc = path
		}
		candidates = append(candidates, rc)
	}
	if rc, err := exec.LookPath("rustc"); err == nil {
		candidates = append(candidates, rc)
	}
	candidates = append(candidates, "/usr/bin/rustc")
	var tried []string
	for _, rc := range candidates {
		out, err := exec.Command(rc, "--print", "sysroot").Output()
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s: %v", rc, err))
			continue
		}
		sysroot := strings.TrimSpace(string(out))
		for _, target := range []string{"wasm32-wasip1", "wasm32-wasi"} {
			if !fileExists(filepath.Join(sysroot, "lib", "rustlib", target, "lib")) {
				continue
			}
			cargo := filepath.Join(filepath.Dir(rc), "cargo")
			if !fileExists(cargo) {
				var err error
				if cargo, err = exec.LookPath("cargo"); err != nil {
					tried = append(tried, fmt.Sprintf("%s has %s, but there is no cargo beside it or on PATH", rc, target))
					break
				}
			}
			return RustToolchain{Rustc: rc, Cargo: cargo, Sysroot: sysroot, Target: target}, nil
		}
		tried = append(tried, fmt.Sprintf("%s: no wasm32-wasip1 or wasm32-wasi standard library in %s", rc, sysroot))
	}
	return RustToolchain{}, errors.New(strings.Join(tried, "; "))
}

// RequireRust skips (or, with SLIPSTREAM_REQUIRE_RUST=1, fails) the test
// unless a Rust toolchain here builds WASI preview1 modules, and returns it.
func RequireRust(tb testing.TB) RustToolchain {
	tb.Helper()
	tc, err := FindRust()
	if err == nil {
		return tc
	}
	const hint = "install rustc cargo libstd-rust-dev-wasm32, or rustup target add wasm32-wasip1"
	if os.Getenv(RequireRustEnv) == "1" {
		tb.Fatalf("plugintest: no Rust toolchain for WASI (%s): %v", hint, err)
	}
	tb.Skipf("plugintest: skipping: no Rust toolchain for WASI (%s; set %s=1 to fail instead): %v", hint, RequireRustEnv, err)
	return RustToolchain{}
}

// RustModule builds the Rust plugin crate in dir (relative to the
// repository root, holding a Cargo.toml and the Cargo.lock it is built
// with) in release mode, offline, warnings as errors, with rustflags added
// to RUSTFLAGS, and returns the module's bytes. It calls RequireRust first.
func RustModule(tb testing.TB, dir string, rustflags ...string) []byte {
	tb.Helper()
	tc := RequireRust(tb)
	root := Root(tb)
	wasm, err := cached("rust:"+dir+" "+strings.Join(rustflags, " "), func() ([]byte, error) {
		out, err := os.MkdirTemp("", "slipstream-plugintest-cargo-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(out)
		crate := filepath.Join(root, filepath.FromSlash(dir))
		cmd := exec.Command(tc.Cargo, "build", "--offline", "--locked", "--release", "--quiet",
			"--target", tc.Target, "--target-dir", out, "--manifest-path", filepath.Join(crate, "Cargo.toml"))
		cmd.Env = append(tc.Env(), "RUSTFLAGS="+strings.Join(append([]string{"-D", "warnings"}, rustflags...), " "))
		if msg, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("cargo build %s: %v\n%s", dir, err, bytes.TrimSpace(msg))
		}
		wasms, err := filepath.Glob(filepath.Join(out, tc.Target, "release", "*.wasm"))
		if err != nil || len(wasms) != 1 {
			return nil, fmt.Errorf("cargo build %s: want one module in %s, found %v", dir, filepath.Join(out, tc.Target, "release"), wasms)
		}
		return os.ReadFile(wasms[0])
	})
	if err != nil {
		tb.Fatalf("plugintest: %v", err)
	}
	return wasm
}
