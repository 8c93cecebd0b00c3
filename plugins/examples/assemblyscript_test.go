//go:build !wasip1

package examples_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/slipstreamkv/slipstream/internal/plugintest"
	"github.com/slipstreamkv/slipstream/internal/plugintest/harness"
	"github.com/slipstreamkv/slipstream/plugins/abi"
	"github.com/slipstreamkv/slipstream/plugins/host"
)

const filesAS = "plugins/examples/files-as/assembly/index.ts"

func newFilesAS(t *testing.T, cfg map[string]string) *harness.Harness {
	return harness.New(t, plugintest.ASModule(t, filesAS), harness.Options{
		Watch:   "site",
		Outputs: []string{"files"},
		Hooks:   []string{"reload"},
		Plugin:  host.PluginConfig{Name: "files-as", Config: cfg},
	})
}

// TestFilesASAppliesBatches runs the AssemblyScript example through the
// real host: puts write files (nested paths too), a delete removes one, a
// batch that changes nothing requests no hook, keys outside the prefix or
// breaking the path rules are skipped.
func TestFilesASAppliesBatches(t *testing.T) {
	h := newFilesAS(t, map[string]string{"prefix": "www.", "hook": "reload", "mode": "640"})
	res := h.Commit(h.Apply(
		h.Put("www.index.html", "<h1>hi</h1>\n"),
		h.Put("www.css/site.css", "body{}"),
		h.Put("www.empty", ""),
		h.Put("www.ünï/cødé.txt", "utf-8 ✓"),
		h.Put("other.key", "not mine"),
		h.Put("www.../escape", "refused path"),
		h.Put("www.a//b", "refused path"),
	))
	if got := h.Files("files"); !slices.Equal(got, []string{"css/site.css", "empty", "index.html", "ünï/cødé.txt"}) {
		t.Fatalf("files %q", got)
	}
	if got, _ := h.Read("files", "index.html"); got != "<h1>hi</h1>\n" {
		t.Errorf("index.html = %q", got)
	}
	if got, _ := h.Read("files", "ünï/cødé.txt"); got != "utf-8 ✓" {
		t.Errorf("ünï/cødé.txt = %q", got)
	}
	if st, err := os.Stat(filepath.Join(h.Outputs["files"], "css", "site.css")); err != nil || st.Mode().Perm() != 0o640 {
		t.Errorf("css/site.css: %v, mode %v, want 0640", err, st.Mode())
	}
	if !slices.Equal(res.Hooks(), []string{"reload"}) {
		t.Errorf("hooks %v", res.Hooks())
	}

	res = h.Commit(h.Apply(h.Put("www.index.html", "<h1>hi</h1>\n"), h.Put("other.key", "x")))
	if res.Changed() || len(res.Hooks()) != 0 {
		t.Errorf("same content again: changed %v, hooks %v", res.Changed(), res.Hooks())
	}

	res = h.Commit(h.Apply(h.Delete("www.css/site.css"), h.Put("www.index.html", "v2")))
	if got := h.Files("files"); !slices.Equal(got, []string{"empty", "index.html", "ünï/cødé.txt"}) {
		t.Errorf("after the delete: files %q", got)
	}
	if got, _ := h.Read("files", "index.html"); got != "v2" || len(res.Hooks()) != 1 {
		t.Errorf("index.html = %q, hooks %v", got, res.Hooks())
	}
}

// TestFilesASRendersAndPrunes: a render over a view larger than a scan page
// (and than the SDK's first buffer) writes every file and removes the files
// no key maps to, in subdirectories too, leaving names that are not paths
// a key can map to.
func TestFilesASRendersAndPrunes(t *testing.T) {
	h := newFilesAS(t, map[string]string{"prefix": "k/"})
	out := h.Outputs["files"]
	for _, stale := range []string{"stale.txt", "d/stale.txt", "d/e/stale.txt"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(out, stale)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, stale), []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(out, "ctl\x01name"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 1500 {
		path := fmt.Sprintf("d/f%04d", i)
		h.View.Put(host.Entry{Key: "k/" + path, Value: []byte(strings.Repeat("v", 200+i%100)), Revision: uint64(i + 1)})
		want = append(want, path)
	}
	big := strings.Repeat("B", 300<<10) // more than one scan page
	h.View.Put(host.Entry{Key: "k/big", Value: []byte(big)})
	h.View.Put(host.Entry{Key: "elsewhere", Value: []byte("not mine")})
	want = append(want, "big", "ctl\x01name")
	res := h.Commit(h.Render())
	got := h.Files("files")
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("after the render: %d files (first %q), want %d", len(got), got[:min(3, len(got))], len(want))
	}
	if b, _ := h.Read("files", "big"); b != big {
		t.Errorf("big: %d bytes, want %d", len(b), len(big))
	}
	if len(res.Hooks()) != 0 {
		t.Errorf("hooks %v without a configured hook", res.Hooks())
	}
	res = h.Commit(h.Render())
	if res.Changed() {
		t.Errorf("a second render changed %d files", len(res.Staged()))
	}
}

