//go:build !wasip1

package examples_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/slipstreamkv/slipstream/internal/plugintest"
	"github.com/slipstreamkv/slipstream/internal/plugintest/harness"
	"github.com/slipstreamkv/slipstream/plugins/abi"
	"github.com/slipstreamkv/slipstream/plugins/host"
	"github.com/tetratelabs/wazero"
)

const (
	jsonfileCrate = "plugins/examples/jsonfile"
	probeCrate    = "plugins/sdk/rust/testdata/probe"
)

func newJSONFile(t *testing.T, cfg map[string]string, logs *bytes.Buffer) *harness.Harness {
	pc := host.PluginConfig{Name: "jsonfile", Config: cfg}
	if logs != nil {
		pc.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	return harness.New(t, plugintest.RustModule(t, jsonfileCrate), harness.Options{
		Watch:   "app",
		Outputs: []string{"json"},
		Hooks:   []string{"reload"},
		Plugin:  pc,
	})
}

func TestJSONFileRendersOnChangeOnly(t *testing.T) {
	h := newJSONFile(t, map[string]string{"prefix": "app.", "path": "app.json", "hook": "reload", "mode": "0640"}, nil)
	res := h.Commit(h.Apply(
		h.Put("app.db.url", `postgres://db/"main"`),
		h.Put("app.feature", "on"),
		h.Put("other.key", "not mine"),
	))
	want := "{\n  \"db.url\": \"postgres://db/\\\"main\\\"\",\n  \"feature\": \"on\"\n}\n"
	if got, _ := h.Read("json", "app.json"); got != want {
		t.Fatalf("app.json\n%s\nwant\n%s", got, want)
	}
	if st, err := os.Stat(h.Outputs["json"] + "/app.json"); err != nil || st.Mode().Perm() != 0o640 {
		t.Errorf("app.json: %v, mode %v, want 0640", err, st.Mode())
	}
	if !slices.Equal(res.Hooks(), []string{"reload"}) {
		t.Fatalf("hooks %v", res.Hooks())
	}
	res = h.Commit(h.Apply(h.Put("other.key", "still not mine")))
	if res.Changed() || len(res.Hooks()) != 0 {
		t.Fatalf("unrelated batch: changed %v hooks %v", res.Changed(), res.Hooks())
	}
	res = h.Commit(h.Apply(h.Put("app.feature", "on")))
	if res.Changed() || len(res.Hooks()) != 0 {
		t.Fatalf("same value again: changed %v hooks %v", res.Changed(), res.Hooks())
	}
	res = h.Commit(h.Apply(h.Delete("app.db.url")))
	if got, _ := h.Read("json", "app.json"); got != "{\n  \"feature\": \"on\"\n}\n" || len(res.Hooks()) != 1 {
		t.Fatalf("after delete %q, hooks %v", got, res.Hooks())
	}
	res = h.Commit(h.Apply(h.Delete("app.feature")))
	if got, _ := h.Read("json", "app.json"); got != "{}\n" || len(res.Hooks()) != 1 {
		t.Fatalf("after the last delete %q, hooks %v", got, res.Hooks())
	}
}

// TestJSONFileValuesReadBackExactly parses the rendered file with
// encoding/json: every UTF-8 value, control characters, quotes and
// backslashes included, reads back as it is in the bucket. A value that is
// not UTF-8, and a key that is the prefix itself, are logged and left out.
func TestJSONFileValuesReadBackExactly(t *testing.T) {
	values := map[string]string{
		"quote": `say "hi"`, "backslash": `C:\dir\`, "lines": "two\nlines\r\n", "tab": "a\tb",
		"control": "bell\a nul\x00 esc\x1b del\x7f", "unicode": "ünïcode ✓ \u2028", "empty": "", "html": "<a href='x'>&</a>",
	}
	var logs bytes.Buffer
	h := newJSONFile(t, map[string]string{"prefix": "v"}, &logs)
	var updates []host.Update
	for k, v := range values {
		updates = append(updates, h.Put("v."+k, v))
	}
	updates = append(updates, h.Put("v.binary", "\xff\xfe"), h.Put("v", "the prefix itself"))
	h.Commit(h.Apply(updates...))
	got, _ := h.Read("json", "config.json")
	var parsed map[string]string
	if err := json.Unmarshal([]byte(got), &parsed); err != nil {
		t.Fatalf("config.json is not JSON: %v\n%s", err, got)
	}
	want := map[string]string{}
	for k, v := range values {
		want["."+k] = v
	}
	if fmt.Sprint(parsed) != fmt.Sprint(want) {
		t.Errorf("read back\n%q\nwant\n%q", parsed, want)
	}
	for _, line := range []string{`skipping key \"v.binary\", whose value is not UTF-8 text`, `skipping key \"v\", which is the prefix itself`} {
		if !strings.Contains(logs.String(), line) {
			t.Errorf("the log lacks %q:\n%s", line, logs.String())
		}
	}
}

// TestJSONFileRendersAViewLargerThanAPage: a render reads the view a page
// at a time, and a value larger than the SDK's first page buffer grows it.
func TestJSONFileRendersAViewLargerThanAPage(t *testing.T) {
	h := newJSONFile(t, nil, nil)
	var want strings.Builder
	want.WriteString("{")
	for i := range 3000 {
		key, val := fmt.Sprintf("k%05d", i), strings.Repeat("x", 100+i%50)
		h.View.Put(host.Entry{Key: key, Value: []byte(val), Revision: uint64(i + 1)})
		fmt.Fprintf(&want, "\n  %q: %q,", key, val)
	}
	big := strings.Repeat("B", 300<<10)
	h.View.Put(host.Entry{Key: "zz", Value: []byte(big)})
	fmt.Fprintf(&want, "\n  \"zz\": %q\n}\n", big)
	res := h.Commit(h.Render())
	if len(res.Hooks()) != 0 {
		t.Fatalf("hooks %v without a configured hook", res.Hooks())
	}
	if got, _ := h.Read("json", "config.json"); got != want.String() {
		t.Fatalf("config.json: %d bytes, want %d", len(got), want.Len())
	}
}

// TestJSONFileRefusesBadConfig: every setting jsonfile reads is accepted;
// a key it does not read, or a bad mode or path, refuses the module when it
// loads, naming what is wrong.
func TestJSONFileRefusesBadConfig(t *testing.T) {
	wasm := plugintest.RustModule(t, jsonfileCrate)
	const reads = "; this plugin reads: hook, mode, output, path, prefix"
	checkLoads(t, wasm, "jsonfile", []loadCase{
		{map[string]string{"prefix": "a.", "output": "json", "path": "a/b.json", "mode": "600", "hook": "reload"}, ""},
		{nil, ""},
		{map[string]string{"prefx": "a."}, `jsonfile: unknown configuration key "prefx" (did you mean "prefix"?)` + reads},
		{map[string]string{"prefx": "a.", "x": "1"}, `jsonfile: unknown configuration keys "prefx" (did you mean "prefix"?), "x"` + reads},
		{map[string]string{"mode": "0999"}, `jsonfile: mode "0999" is not permission bits in octal, such as "0640"`},
		{map[string]string{"mode": "04755"}, `jsonfile: mode "04755" is not permission bits in octal`},
		{map[string]string{"mode": "+644"}, `jsonfile: mode "+644" is not permission bits in octal`},
		{map[string]string{"mode": "0"}, ""},
		{map[string]string{"path": "../etc/passwd"}, `jsonfile: path "../etc/passwd": component ..`},
	})
}

func newProbe(t *testing.T, cfg map[string]string) *harness.Harness {
	return harness.New(t, plugintest.RustModule(t, probeCrate), harness.Options{
		Watch:   "probe-watch",
		Outputs: []string{"out"},
		Hooks:   []string{"reload"},
		Plugin:  host.PluginConfig{Name: "probe", Config: cfg},
	})
}

// TestRustSDK drives every host function of the Rust SDK through the real
// host: the call's input, get, read_dir (paged), remove_file, hooks, a
// render's scan, and what a returned error and a panic report.
func TestRustSDK(t *testing.T) {
	h := newProbe(t, nil)
	h.View.Put(host.Entry{Key: "cfg.a", Value: []byte("alpha"), Revision: 1})
	for i := range 1500 { // more than one output_list page
		if err := os.WriteFile(fmt.Sprintf("%s/f%04d-%s", h.Outputs["out"], i, strings.Repeat("n", 200)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res := h.Commit(h.Apply(
		h.Put("get.a", "cfg.a"),
		h.Put("get.none", "cfg.none"),
		h.Put("list.root", ""),
		h.Put("list.missing", "no/such/dir"),
		h.Put("remove.there", "f0000-"+strings.Repeat("n", 200)),
		h.Put("remove.absent", "nothing"),
		h.Put("batch.x", "_"),
		h.Put("hook.r", "reload"),
	))
	for path, want := range map[string]string{
		"get/a": "alpha", "get/none": "absent", "remove/there": "true", "remove/absent": "false",
		"batch/x": "Apply probe-watch 8 [] 8", "list/missing": "",
	} {
		if got, _ := h.Read("out", path); got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
	list, _ := h.Read("out", "list/root")
	if lines := strings.Split(strings.TrimSuffix(list, "\n"), "\n"); len(lines) != 1500 ||
		lines[0] != "file f0000-"+strings.Repeat("n", 200) || lines[1499] != "file f1499-"+strings.Repeat("n", 200) {
		t.Errorf("list/root: %d lines, first %.20q, last %.20q", len(lines), lines[0], lines[len(lines)-1])
	}
	if !slices.Equal(res.Hooks(), []string{"reload"}) {
		t.Errorf("hooks %v", res.Hooks())
	}

	h.Commit(h.Render())
	if got, _ := h.Read("out", "scan/all"); !strings.HasPrefix(got, "batch.x=_\ncfg.a=alpha\nget.a=cfg.a\n") {
		t.Errorf("scan/all = %.60q", got)
	}

	if _, err := h.Apply(h.Put("fail.x", "it went wrong")); err == nil || !strings.Contains(err.Error(), "it went wrong") {
		t.Errorf("a returned error: %v", err)
	}
	_, err := h.Apply(h.Put("panic.x", "it blew up"))
	if !errors.Is(err, host.ErrTrap) || !strings.Contains(err.Error(), "it blew up") {
		t.Errorf("a panic: %v, want a trap with the panic's message", err)
	}
	if _, err := h.Apply(h.Put("hook.bad", "nosuchhook")); !errors.Is(err, host.ErrDenied) {
		t.Errorf("an undeclared hook: %v, want %v", err, host.ErrDenied)
	}
	// The instance that trapped was replaced, and _initialize ran again.
	h.Commit(h.Apply(h.Put("get.again", "cfg.a")))
	if got, _ := h.Read("out", "get/again"); got != "alpha" {
		t.Errorf("after a panic: get/again = %q", got)
	}
}

func TestRustSDKRefusesAtLoad(t *testing.T) {
	wasm := plugintest.RustModule(t, probeCrate)
	checkLoads(t, wasm, "probe", []loadCase{
		{map[string]string{"refuse": "no thanks"}, "no thanks"},
		// A panic is reported before the trap, which then refuses the
		// module as a reported error does.
		{map[string]string{"panic": "boom"}, "boom"},
		{map[string]string{"unusd": "1"}, `unknown configuration key "unusd" (did you mean "unused"?); this plugin reads: panic, refuse, unused`},
	})
}

// TestRustSDKUnitTests runs the SDK's own tests (cargo test, natively):
// the path rules, the "did you mean" suggestions, and the decoding of the
// ABI's worked example and of every truncation of it.
func TestRustSDKUnitTests(t *testing.T) {
	tc := plugintest.RequireRust(t)
	cmd := exec.Command(tc.Cargo, "test", "--offline", "--locked", "--quiet", "--target-dir", t.TempDir(),
		"--manifest-path", filepath.Join(plugintest.Root(t), "plugins/sdk/rust/Cargo.toml"))
	cmd.Env = append(tc.Env(), "RUSTFLAGS=-D warnings")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cargo test: %v\n%s", err, out)
	}
}

// TestRustSDKMatchesABI keeps the Rust SDK's declarations in step with
// plugins/abi, without needing Rust: the imports and their types, the
// status codes and the limits.
func TestRustSDKMatchesABI(t *testing.T) {
	sys, err := os.ReadFile("../sdk/rust/src/sys.rs")
	if err != nil {
		t.Fatal(err)
	}
	imports := map[string][2]string{}
	for _, m := range regexp.MustCompile(`(?s)pub fn (\w+)\(([^)]*)\) -> (i32|i64);`).FindAllStringSubmatch(string(sys), -1) {
		imports[m[1]] = [2]string{m[3], strings.TrimSuffix(strings.TrimSpace(m[2]), ",")}
	}
	checkHostFunctions(t, "sys.rs", imports, "i32", "i64")
	lib, err := os.ReadFile("../sdk/rust/src/lib.rs")
	if err != nil {
		t.Fatal(err)
	}
	codec, err := os.ReadFile("../sdk/rust/src/codec.rs")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		src, name string
		value     int
	}{
		{"lib.rs", "ABI_VERSION: i32", abi.Version},
		{"lib.rs", "OK: Status = Status", int(abi.OK)}, {"lib.rs", "UNCHANGED: Status = Status", int(abi.Unchanged)},
		{"lib.rs", "ERR_MEMORY: Status = Status", int(abi.ErrMemory)}, {"lib.rs", "ERR_INVALID: Status = Status", int(abi.ErrInvalid)},
		{"lib.rs", "ERR_NOT_FOUND: Status = Status", int(abi.ErrNotFound)}, {"lib.rs", "ERR_DENIED: Status = Status", int(abi.ErrDenied)},
		{"lib.rs", "ERR_LIMIT: Status = Status", int(abi.ErrLimit)}, {"lib.rs", "ERR_STATE: Status = Status", int(abi.ErrState)},
		{"lib.rs", "ERR_IO: Status = Status", int(abi.ErrIO)},
		{"lib.rs", "MAX_PATH_LEN: usize", abi.MaxPathLen}, {"lib.rs", "MAX_PATH_DEPTH: usize", abi.MaxPathDepth},
		{"lib.rs", "MAX_NAME_LEN: usize", abi.MaxNameLen},
		{"codec.rs", "RECORD_HEADER_SIZE: usize", abi.RecordHeaderSize}, {"codec.rs", "MAX_VERSION_LEN: usize", abi.MaxVersionLen},
	} {
		src := map[string][]byte{"lib.rs": lib, "codec.rs": codec}[c.src]
		m := regexp.MustCompile(regexp.QuoteMeta(c.name) + `\(?\s*=?\s*\(?(-?\d+)\)?;`).FindSubmatch(src)
		if m == nil {
			t.Errorf("%s lacks %s", c.src, c.name)
		} else if string(m[1]) != fmt.Sprint(c.value) {
			t.Errorf("%s: %s is %s, the ABI's %d", c.src, c.name, m[1], c.value)
		}
	}
}

// TestRustSDKUnderTheToolchainsInitialize builds the probe as Rust 1.100
// and later build a WASI cdylib: linked with wasi-libc's crt1-reactor.o,
// whose _initialize runs the module's constructors. An _initialize of the
// SDK's own would be a duplicate symbol there; the SDK makes the plugin
// and checks its configuration in slipstream_abi_version instead, which
// the host calls right after _initialize.
func TestRustSDKUnderTheToolchainsInitialize(t *testing.T) {
	tc := plugintest.RequireRust(t)
	crt := filepath.Join(tc.Sysroot, "lib", "rustlib", tc.Target, "lib", "self-contained", "crt1-reactor.o")
	if _, err := os.Stat(crt); err != nil {
		t.Fatalf("the toolchain has no crt1-reactor.o: %v", err)
	}
	wasm := plugintest.RustModule(t, probeCrate, "-C", "link-arg="+crt, "-C", "link-arg=--export=_initialize")
	rt := wazero.NewRuntime(t.Context())
	defer rt.Close(t.Context())
	cm, err := rt.CompileModule(t.Context(), wasm)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cm.ExportedFunctions()["_initialize"]; !ok {
		t.Fatal("the module linked with crt1-reactor.o exports no _initialize")
	}
	_, err = harness.Engine(t).Load(t.Context(), wasm, host.PluginConfig{Name: "probe", Config: map[string]string{"unusd": "1"}})
	if !errors.Is(err, host.ErrPluginFailed) || !strings.Contains(err.Error(), `unknown configuration key "unusd"`) {
		t.Errorf("load with a misspelt key = %v, want it refused", err)
	}
	h := harness.New(t, wasm, harness.Options{Outputs: []string{"out"}, Plugin: host.PluginConfig{Name: "probe"}})
	h.View.Put(host.Entry{Key: "cfg.a", Value: []byte("alpha")})
	h.Commit(h.Apply(h.Put("get.a", "cfg.a")))
	if got, _ := h.Read("out", "get/a"); got != "alpha" {
		t.Errorf("get/a = %q", got)
	}
}
