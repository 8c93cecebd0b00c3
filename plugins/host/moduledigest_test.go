package host

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A module file that cannot be read fails LoadFile with the read's error.
func TestLoadFileUnreadable(t *testing.T) {
	ctx := context.Background()
	e, err := New(ctx, Config{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	missing := filepath.Join(t.TempDir(), "missing.wasm")
	_, err = e.LoadFile(ctx, missing, PluginConfig{Name: "guest"})
	if !os.IsNotExist(err) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("LoadFile of a missing module: %v, want a not-exist error naming it", err)
	}
}
