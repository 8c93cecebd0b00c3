package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/internal/plugintest"
)

// filesModule writes the files example plugin into dir and returns its path.
func filesModule(t *testing.T, dir string) (string, []byte) {
	t.Helper()
	wasm := plugintest.Module(t, "plugins/examples/files")
	p := filepath.Join(dir, "files.wasm")
	if err := os.WriteFile(p, wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, wasm
}

func TestPluginHelp(t *testing.T) {
	for _, sub := range []string{"inspect", "compile", "run"} {
		code, out, errOut := runCmd(t, "plugin", sub, "-h")
		if code != exitOK || !strings.Contains(out, "usage: slipagent plugin "+sub) || errOut != "" {
			t.Errorf("plugin %s -h = %d, stdout %q, stderr %q", sub, code, out, errOut)
		}
	}
	if code, _, _ := runCmd(t, "plugin", "frobnicate"); code != exitUsage {
		t.Errorf("plugin frobnicate = %d, want %d", code, exitUsage)
	}
}

func TestPluginInspect(t *testing.T) {
	dir := t.TempDir()
	module, wasm := filesModule(t, dir)
	sum := sha256.Sum256(wasm)
	code, out, errOut := runCmd(t, "plugin", "inspect", module)
	for _, want := range []string{
		`sha256 = "` + hex.EncodeToString(sum[:]) + `"`,
		"ABI version: 1 (this host speaks 1)",
		"slipstream_apply(i32) -> i32",
		"slipstream.stage_write(i32, i32, i32, i32, i32, i32, i32) -> i32",
		"memory:      min ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
	if code != exitOK {
		t.Errorf("inspect = %d %q", code, errOut)
	}

	code, out, _ = runCmd(t, "plugin", "inspect", "-json", module)
	var got inspectJSON
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != exitOK {
		t.Fatalf("inspect -json = %d %v:\n%s", code, err, out)
	}
	if got.ABIVersion != 1 || got.Size != len(wasm) || got.Memory == nil || got.Memory.MinBytes != uint64(got.Memory.MinPages)*65536 || len(got.Exports) == 0 || got.Problem != "" {
		t.Errorf("inspect -json = %+v", got)
	}

	// A module that compiles but is no plugin is described, and refused.
	empty := filepath.Join(dir, "empty.wasm")
	os.WriteFile(empty, []byte("\x00asm\x01\x00\x00\x00"), 0o644)
	code, out, errOut = runCmd(t, "plugin", "inspect", empty)
	if code != exitFailure || !strings.Contains(out, `sha256 = "`) || !strings.Contains(errOut, "missing export slipstream_apply") {
		t.Errorf("inspect of an empty module = %d %q %q", code, out, errOut)
	}

	// A file that is not WebAssembly is named.
	notWasm := filepath.Join(dir, "agent.hcl")
	os.WriteFile(notWasm, []byte(`plugin "x" {}`), 0o644)
	if code, _, errOut := runCmd(t, "plugin", "inspect", notWasm); code != exitFailure || !strings.Contains(errOut, notWasm+" is not a WebAssembly module") {
		t.Errorf("inspect of a non-wasm file = %d %q", code, errOut)
	}
}

func TestPluginCompile(t *testing.T) {
	dir := t.TempDir()
	module, _ := filesModule(t, dir)
	cache := filepath.Join(dir, "cache")
	if code, out, errOut := runCmd(t, "plugin", "compile", "-cache-dir", cache, module); code != exitOK || !strings.Contains(out, "compiled into "+cache) {
		t.Fatalf("compile = %d %q %q", code, out, errOut)
	}
	if n := countFiles(t, cache); n == 0 {
		t.Errorf("compile left %s empty", cache)
	}

	// -config compiles every module into <data_dir>/cache.
	cfg := filepath.Join(dir, "agent.hcl")
	os.WriteFile(cfg, []byte("data_dir = \"state\"\nplugin \"files\" { module = \"files.wasm\" }\n"), 0o644)
	if code, out, errOut := runCmd(t, "plugin", "compile", "-config", cfg); code != exitOK || !strings.Contains(out, filepath.Join(dir, "state", "cache")) {
		t.Fatalf("compile -config = %d %q %q", code, out, errOut)
	}
	if n := countFiles(t, filepath.Join(dir, "state", "cache")); n == 0 {
		t.Errorf("compile -config left <data_dir>/cache empty")
	}

	if code, _, _ := runCmd(t, "plugin", "compile", "-config", cfg, module); code != exitUsage {
		t.Errorf("compile with both modules and -config = %d, want %d", code, exitUsage)
	}
	if code, _, errOut := runCmd(t, "plugin", "compile", "-cache-dir", cache, cfg); code != exitFailure || !strings.Contains(errOut, cfg+" is not a WebAssembly module") {
		t.Errorf("compile of a non-wasm file = %d %q", code, errOut)
	}
	// A cache others can write, which the agent would refuse, is not filled.
	if err := os.Chmod(cache, 0o777); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCmd(t, "plugin", "compile", "-cache-dir", cache, module); code != exitFailure || out != "" || !strings.Contains(errOut, "compile cache "+cache+" is writable by every user") {
		t.Errorf("compile into a cache others can write = %d %q %q, want 1 and a refusal", code, out, errOut)
	}
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return nil
	})
	return n
}

