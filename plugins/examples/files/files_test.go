//go:build !wasip1

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/internal/plugintest"
	"github.com/slipstreamkv/slipstream/internal/plugintest/harness"
	"github.com/slipstreamkv/slipstream/plugins/abi"
	"github.com/slipstreamkv/slipstream/plugins/host"
	"github.com/slipstreamkv/slipstream/plugins/sdk"
)

func TestMain(m *testing.M) { plugintest.Main(m) }

// Unit tests of the logic, on the SDK's fake host.

func TestFakeApplyWritesAndRemoves(t *testing.T) {
	f := &sdk.Fake{Outputs: []string{"files"}, Hooks: []string{"reload"}, Config: map[string]string{"prefix": "cfg/", "hook": "reload", "mode": "640"}}
	res, err := f.Apply(plugin{},
		sdk.Update{Op: sdk.OpPut, Key: "cfg/app.json", Value: []byte(`{"a":1}`)},
		sdk.Update{Op: sdk.OpPut, Key: "cfg/nested/dir/x.conf", Value: []byte("x")},
		sdk.Update{Op: sdk.OpPut, Key: "other/ignored", Value: []byte("no")},
		sdk.Update{Op: sdk.OpPut, Key: "cfg/../escape", Value: []byte("no")},
	)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Paths("files"); !slices.Equal(got, []string{"app.json", "nested/dir/x.conf"}) {
		t.Fatalf("paths %v", got)
	}
	if file, _ := f.File("files", "app.json"); file.Mode != 0o640 || string(file.Data) != `{"a":1}` {
		t.Fatalf("app.json %+v", file)
	}
	if !slices.Equal(res.Hooks, []string{"reload"}) || len(res.Logs) != 1 || !strings.Contains(res.Logs[0], `skipping key "cfg/../escape"`) {
		t.Fatalf("result %+v", res)
	}
	res, err = f.Apply(plugin{}, sdk.Update{Op: sdk.OpDelete, Key: "cfg/app.json"}, sdk.Update{Op: sdk.OpPurge, Key: "cfg/never"})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Paths("files"); !slices.Equal(got, []string{"nested/dir/x.conf"}) || !slices.Equal(res.Hooks, []string{"reload"}) {
		t.Fatalf("after delete: paths %v, hooks %v", got, res.Hooks)
	}
	// Re-delivery of the same batch changes nothing and requests nothing.
	res, err = f.Apply(plugin{}, sdk.Update{Op: sdk.OpPut, Key: "cfg/nested/dir/x.conf", Value: []byte("x")})
	if err != nil || len(res.Hooks) != 0 || len(res.Changed) != 0 {
		t.Fatalf("re-delivery: %+v %v", res, err)
	}
}