func TestFilesASRefusesBadConfig(t *testing.T) {
	for cfg, want := range map[string]string{"mode": `config mode "rw" is not an octal permission`, "prune": `config prune "maybe" is not true or false`} {
		value := map[string]string{"mode": "rw", "prune": "maybe"}[cfg]
		h := newFilesAS(t, map[string]string{cfg: value})
		_, err := h.Apply(h.Put("a", "b"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s = %q: %v, want an error with %q", cfg, value, err, want)
		}
	}
}

// TestFilesASRefusesUnknownConfigKeys: every setting files-as reads is
// accepted, and a key it does not read refuses the module when it loads,
// naming the key and the keys files-as reads.
func TestFilesASRefusesUnknownConfigKeys(t *testing.T) {
	wasm := plugintest.ASModule(t, filesAS)
	const reads = "; this plugin reads: hook, mode, output, prefix, prune"
	checkLoads(t, wasm, "files-as", []loadCase{
		{map[string]string{"prefix": "a.", "output": "files", "mode": "640", "hook": "reload", "prune": "false"}, ""},
		{nil, ""},
		{map[string]string{"prefx": "a.", "hook": "reload"}, `files-as: unknown configuration key "prefx"` + reads},
		{map[string]string{"prefx": "a.", "strict": "true"}, `files-as: unknown configuration keys "prefx", "strict"` + reads},
	})
}

// TestASSDKMatchesABI keeps the AssemblyScript SDK's constants and host
// function declarations in step with plugins/abi, without needing node.
func TestASSDKMatchesABI(t *testing.T) {
	src, err := os.ReadFile("../sdk/assemblyscript/assembly/index.ts")
	if err != nil {
		t.Fatal(err)
	}
	decls := map[string][2]string{}
	for _, m := range regexp.MustCompile(`@external\("slipstream", "(\w+)"\)\s*declare function \w+\(([^)]*)\): (i32|i64);`).FindAllStringSubmatch(string(src), -1) {
		decls[m[1]] = [2]string{m[3], m[2]}
	}
	checkHostFunctions(t, "the SDK", decls, "i32", "i64")
	consts := map[string]int{
		"ABI_VERSION": abi.Version, "HEADER_SIZE": abi.HeaderSize, "RECORD_HEADER_SIZE": abi.RecordHeaderSize,
		"PAGE_HEADER_SIZE": abi.PageHeaderSize, "DIRENT_HEADER_SIZE": abi.DirEntryHeaderSize,
		"MAX_VERSION_LEN": abi.MaxVersionLen, "MAX_PATH_LEN": abi.MaxPathLen, "MAX_PATH_DEPTH": abi.MaxPathDepth,
		"MAX_NAME_LEN": abi.MaxNameLen,
		"OK":           int(abi.OK), "UNCHANGED": int(abi.Unchanged), "ERR_MEMORY": int(abi.ErrMemory), "ERR_INVALID": int(abi.ErrInvalid),
		"ERR_NOT_FOUND": int(abi.ErrNotFound), "ERR_DENIED": int(abi.ErrDenied), "ERR_LIMIT": int(abi.ErrLimit),
		"ERR_STATE": int(abi.ErrState), "ERR_IO": int(abi.ErrIO),
	}
	for name, want := range consts {
		m := regexp.MustCompile(`export const ` + name + `: i32 = (-?\d+);`).FindStringSubmatch(string(src))
		if m == nil {
			t.Errorf("the SDK lacks %s", name)
			continue
		}
		if v, _ := strconv.Atoi(m[1]); v != want {
			t.Errorf("the SDK sets %s = %s, want %d", name, m[1], want)
		}
	}
}
