package plugintest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestMain(m *testing.M) { Main(m) }

func TestModuleIsBuiltOncePerProcess(t *testing.T) {
	a := Module(t, "plugins/host/testdata/bench")
	b := Module(t, "plugins/host/testdata/bench")
	if !bytes.HasPrefix(a, []byte("\x00asm\x01\x00\x00\x00")) {
		t.Fatalf("not a wasm module: % x", a[:8])
	}
	if &a[0] != &b[0] {
		t.Fatal("the module was built twice")
	}
}

func TestRootAndCacheDir(t *testing.T) {
	if _, err := os.Stat(filepath.Join(Root(t), "go.mod")); err != nil {
		t.Fatal(err)
	}
	dir := CacheDir(t)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() || CacheDir(t) != dir {
		t.Fatalf("cache dir %q: %v", dir, err)
	}
}

func TestBuildErrorsAreReported(t *testing.T) {
	_, err := cached("go:broken", func() ([]byte, error) { return nil, os.ErrNotExist })
	if err == nil {
		t.Fatal("a failed build was not reported")
	}
	if _, again := cached("go:broken", func() ([]byte, error) { return []byte("x"), nil }); again == nil {
		t.Fatal("a failed build was retried instead of remembered")
	}
}