func TestFakeRenderPrunes(t *testing.T) {
	f := &sdk.Fake{Outputs: []string{"files"}, PageEntries: 3}
	f.WriteFile("files", "stale.conf", []byte("old"), 0o644)
	f.WriteFile("files", "deep/stale", []byte("old"), 0o644)
	f.WriteFile("files", "keep", []byte("old"), 0o644)
	for i := range 10 {
		f.Set(fmt.Sprintf("k%d", i), []byte("v"))
	}
	f.Set("keep", []byte("new"))
	if _, err := f.Render(plugin{}); err != nil {
		t.Fatal(err)
	}
	want := []string{"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9", "keep"}
	if got := f.Paths("files"); !slices.Equal(got, want) {
		t.Fatalf("paths %v", got)
	}
	f.Config = map[string]string{"prune": "false"}
	f.WriteFile("files", "stale.conf", []byte("old"), 0o644)
	if _, err := f.Render(plugin{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.File("files", "stale.conf"); !ok {
		t.Fatal("prune=false removed a file")
	}
}

// TestFakeStrictFailsOnAKeyThatIsNotAPath: with strict, a key that cannot
// be a file fails the batch and the render, naming the key, instead of
// leaving the outputs short of the bucket while the watch looks ready.
func TestFakeStrictFailsOnAKeyThatIsNotAPath(t *testing.T) {
	f := &sdk.Fake{Outputs: []string{"files"}, Config: map[string]string{"prefix": "cfg/", "strict": "true"}}
	_, err := f.Apply(plugin{}, sdk.Update{Op: sdk.OpPut, Key: "cfg/ok", Value: []byte("v")}, sdk.Update{Op: sdk.OpPut, Key: "cfg/a//b", Value: []byte("v")})
	if err == nil || !strings.Contains(err.Error(), `key "cfg/a//b" is not a file path`) {
		t.Fatalf("apply with an unmappable key: %v", err)
	}
	if got := f.Paths("files"); len(got) != 0 {
		t.Fatalf("a failed batch wrote %v", got)
	}
	if _, err := f.Render(plugin{}); err == nil || !strings.Contains(err.Error(), `key "cfg/a//b"`) {
		t.Fatalf("render with an unmappable key in the view: %v", err)
	}
	// Deleting the key unsticks it; keys outside the prefix are never an error.
	if _, err := f.Apply(plugin{}, sdk.Update{Op: sdk.OpDelete, Key: "cfg/a//b"}, sdk.Update{Op: sdk.OpPut, Key: "other//x", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Render(plugin{}); err != nil {
		t.Fatal(err)
	}
	if got := f.Paths("files"); !slices.Equal(got, []string{"ok"}) {
		t.Fatalf("paths %v", got)
	}
}

func TestFakeBadConfig(t *testing.T) {
	for _, cfg := range []map[string]string{{"mode": "rwx"}, {"mode": "4755"}, {"prune": "maybe"}, {"strict": "yes please"}} {
		f := &sdk.Fake{Outputs: []string{"files"}, Config: cfg}
		if _, err := f.Render(plugin{}); err == nil {
			t.Errorf("config %v accepted", cfg)
		}
	}
}

// TestFakeRefusesUnknownConfigKeys: every setting the plugin reads is
// accepted, and a misspelt one refuses the configuration before any call,
// rather than writing every file with its key's prefix left in its path.
func TestFakeRefusesUnknownConfigKeys(t *testing.T) {
	f := &sdk.Fake{Outputs: []string{"out"}, Hooks: []string{"reload"}, Config: map[string]string{
		"output": "out", "prefix": "cfg/", "mode": "600", "hook": "reload", "prune": "false", "strict": "true",
	}}
	f.Set("cfg/a", []byte("v"))
	if _, err := f.Render(plugin{}); err != nil {
		t.Fatalf("every setting: %v", err)
	}
	f = &sdk.Fake{Outputs: []string{"files"}, Config: map[string]string{"prefx": "cfg/"}}
	f.Set("cfg/a", []byte("v"))
	_, err := f.Render(plugin{})
	const want = `files: unknown configuration key "prefx" (did you mean "prefix"?); this plugin reads: hook, mode, output, prefix, prune, strict`
	if err == nil || !strings.HasSuffix(err.Error(), want) || len(f.Paths("files")) != 0 {
		t.Fatalf("render with a misspelt prefix = %v, files %v; want it refused with %q", err, f.Paths("files"), want)
	}
}

// End-to-end tests of the built module on the real host.

// TestModuleRefusesUnknownConfigKeys: the host refuses to load the built
// module with a misspelt setting, with the plugin's message: a failure the
// plugin reported, not a crash.
func TestModuleRefusesUnknownConfigKeys(t *testing.T) {
	_, err := harness.Engine(t).Load(t.Context(), plugintest.Module(t, "plugins/examples/files"), host.PluginConfig{Name: "files", Config: map[string]string{"prefx": "etc/"}})
	const want = `plugin "files": instantiate: host: plugin reported failure: files: unknown configuration key "prefx" (did you mean "prefix"?); this plugin reads: `
	if !errors.Is(err, host.ErrPluginFailed) || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("load with a misspelt prefix = %v, want %q…", err, want)
	}
}

func newHarness(t *testing.T, cfg map[string]string) *harness.Harness {
	return harness.New(t, plugintest.Module(t, "plugins/examples/files"), harness.Options{
		Outputs: []string{"files"},
		Hooks:   []string{"reload"},
		// Rendering 2000 files creates 2000 files inside one call: seconds
		// on a slow disk under -race, near the default 5 s limit.
		Plugin: host.PluginConfig{Name: "files", Config: cfg, Timeout: time.Minute},
	})
}

func TestModuleMirrorsKeys(t *testing.T) {
	h := newHarness(t, map[string]string{"prefix": "etc/", "hook": "reload"})
	res := h.Commit(h.Apply(h.Put("etc/motd", "hello\n"), h.Put("etc/app/one.conf", "1"), h.Put("var/ignored", "x")))
	if !slices.Equal(res.Hooks(), []string{"reload"}) {
		t.Fatalf("hooks %v", res.Hooks())
	}
	if got := h.Files("files"); !slices.Equal(got, []string{"app/one.conf", "motd"}) {
		t.Fatalf("files %v", got)
	}
	res = h.Commit(h.Apply(h.Delete("etc/motd"), h.Put("etc/app/one.conf", "1")))
	if got := h.Files("files"); !slices.Equal(got, []string{"app/one.conf"}) || !slices.Equal(res.Hooks(), []string{"reload"}) {
		t.Fatalf("after delete: files %v hooks %v", got, res.Hooks())
	}
	res = h.Commit(h.Apply(h.Put("etc/app/one.conf", "1")))
	if len(res.Hooks()) != 0 {
		t.Fatalf("an unchanged file requested %v", res.Hooks())
	}
}

// TestModuleStrictFailsOnAKeyThatIsNotAPath: the built module on the real
// host refuses the batch with the key's name, and a delete of the key goes
// through.
func TestModuleStrictFailsOnAKeyThatIsNotAPath(t *testing.T) {
	h := newHarness(t, map[string]string{"prefix": "etc/", "strict": "true"})
	if _, err := h.Apply(h.Put("etc/ok", "1"), h.Put("etc/a/./b", "2")); err == nil || !strings.Contains(err.Error(), `key "etc/a/./b" is not a file path`) {
		t.Fatalf("apply: %v", err)
	}
	h.Commit(h.Apply(h.Put("etc/ok", "1"), h.Delete("etc/a/./b")))
	if got := h.Files("files"); !slices.Equal(got, []string{"ok"}) {
		t.Fatalf("files %v", got)
	}
}

// TestModulePruneLeavesNamesItCannotRemove: a stray file whose name breaks
// the path rules used to make every render fail (its removal was refused,
// and a refusal fails the call).
func TestModulePruneLeavesNamesItCannotRemove(t *testing.T) {
	h := newHarness(t, map[string]string{})
	out := h.Outputs["files"]
	for _, n := range append(strayNames, "stale") {
		p := filepath.Join(out, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("stray"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h.View.Put(host.Entry{Key: "k", Value: []byte("v"), Revision: 1})
	h.Commit(h.Render())
	for _, n := range strayNames {
		if _, err := os.Stat(filepath.Join(out, filepath.FromSlash(n))); err != nil {
			t.Errorf("stray %q: %v", n, err)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "stale")); !os.IsNotExist(err) {
		t.Errorf("stale file not pruned: %v", err)
	}
	if got, _ := h.Read("files", "k"); got != "v" {
		t.Errorf("k = %q", got)
	}
}

func TestModuleRendersAViewLargerThanAPage(t *testing.T) {
	h := newHarness(t, map[string]string{"prefix": "big/"})
	// 2000 keys of 1 KiB: about 2 MiB, many scan pages.
	for i := range 2000 {
		h.View.Put(host.Entry{Key: fmt.Sprintf("big/d%02d/f%04d", i%50, i), Value: []byte(strings.Repeat(string(rune('a'+i%26)), 1024)), Revision: uint64(i + 1)})
	}
	stale := filepath.Join(h.Outputs["files"], "d07", "stale")
	if err := os.MkdirAll(filepath.Dir(stale), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale, []byte("no key"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.Commit(h.Render())
	files := h.Files("files")
	if len(files) != 2000 || slices.Contains(files, "d07/stale") {
		t.Fatalf("%d files after render (stale kept: %v)", len(files), slices.Contains(files, "d07/stale"))
	}
	if got, _ := h.Read("files", "d01/f1001"); got != strings.Repeat("n", 1024) {
		t.Fatalf("d01/f1001 = %.10q…", got)
	}
	wantRenderUnchanged(t, h) // a second render over the same view
}

// TestModuleRendersMoreThanTenThousandKeysByDefault: with the host's default
// settings, a fresh output renders a bucket of 11,000 keys, one file per key,
// and prunes stale files (issue 7: 10,000 staged files was a hard limit, and
// the render failed forever).
func TestModuleRendersMoreThanTenThousandKeysByDefault(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 11,000 files")
	}
	const n = 11_000
	h := harness.New(t, plugintest.Module(t, "plugins/examples/files"), harness.Options{
		Outputs: []string{"files"},
		Plugin:  host.PluginConfig{Name: "files"}, // defaults, as the agent's
	})
	for i := range n {
		h.View.Put(host.Entry{Key: fmt.Sprintf("d%02d/key-%05d", i/1000, i), Value: fmt.Appendf(nil, "%d", i), Revision: uint64(i + 1)})
	}
	stale := filepath.Join(h.Outputs["files"], "d03", "stale")
	if err := os.MkdirAll(filepath.Dir(stale), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale, []byte("no key"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.Commit(h.Render())
	if files := h.Files("files"); len(files) != n || slices.Contains(files, "d03/stale") {
		t.Fatalf("%d files after render, want %d (stale kept: %v)", len(files), n, slices.Contains(files, "d03/stale"))
	}
	if got, _ := h.Read("files", "d10/key-10999"); got != "10999" {
		t.Fatalf("d10/key-10999 = %q", got)
	}
}

// wantRenderUnchanged fails the test unless a render stages nothing.
func wantRenderUnchanged(t *testing.T, h *harness.Harness) {
	t.Helper()
	res, err := h.Render()
	if err != nil {
		t.Fatal(err)
	}
	defer res.Discard()
	if res.Changed() {
		t.Fatalf("the render changed %d files", len(res.Staged()))
	}
}

// strayNames are names a file in the output may have that no key can map
// to: the host refuses to stage or remove them.
var strayNames = []string{"caf\xe9.conf", "bell\a", strings.Repeat("d/", abi.MaxPathDepth) + "deep"}

func TestFakePruneLeavesNamesItCannotRemove(t *testing.T) {
	f := &sdk.Fake{Outputs: []string{"files"}}
	for _, n := range strayNames {
		f.WriteFile("files", n, []byte("stray"), 0o644)
	}
	f.WriteFile("files", "stale", []byte("old"), 0o644)
	f.Set("k", []byte("v"))
	res, err := f.Render(plugin{})
	if err != nil {
		t.Fatal(err)
	}
	want := append([]string{"k"}, strayNames...)
	slices.Sort(want)
	if got := f.Paths("files"); !slices.Equal(got, want) {
		t.Fatalf("paths %q, want %q", got, want)
	}
	if n := len(res.Logs); n != len(strayNames) || !strings.Contains(res.Logs[0], "files: not pruning") {
		t.Fatalf("logs %q", res.Logs)
	}
}

// TestModuleReshapes: a key "a" deleted and a key "a/b" put in one batch
// turn the file "a" into a directory, in either order, and back; a render
// afterwards changes nothing. The batch [delete "a", put "a/b"] used to be
// refused ("a parent is not a directory") and delivered again forever.
func TestModuleReshapes(t *testing.T) {
	h := newHarness(t, map[string]string{"hook": "reload"})
	h.Commit(h.Apply(h.Put("a", "1")))
	res := h.Commit(h.Apply(h.Delete("a"), h.Put("a/b", "2")))
	if got := h.Files("files"); !slices.Equal(got, []string{"a/b"}) || !slices.Equal(res.Hooks(), []string{"reload"}) {
		t.Fatalf("files %v, hooks %v", got, res.Hooks())
	}
	wantRenderUnchanged(t, h)
	h.Commit(h.Apply(h.Put("a", "3"), h.Delete("a/b")))
	if got, _ := h.Read("files", "a"); got != "3" || !slices.Equal(h.Files("files"), []string{"a"}) {
		t.Fatalf("a = %q, files %v", got, h.Files("files"))
	}
	h.Commit(h.Apply(h.Put("a/c", "4"), h.Delete("a")))
	if got, _ := h.Read("files", "a/c"); got != "4" || !slices.Equal(h.Files("files"), []string{"a/c"}) {
		t.Fatalf("a/c = %q, files %v", got, h.Files("files"))
	}
}

// TestModuleRenderReshapes: a render converges when a stale file stands
// where a key needs a directory, or a stale directory where a key needs a
// file: the render writes, the prune removes what is in the way, and the
// call commits both.
func TestModuleRenderReshapes(t *testing.T) {
	h := newHarness(t, map[string]string{})
	out := h.Outputs["files"]
	for p, content := range map[string]string{"a": "stale", "d/x": "stale", "d/y/z": "stale"} {
		p = filepath.Join(out, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h.View.Put(host.Entry{Key: "a/b", Value: []byte("b"), Revision: 1})
	h.View.Put(host.Entry{Key: "d", Value: []byte("d"), Revision: 2})
	h.Commit(h.Render())
	if got := h.Files("files"); !slices.Equal(got, []string{"a/b", "d"}) {
		t.Fatalf("files %v", got)
	}
}

func TestFakeReshapes(t *testing.T) {
	f := &sdk.Fake{Outputs: []string{"files"}}
	steps := []struct {
		updates []sdk.Update
		want    []string
	}{
		{[]sdk.Update{{Op: sdk.OpPut, Key: "a", Value: []byte("1")}}, []string{"a"}},
		{[]sdk.Update{{Op: sdk.OpDelete, Key: "a"}, {Op: sdk.OpPut, Key: "a/b", Value: []byte("2")}}, []string{"a/b"}},
		{[]sdk.Update{{Op: sdk.OpPut, Key: "a", Value: []byte("3")}, {Op: sdk.OpDelete, Key: "a/b"}}, []string{"a"}},
		{[]sdk.Update{{Op: sdk.OpPut, Key: "a/c", Value: []byte("4")}, {Op: sdk.OpDelete, Key: "a"}}, []string{"a/c"}},
	}
	for i, st := range steps {
		if _, err := f.Apply(plugin{}, st.updates...); err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		if got := f.Paths("files"); !slices.Equal(got, st.want) {
			t.Fatalf("batch %d: paths %v, want %v", i, got, st.want)
		}
	}
	res, err := f.Render(plugin{})
	if err != nil || len(res.Changed) != 0 {
		t.Fatalf("render after the reshapes: %+v %v", res, err)
	}
	// A render converges over stale files in the way, in both directions.
	f = &sdk.Fake{Outputs: []string{"files"}}
	f.WriteFile("files", "a", []byte("stale"), 0o644)
	f.WriteFile("files", "d/x", []byte("stale"), 0o644)
	f.Set("a/b", []byte("b"))
	f.Set("d", []byte("d"))
	if _, err := f.Render(plugin{}); err != nil {
		t.Fatal(err)
	}
	if got := f.Paths("files"); !slices.Equal(got, []string{"a/b", "d"}) {
		t.Fatalf("paths after render %v", got)
	}
}
