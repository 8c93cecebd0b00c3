package host

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ModuleDigest answers from its record while the module file keeps its
// stat fingerprint (a restart does not hash megabytes of code), hashes a
// file that changed, and LoadFile records what it actually loaded, which
// corrects a record that names another module.
func TestModuleDigestRecordedByFingerprint(t *testing.T) {
	ctx := context.Background()
	cache := t.TempDir()
	e, err := New(ctx, Config{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	wasm := guestWasm(t)
	module := filepath.Join(t.TempDir(), "guest.wasm")
	if err := os.WriteFile(module, wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	if d, err := e.ModuleDigest(module); err != nil || d != sha256hex(wasm) {
		t.Fatalf("ModuleDigest = %s, %v; want %s", d, err, sha256hex(wasm))
	}
	recordPath := filepath.Join(cache, digestsName)
	if fi, err := os.Stat(recordPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("record %s: %v %v, want mode 0600", recordPath, fi, err)
	}

	// A record for the file's current fingerprint is believed: the file
	// is not read again.
	planted := strings.Repeat("0", 64)
	var f digestsFile
	b, err := os.ReadFile(recordPath)
	if err == nil {
		err = json.Unmarshal(b, &f)
	}
	if err != nil {
		t.Fatal(err)
	}
	rec, ok := f.Modules[module]
	if !ok {
		t.Fatalf("no record for %s in %s", module, b)
	}
	rec.SHA256 = planted
	f.Modules[module] = rec
	b, _ = json.Marshal(f)
	if err := os.WriteFile(recordPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if d, _ := e.ModuleDigest(module); d != planted {
		t.Fatalf("ModuleDigest = %s, want the recorded %s (the record was not used)", d, planted)
	}

	// What LoadFile loads is hashed and recorded.
	p, err := e.LoadFile(ctx, module, PluginConfig{Name: "guest"})
	if err != nil {
		t.Fatal(err)
	}
	p.Close(ctx)
	if p.SHA256() != sha256hex(wasm) {
		t.Fatalf("loaded sha256 %s, want %s", p.SHA256(), sha256hex(wasm))
	}
	if d, _ := e.ModuleDigest(module); d != sha256hex(wasm) {
		t.Fatalf("after the load, ModuleDigest = %s, want %s", d, sha256hex(wasm))
	}

	// A changed file changes its fingerprint: it is hashed again.
	changed := append(append([]byte{}, wasm...), 0, 3, 1, 'x', 1) // a custom section "x"
	if err := os.WriteFile(module, changed, 0o644); err != nil {
		t.Fatal(err)
	}
	if d, _ := e.ModuleDigest(module); d != sha256hex(changed) {
		t.Fatalf("after a change, ModuleDigest = %s, want %s", d, sha256hex(changed))
	}
}