func TestPluginRun(t *testing.T) {
	dir := t.TempDir()
	module, _ := filesModule(t, dir)
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	batch := write("batch.json", `{"cursor": 3, "updates": [
		{"op": "put", "key": "f.a.conf", "value": "a = 1\nb = 2\n", "revision": 2},
		{"key": "f.logo", "value_base64": "aGVsbG8K", "revision": 3}]}`)
	view := write("view.json", `[{"key": "f.kept", "value": "kept\n", "revision": 1}]`)
	out := filepath.Join(dir, "out")

	code, stdout, errOut := runCmd(t, "plugin", "run", module, "-batch", batch, "-view", view, "-config", "prefix=f.", "-config", "hook=changed", "-out", out)
	if code != exitOK || !strings.Contains(stdout, "wrote "+filepath.Join(out, "files", "a.conf")) || !strings.Contains(stdout, "hook changed\n") {
		t.Fatalf("run -out = %d %q %q", code, stdout, errOut)
	}
	for name, want := range map[string]string{"a.conf": "a = 1\nb = 2\n", "logo": "hello\n"} {
		if b, err := os.ReadFile(filepath.Join(out, "files", name)); err != nil || string(b) != want {
			t.Errorf("%s = %q %v, want %q", name, b, err, want)
		}
	}

	// A call that writes nothing leaves no directory behind.
	none := filepath.Join(dir, "none", "out")
	code, stdout, errOut = runCmd(t, "plugin", "run", module, "-batch", batch, "-config", "prefix=nomatch.", "-out", none)
	if code != exitOK || stdout != "no changes\n" {
		t.Fatalf("run -out of a batch the plugin ignores = %d %q %q, want \"no changes\"", code, stdout, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "none")); !os.IsNotExist(err) {
		t.Errorf("a call that wrote nothing left its output directory (%v)", err)
	}

	// The same call again, as a diff: the files are there already.
	code, stdout, errOut = runCmd(t, "plugin", "run", module, "-batch", batch, "-view", view, "-config", "prefix=f.", "-config", "hook=changed", "-out", out, "-diff")
	if code != exitOK || stdout != "no changes\n" {
		t.Errorf("run -diff of a call already committed = %d %q %q, want \"no changes\"", code, stdout, errOut)
	}

	// A mode alone changes: a line says so, as no content diff can.
	code, stdout, errOut = runCmd(t, "plugin", "run", module, "-batch", batch, "-view", view, "-config", "prefix=f.", "-config", "hook=changed", "-config", "mode=0600", "-out", out, "-diff")
	if code != exitOK || !strings.Contains(stdout, "mode of files/a.conf changes: 0644 -> 0600\n") || strings.Contains(stdout, "---") {
		t.Errorf("run -diff of a mode change = %d %q %q, want the mode line and no content diff", code, stdout, errOut)
	}

	// -diff against what -out holds writes nothing.
	batch2 := write("batch2.json", `{"updates": [
		{"key": "f.a.conf", "value": "a = 1\nb = 3\n", "revision": 5},
		{"op": "delete", "key": "f.logo", "revision": 6}]}`)
	code, stdout, errOut = runCmd(t, "plugin", "run", module, "-batch", batch2, "-config", "prefix=f.", "-out", out, "-diff")
	want := "--- a/files/a.conf\n+++ b/files/a.conf\n@@ -1,2 +1,2 @@\n a = 1\n-b = 2\n+b = 3\n" +
		"--- a/files/logo\n+++ /dev/null\n@@ -1 +0,0 @@\n-hello\n"
	if code != exitOK || stdout != want {
		t.Errorf("run -diff = %d, stderr %q, stdout:\n%s\nwant:\n%s", code, errOut, stdout, want)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "files", "a.conf")); string(b) != "a = 1\nb = 2\n" {
		t.Errorf("-diff changed a.conf to %q", b)
	}
	if _, err := os.Stat(filepath.Join(out, "files", "logo")); err != nil {
		t.Errorf("-diff removed logo: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(out, "files")); len(entries) != 2 {
		t.Errorf("-diff left files behind in the output: %v", entries)
	}

	// A render (-full) of a view given as an object, into a named output.
	obj := write("view2.json", `{"f.x": "x\n"}`)
	out2 := filepath.Join(dir, "out2")
	code, stdout, errOut = runCmd(t, "plugin", "run", module, "-full", "-view", obj, "-config", "prefix=f.", "-output", "files="+out2, "-diff")
	if code != exitOK || stdout != "--- /dev/null\n+++ b/files/x\n@@ -0,0 +1 @@\n+x\n" {
		t.Errorf("run -full -diff = %d %q %q", code, stdout, errOut)
	}
	// Every output given its directory: the call commits there, no -out.
	code, stdout, errOut = runCmd(t, "plugin", "run", module, "-full", "-view", obj, "-config", "prefix=f.", "-output", "files="+out2)
	if b, err := os.ReadFile(filepath.Join(out2, "x")); code != exitOK || string(b) != "x\n" || stdout != "wrote "+filepath.Join(out2, "x")+"\n" {
		t.Errorf("run -output files=DIR = %d %q %q; x = %q %v", code, stdout, errOut, b, err)
	}
	// An output without one needs -out (or -diff).
	code, _, errOut = runCmd(t, "plugin", "run", module, "-full", "-view", obj, "-config", "prefix=f.", "-output", "files="+out2, "-output", "other")
	if code != exitUsage || !strings.Contains(errOut, "-output NAME=DIR for every output") {
		t.Errorf("run with an output and neither -out nor -diff = %d %q, want %d", code, errOut, exitUsage)
	}

	// A plugin writing an undeclared output fails, saying how to declare it.
	code, _, errOut = runCmd(t, "plugin", "run", module, "-batch", batch, "-config", "prefix=f.", "-output", "other", "-diff")
	if code != exitFailure || !strings.Contains(errOut, `output "files" is not declared`) || !strings.Contains(errOut, "-output NAME") {
		t.Errorf("run with an undeclared output = %d %q", code, errOut)
	}

	// Bad input files are named.
	bad := write("bad.json", `{"updates": [{"key": "k", "valeu": "v"}]}`)
	if code, _, errOut := runCmd(t, "plugin", "run", module, "-batch", bad, "-diff"); code != exitFailure || !strings.Contains(errOut, bad) || !strings.Contains(errOut, "valeu") {
		t.Errorf("run with a misspelt field = %d %q", code, errOut)
	}
}

