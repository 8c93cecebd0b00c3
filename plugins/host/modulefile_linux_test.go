package host

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadOfAMappedModuleTruncatedMeanwhileFails checks that a module file
// truncated while LoadFile has it mapped fails the load instead of killing
// the process with SIGBUS.
func TestLoadOfAMappedModuleTruncatedMeanwhileFails(t *testing.T) {
	module := guestWasm(t)
	path := filepath.Join(t.TempDir(), "guest.wasm")
	if err := os.WriteFile(path, module, 0o644); err != nil {
		t.Fatal(err)
	}
	wasm, release, err := readModule(path)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if !bytes.Equal(wasm, module) {
		t.Fatal("readModule returned other bytes than the file's")
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	_, err = testEngine(t).Load(context.Background(), wasm, PluginConfig{Name: "truncated"})
	if !errors.Is(err, ErrInvalidModule) || !strings.Contains(err.Error(), errModuleFault.Error()) {
		t.Fatalf("err = %v, want ErrInvalidModule saying %q", err, errModuleFault)
	}
}
