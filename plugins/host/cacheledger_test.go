package host

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// loadWithCache loads the test guest through a new engine on cacheDir and
// checks that it works (one batch writing a file); it returns the engine's
// logs.
func loadWithCache(t *testing.T, cacheDir string) *logRecorder {
	t.Helper()
	ctx := context.Background()
	logs := &logRecorder{}
	e, err := New(ctx, Config{CacheDir: cacheDir, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	p, err := e.Load(ctx, guestWasm(t), PluginConfig{Name: "guest"})
	if err != nil {
		t.Fatalf("Load: %v (logs: %q)", err, logs.lines())
	}
	out := t.TempDir()
	inst, err := p.NewInstance(ctx, InstanceConfig{Watch: "w", Outputs: map[string]Output{"out": {Dir: out}}})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(ctx)
	res, err := inst.Apply(ctx, Batch{Updates: []Update{{Op: OpPut, Key: "write#1", Value: []byte("out:f:works"), Revision: 1}}, Cursor: Cursor{Revision: 1}}, NewMemView())
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "f")); string(b) != "works" {
		t.Fatalf("the plugin wrote %q", b)
	}
	return logs
}

// cacheEntries returns the compiled entries wazero keeps in dir.
func cacheEntries(t *testing.T, dir string) []string {
	t.Helper()
	l := &cacheLedger{dir: dir}
	rel, err := l.entries()
	if err != nil {
		t.Fatal(err)
	}
	if len(rel) == 0 {
		t.Fatalf("no compile cache entry in %s", dir)
	}
	for i := range rel {
		rel[i] = filepath.Join(dir, rel[i])
	}
	return rel
}

// TestTamperedCacheEntryIsRejectedAndRecompiled changes a compiled entry on
// disk between two starts. wazero would load an entry whose CRC still holds
// (bytes appended: its reader stops before them) and refuse for good one
// whose code changed; the ledger rejects both, the module is compiled
// again, and the plugin works.
func TestTamperedCacheEntryIsRejectedAndRecompiled(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func([]byte) []byte
		// keepTimes puts the entry's access and modification times back:
		// only its change time (statFingerprint) tells it was written.
		keepTimes bool
	}{
		{"bytes appended, CRC intact", func(b []byte) []byte { return append(b, "planted"...) }, false},
		{"code changed, CRC broken", func(b []byte) []byte { b[len(b)/2] ^= 0xff; return b }, false},
		{"code changed, size and times kept", func(b []byte) []byte { b[len(b)/3] ^= 0xff; return b }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			loadWithCache(t, dir)
			loadWithCache(t, dir) // the ledger holds the entry's fingerprint by now
			entry := cacheEntries(t, dir)[0]
			good, err := os.ReadFile(entry)
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(entry)
			if err != nil {
				t.Fatal(err)
			}
			bad := tc.tamper(bytes.Clone(good))
			if err := os.WriteFile(entry, bad, 0o600); err != nil {
				t.Fatal(err)
			}
			if tc.keepTimes {
				if err := os.Chtimes(entry, fi.ModTime(), fi.ModTime()); err != nil {
					t.Fatal(err)
				}
			}

			logs := loadWithCache(t, dir)
			if logs.count("compile cache entry differs from the one compiled for its module: rejected") != 1 {
				t.Errorf("no rejection logged: %q", logs.lines())
			}
			now, err := os.ReadFile(entry)
			if err != nil {
				t.Fatalf("the module was not compiled again into the cache: %v", err)
			}
			if bytes.Equal(now, bad) {
				t.Fatal("the tampered entry is still in the cache")
			}
			// The fresh entry is recorded: a third start uses it quietly.
			if logs := loadWithCache(t, dir); logs.count("compile cache") != 0 {
				t.Errorf("third start logged %q", logs.lines())
			}
		})
	}
}

// TestUnrecordedCacheEntryIsRemoved plants an entry (a genuine one, copied
// from another cache) in a cache whose ledger does not know it.
func TestUnrecordedCacheEntryIsRemoved(t *testing.T) {
	src := t.TempDir()
	loadWithCache(t, src)
	dir := t.TempDir()
	for _, e := range cacheEntries(t, src) {
		rel, _ := filepath.Rel(src, e)
		b, err := os.ReadFile(e)
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(dir, filepath.Dir(rel)), 0o700)
		if err := os.WriteFile(filepath.Join(dir, rel), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The planted entry's times are set far back: a replacement has
	// today's (its inode may well be the planted one's, freed by its
	// removal, so the file's identity tells nothing).
	planted := cacheEntries(t, dir)[0]
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := os.Chtimes(planted, old, old); err != nil {
		t.Fatal(err)
	}
	logs := loadWithCache(t, dir)
	if logs.count("compile cache entry not recorded by the agent") != 1 {
		t.Errorf("no removal logged: %q", logs.lines())
	}
	after, err := os.Stat(planted)
	if err != nil {
		t.Fatalf("the module was not compiled again: %v", err)
	}
	if after.ModTime().Equal(old) {
		t.Error("the planted entry was used, not replaced")
	}
	b, err := os.ReadFile(filepath.Join(dir, ledgerName))
	if err != nil || !strings.Contains(string(b), sha256hex(guestWasm(t))) {
		t.Errorf("ledger %s does not record the module: %s %v", ledgerName, b, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, ledgerName)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("ledger mode: %v %v", fi, err)
	}
}

// TestCacheLedgerLogsUnderTheEngineLogger: the ledger logs with the
// engine's logger as given (the agent's has component=plugins), adding no
// second component key; its messages name the compile cache themselves.
func TestCacheLedgerLogsUnderTheEngineLogger(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ledgerName), []byte("not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	e, err := New(ctx, Config{CacheDir: dir, Logger: slog.New(slog.NewTextHandler(&logs, nil)).With("component", "plugins")})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	if _, err := e.Load(ctx, guestWasm(t), PluginConfig{Name: "guest"}); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "compile cache ledger unreadable") {
			if n := strings.Count(line, "component="); n != 1 {
				t.Errorf("the ledger's warning has %d component keys, want 1: %s", n, line)
			}
			return
		}
	}
	t.Errorf("no ledger warning logged:\n%s", logs.String())
}