// TestPluginRunInputErrors checks that a bad batch or view file is refused
// with an error naming the file, the record (index and key) and what is
// wrong in the file's terms, and that nothing is written.
func TestPluginRunInputErrors(t *testing.T) {
	dir := t.TempDir()
	module, _ := filesModule(t, dir)
	keyWords := "invalid key: a key is ASCII letters, digits and - / _ = ."
	for _, tc := range []struct {
		name, flag, content string
		want                []string
	}{
		{"bad base64", "-batch", `{"updates": [{"key": "f.a", "value": "a"}, {"key": "f.b", "value_base64": "!!"}]}`,
			[]string{`update 1 (key "f.b"): value_base64 is not standard base64`}},
		{"batch key with a space", "-batch", `{"updates": [{"key": "f.a b", "value": "x"}]}`,
			[]string{`update 0 (key "f.a b"): ` + keyWords}},
		{"batch key with an empty token", "-batch", `{"updates": [{"op": "delete", "key": "f..a"}]}`,
			[]string{`update 0 (key "f..a"): ` + keyWords}},
		{"batch cursor of the wrong type", "-batch", `{"cursor": "3", "updates": []}`,
			[]string{`cursor is a JSON string, want a whole number of 0 or more`}},
		{"batch update of the wrong type", "-batch", `{"updates": [3]}`,
			[]string{`update 0: the update is a JSON number, want an object`}},
		{"batch negative revision", "-batch", `{"updates": [{"key": "f.a", "revision": -1}]}`,
			[]string{`update 0 (key "f.a"): revision is a JSON number -1, want a whole number of 0 or more`}},
		{"view value of the wrong type", "-view", `[{"key": "f.a", "value": "a"}, {"key": "f.b", "value": 3}]`,
			[]string{`entry 1 (key "f.b"): value is a JSON number, want a string`}},
		{"view key with a space", "-view", `[{"key": "f.a b", "value": "x"}]`,
			[]string{`entry 0 (key "f.a b"): ` + keyWords}},
		{"view object value of the wrong type", "-view", `{"f.a": "a", "f.b": 3}`,
			[]string{`entry 1 (key "f.b"): value is a JSON number, want a string`}},
		{"view object key with a space", "-view", `{"f.a": "a", "f.a b": "x"}`,
			[]string{`entry 1 (key "f.a b"): ` + keyWords}},
		{"view of neither form", "-view", `"f.a"`,
			[]string{`want a list of entries or an object of key to string value`}},
		{"batch syntax error", "-batch", "{\"updates\": [\n  {\"key\": \"f.a\"},,\n]}",
			[]string{`line 2, column 18: invalid character ','`}},
		{"truncated batch", "-batch", `{"updates": [{"key": "f.a"}`,
			[]string{`the JSON ends before its value does (a truncated file?)`}},
		{"view object key syntax error", "-view", "{\n  \"f.a\": \"x\",\n  \"b\\q\": \"y\"\n}",
			[]string{`line 3, column 6: invalid character 'q' in string escape code`}},
		{"view object syntax error", "-view", "{\"f.a\": \"a\",\n \"f.b\": \"b\" \"f.c\": \"c\"}",
			[]string{`line 2, column 13: invalid character '"' after object key:value pair`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "input.json")
			if err := os.WriteFile(file, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "out")
			code, stdout, errOut := runCmd(t, "plugin", "run", module, "-full", tc.flag, file, "-config", "prefix=f.", "-out", out)
			if code != exitFailure || stdout != "" {
				t.Errorf("plugin run = %d, stdout %q, stderr %q; want %d and no output", code, stdout, errOut, exitFailure)
			}
			for _, want := range append(tc.want, file+": ") {
				if !strings.Contains(errOut, want) {
					t.Errorf("stderr %q lacks %q", errOut, want)
				}
			}
			for _, goWords := range []string{"main.", "Go value", "Go struct", "uint64", "illegal base64"} {
				if strings.Contains(errOut, goWords) {
					t.Errorf("stderr %q speaks Go (%q)", errOut, goWords)
				}
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("a refused input left %s (%v)", out, err)
			}
		})
	}
}

