package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/slipstreamkv/slipstream/internal/plugintest"
)

// mdweModuleEnv names the module TestCompilerNeedsExecutableMappings' child
// process loads under PR_SET_MDWE.
const mdweModuleEnv = "SLIPAGENT_TEST_MDWE_MODULE"

// TestCompilerNeedsExecutableMappings is why the systemd unit has no
// MemoryDenyWriteExecute=yes: wazero's compiler writes native code into a
// mapping and then makes it executable (mprotect PROT_EXEC), which that
// setting forbids. The kernel's PR_SET_MDWE (REFUSE_EXEC_GAIN, Linux 6.3)
// enforces the same rule; under it no plugin loads (wazero panics with
// "permission denied" when it sets up its compiler).
func TestCompilerNeedsExecutableMappings(t *testing.T) {
	if path := os.Getenv(mdweModuleEnv); path != "" {
		loadUnderMDWE(t, path)
		return
	}
	module := filepath.Join(t.TempDir(), "files.wasm")
	if err := os.WriteFile(module, plugintest.Module(t, "plugins/examples/files"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCompilerNeedsExecutableMappings$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), mdweModuleEnv+"="+module)
	out, err := cmd.CombinedOutput()
	switch {
	case strings.Contains(string(out), "--- SKIP"):
		t.Skipf("the kernel cannot refuse executable mappings:\n%s", out)
	case err != nil:
		t.Fatalf("the child process: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// loadUnderMDWE forbids making memory executable for the whole process,
// then loads the module at path: the load must fail.
func loadUnderMDWE(t *testing.T, path string) {
	if err := unix.Prctl(unix.PR_SET_MDWE, unix.PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0); errors.Is(err, unix.EINVAL) {
		t.Skip("PR_SET_MDWE needs Linux 6.3 or later")
	} else if err != nil {
		t.Fatalf("PR_SET_MDWE: %v", err)
	}
	wasm, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := loadModule(wasm); err == nil {
		t.Fatal("the plugin loaded although memory may not become executable: MemoryDenyWriteExecute=yes would not break the compiler")
	} else {
		t.Logf("as expected, no plugin loads when memory may not become executable: %v", err)
	}
}

// loadModule loads and closes a plugin. wazero panics when it cannot make
// its code executable; that panic is returned as an error.
func loadModule(wasm []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	ctx := context.Background()
	e, err := New(ctx, Config{})
	if err != nil {
		return err
	}
	defer e.Close(ctx)
	p, err := e.Load(ctx, wasm, PluginConfig{Name: "files"})
	if err != nil {
		return err
	}
	return p.Close(ctx)
}