// TestPluginRunFromBucket renders the view of a live bucket.
func TestPluginRunFromBucket(t *testing.T) {
	srv := natstest.Run(t)
	dir := t.TempDir()
	module, _ := filesModule(t, dir)
	for key, value := range map[string]string{"files.a.conf": "a\n", "files.b.conf": "b\n", "other": "no\n"} {
		if code, _, errOut := runCmd(t, "kv", "-server", srv.URL(), "put", "app", key, value); code != exitOK {
			t.Fatalf("kv put = %d %q", code, errOut)
		}
	}
	code, out, errOut := runCmd(t, "plugin", "run", module, "-full", "-server", srv.URL(), "-bucket", "app", "-prefix", "files.", "-config", "prefix=files.", "-diff")
	want := "--- /dev/null\n+++ b/files/a.conf\n@@ -0,0 +1 @@\n+a\n--- /dev/null\n+++ b/files/b.conf\n@@ -0,0 +1 @@\n+b\n"
	if code != exitOK || out != want {
		t.Errorf("run -bucket = %d, stderr %q, stdout:\n%s\nwant:\n%s", code, errOut, out, want)
	}
	if code, _, errOut := runCmd(t, "plugin", "run", module, "-full", "-server", srv.URL(), "-bucket", "nosuch", "-diff"); code != exitNotFound || !strings.Contains(errOut, "nosuch") {
		t.Errorf("run -bucket of a missing bucket = %d %q, want %d", code, errOut, exitNotFound)
	}
}
