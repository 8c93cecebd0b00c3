//go:build !wasip1

package sdk_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/slipstreamkv/slipstream/plugins/abi"
	"github.com/slipstreamkv/slipstream/plugins/sdk"
)

// funcs adapts two functions to sdk.Plugin.
type funcs struct {
	apply, render func(h *sdk.Host, b *sdk.Batch) error
}

func (p funcs) Apply(h *sdk.Host, b *sdk.Batch) error  { return p.apply(h, b) }
func (p funcs) Render(h *sdk.Host, b *sdk.Batch) error { return p.render(h, b) }

func TestApplyDecodesTheBatch(t *testing.T) {
	f := &sdk.Fake{Watch: "routes"}
	var got *sdk.Batch
	p := funcs{apply: func(_ *sdk.Host, b *sdk.Batch) error { got = b; return nil }}
	_, err := f.Apply(p,
		sdk.Update{Op: sdk.OpPut, Key: "a", Value: []byte("1"), Version: []byte{0, 0, 0, 0, 0, 0, 0, 1}},
		sdk.Update{Op: sdk.OpPut, Key: "b", Value: []byte{}},
		sdk.Update{Op: sdk.OpDelete, Key: "a"},
		sdk.Update{Op: sdk.OpPurge, Key: "c", Revision: 10},
	)
	if err != nil {
		t.Fatal(err)
	}
	if got.Render || got.Watch != "routes" || got.Cursor.Revision != 10 || len(got.Updates) != 4 {
		t.Fatalf("batch = %+v", got)
	}
	u := got.Updates
	if u[0].Op != sdk.OpPut || u[0].Key != "a" || string(u[0].Value) != "1" || u[0].Revision != 1 || !bytes.Equal(u[0].Version, []byte{0, 0, 0, 0, 0, 0, 0, 1}) {
		t.Errorf("update 0 = %+v", u[0])
	}
	if u[1].Value == nil || len(u[1].Value) != 0 {
		t.Errorf("empty put value = %#v, want empty non-nil", u[1].Value)
	}
	if !u[2].IsRemoval() || u[2].Value != nil || u[3].Op != sdk.OpPurge || u[3].Revision != 10 {
		t.Errorf("removals = %+v %+v", u[2], u[3])
	}
}

func TestRenderSeesTheWholeViewThroughPages(t *testing.T) {
	f := &sdk.Fake{PageEntries: 7}
	const n = 500
	for i := range n {
		f.Set(fmt.Sprintf("k.%04d", i), []byte(strings.Repeat("v", i)))
	}
	f.Set("other", []byte("x"))
	big := bytes.Repeat([]byte{'B'}, 200<<10) // larger than the SDK's first scan buffer
	f.Set("k.big", big)
	var keys []string
	p := funcs{render: func(h *sdk.Host, b *sdk.Batch) error {
		if !b.Render || len(b.Updates) != 0 {
			return fmt.Errorf("render batch %+v", b)
		}
		for e, err := range h.Scan("k.") {
			if err != nil {
				return err
			}
			if e.Key == "k.big" && !bytes.Equal(e.Value, big) {
				return fmt.Errorf("big value of %d bytes", len(e.Value))
			}
			keys = append(keys, e.Key)
		}
		return nil
	}}
	if _, err := f.Render(p); err != nil {
		t.Fatal(err)
	}
	if len(keys) != n+1 || !slices.IsSorted(keys) || keys[n] != "k.big" {
		t.Fatalf("scanned %d keys (sorted %v), last %q", len(keys), slices.IsSorted(keys), keys[len(keys)-1])
	}
}

func TestScanStopsEarly(t *testing.T) {
	f := &sdk.Fake{PageEntries: 2}
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		f.Set(k, []byte(k))
	}
	var keys []string
	_, err := f.Render(sdk.RenderFunc(func(h *sdk.Host, _ *sdk.Batch) error {
		for e := range h.Scan("") {
			keys = append(keys, e.Key)
			if len(keys) == 3 {
				break
			}
		}
		return nil
	}))
	if err != nil || !slices.Equal(keys, []string{"a", "b", "c"}) {
		t.Fatalf("keys %v, err %v", keys, err)
	}
}

func TestGetAndConfig(t *testing.T) {
	f := &sdk.Fake{Config: map[string]string{"greeting": "hello", "empty": ""}}
	f.Set("present", []byte("value"))
	_, err := f.Render(sdk.RenderFunc(func(h *sdk.Host, _ *sdk.Batch) error {
		e, ok, err := h.Get("present")
		if err != nil || !ok || string(e.Value) != "value" || e.Revision == 0 {
			return fmt.Errorf("get present = %+v %v %v", e, ok, err)
		}
		if _, ok, err := h.Get("absent"); ok || err != nil {
			return fmt.Errorf("get absent = %v %v", ok, err)
		}
		if v, ok := h.Config("greeting"); v != "hello" || !ok {
			return fmt.Errorf("config greeting = %q %v", v, ok)
		}
		if v, ok := h.Config("empty"); v != "" || !ok {
			return fmt.Errorf("config empty = %q %v", v, ok)
		}
		if _, ok := h.Config("missing"); ok {
			return errors.New("config missing found")
		}
		if keys, err := h.ConfigKeys(); !slices.Equal(keys, []string{"empty", "greeting"}) || err != nil {
			return fmt.Errorf("config keys = %q %v", keys, err)
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
}

func TestWritesCommitOnlyOnSuccess(t *testing.T) {
	f := &sdk.Fake{Outputs: []string{"out"}, Hooks: []string{"reload"}}
	write := func(content string, fail bool) (*sdk.FakeResult, error) {
		return f.Render(sdk.RenderFunc(func(h *sdk.Host, _ *sdk.Batch) error {
			changed, err := h.WriteFile("out", "dir/a.conf", []byte(content), 0o640)
			if err != nil {
				return err
			}
			if changed {
				if err := h.RequestHook("reload"); err != nil {
					return err
				}
				if err := h.RequestHook("reload"); err != nil {
					return err
				}
			}
			if fail {
				return errors.New("boom")
			}
			return nil
		}))
	}
	res, err := write("v1", false)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Hooks, []string{"reload"}) || !slices.Equal(res.Changed, []string{"out:dir/a.conf"}) {
		t.Fatalf("result %+v", res)
	}
	if file, _ := f.File("out", "dir/a.conf"); string(file.Data) != "v1" || file.Mode != 0o640 {
		t.Fatalf("file %+v", file)
	}
	res, err = write("v1", false)
	if err != nil || len(res.Hooks) != 0 || len(res.Changed) != 0 {
		t.Fatalf("unchanged write: %+v %v", res, err)
	}
	if _, err := write("v2", true); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("failing call: err = %v", err)
	}
	if file, _ := f.File("out", "dir/a.conf"); string(file.Data) != "v1" {
		t.Fatalf("a failed call committed %q", file.Data)
	}
}

func TestRefusedRequestFailsTheCall(t *testing.T) {
	tests := []struct {
		name string
		do   func(h *sdk.Host) error
		want abi.Status
	}{
		{"undeclared output", func(h *sdk.Host) error { _, err := h.WriteFile("nope", "a", nil, 0); return err }, abi.ErrDenied},
		{"dotdot", func(h *sdk.Host) error { _, err := h.WriteFile("out", "../a", nil, 0); return err }, abi.ErrInvalid},
		{"absolute", func(h *sdk.Host) error { _, err := h.RemoveFile("out", "/etc/passwd"); return err }, abi.ErrInvalid},
		{"setuid", func(h *sdk.Host) error { _, err := h.WriteFile("out", "a", nil, 0o4755); return err }, abi.ErrInvalid},
		{"too deep", func(h *sdk.Host) error {
			_, err := h.WriteFile("out", strings.Repeat("d/", abi.MaxPathDepth)+"f", nil, 0)
			return err
		}, abi.ErrInvalid},
		{"undeclared hook", func(h *sdk.Host) error { return h.RequestHook("restart") }, abi.ErrDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &sdk.Fake{Outputs: []string{"out"}, Hooks: []string{"reload"}}
			var got error
			_, err := f.Render(sdk.RenderFunc(func(h *sdk.Host, _ *sdk.Batch) error {
				if _, err := h.WriteFile("out", "ok", []byte("x"), 0); err != nil {
					return err
				}
				got = tt.do(h)
				return nil // ignoring the refusal must not help
			}))
			if !errors.Is(got, tt.want) {
				t.Fatalf("request error = %v, want %v", got, tt.want)
			}
			if err == nil {
				t.Fatal("the call succeeded despite a refused request")
			}
			if len(f.Paths("out")) != 0 {
				t.Fatalf("files committed: %v", f.Paths("out"))
			}
		})
	}
}

func TestPanicIsReported(t *testing.T) {
	f := &sdk.Fake{}
	_, err := f.Render(sdk.RenderFunc(func(*sdk.Host, *sdk.Batch) error { panic("kaboom") }))
	if err == nil || !strings.Contains(err.Error(), "status 2") || !strings.Contains(err.Error(), "panic: kaboom") {
		t.Fatalf("err = %v", err)
	}
}

func TestReadDirAndRemove(t *testing.T) {
	f := &sdk.Fake{Outputs: []string{"out"}, PageEntries: 1}
	f.WriteFile("out", "a.conf", []byte("a"), 0o644)
	f.WriteFile("out", "sub/b.conf", []byte("b"), 0o644)
	f.WriteFile("out", "sub/deeper/c.conf", []byte("c"), 0o644)
	var root, sub []string
	res, err := f.Render(sdk.RenderFunc(func(h *sdk.Host, _ *sdk.Batch) error {
		for e, err := range h.ReadDir("out", "") {
			if err != nil {
				return err
			}
			root = append(root, fmt.Sprintf("%s:%v", e.Name, e.IsDir()))
		}
		for e, err := range h.ReadDir("out", "sub") {
			if err != nil {
				return err
			}
			sub = append(sub, e.Name)
		}
		for _, err := range h.ReadDir("out", "missing") {
			return fmt.Errorf("missing dir yielded %v", err)
		}
		var fileErr error
		for _, err := range h.ReadDir("out", "a.conf") {
			fileErr = err
		}
		if !errors.Is(fileErr, abi.ErrInvalid) {
			return fmt.Errorf("listing a file: %v, want ErrInvalid as the host answers", fileErr)
		}
		if changed, err := h.RemoveFile("out", "sub/b.conf"); !changed || err != nil {
			return fmt.Errorf("remove = %v %v", changed, err)
		}
		if changed, err := h.RemoveFile("out", "never.conf"); changed || err != nil {
			return fmt.Errorf("remove missing = %v %v", changed, err)
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(root, []string{"a.conf:false", "sub:true"}) || !slices.Equal(sub, []string{"b.conf", "deeper"}) {
		t.Fatalf("root %v sub %v", root, sub)
	}
	if !slices.Equal(res.Changed, []string{"out:sub/b.conf"}) || !slices.Equal(f.Paths("out"), []string{"a.conf", "sub/deeper/c.conf"}) {
		t.Fatalf("changed %v, paths %v", res.Changed, f.Paths("out"))
	}
}

func TestLogs(t *testing.T) {
	f := &sdk.Fake{}
	res, err := f.Render(sdk.RenderFunc(func(h *sdk.Host, _ *sdk.Batch) error {
		h.Log(sdk.LevelWarn, "careful")
		h.Logf(sdk.LevelDebug, "n=%d", 3)
		return nil
	}))
	if err != nil || !slices.Equal(res.Logs, []string{"WARN careful", "DEBUG n=3"}) {
		t.Fatalf("logs %v, err %v", res.Logs, err)
	}
}

func TestIterationsNest(t *testing.T) {
	f := &sdk.Fake{PageEntries: 1, Outputs: []string{"out"}}
	for _, k := range []string{"a", "b", "c"} {
		f.Set(k, []byte(k))
		f.WriteFile("out", k+"/x", nil, 0o644)
	}
	var pairs, dirs []string
	_, err := f.Render(sdk.RenderFunc(func(h *sdk.Host, _ *sdk.Batch) error {
		for outer, err := range h.Scan("") {
			if err != nil {
				return err
			}
			for inner, err := range h.Scan("") {
				if err != nil {
					return err
				}
				pairs = append(pairs, outer.Key+inner.Key)
			}
		}
		for d, err := range h.ReadDir("out", "") {
			if err != nil {
				return err
			}
			for e, err := range h.ReadDir("out", d.Name) {
				if err != nil {
					return err
				}
				dirs = append(dirs, d.Name+"/"+e.Name)
			}
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(pairs) != 9 || pairs[8] != "cc" || !slices.Equal(dirs, []string{"a/x", "b/x", "c/x"}) {
		t.Fatalf("pairs %v dirs %v", pairs, dirs)
	}
}

// TestScanTransientYieldsWhatScanYields reads a view of many pages and a
// value larger than the first buffer with ScanTransient, in two calls (the
// buffer is kept across them), nested in itself, and after a loop that
// stopped early.
func TestScanTransientYieldsWhatScanYields(t *testing.T) {
	f := &sdk.Fake{PageEntries: 3}
	var want []string
	for i := range 50 {
		k := fmt.Sprintf("k.%03d", i)
		f.Set(k, []byte(strings.Repeat(k, i)))
		want = append(want, k+"="+strings.Repeat(k, i))
	}
	big := strings.Repeat("B", 200<<10) // larger than the SDK's first scan buffer
	f.Set("k.big", []byte(big))
	want = append(want, "k.big="+big)
	transient := func(h *sdk.Host, prefix string) ([]string, error) {
		var got []string
		for e, err := range h.ScanTransient(prefix) {
			if err != nil {
				return nil, err
			}
			got = append(got, e.Key+"="+string(e.Value)) // copies
		}
		return got, nil
	}
	for call := range 2 {
		var got []string
		var pairs int
		_, err := f.Render(sdk.RenderFunc(func(h *sdk.Host, _ *sdk.Batch) error {
			for range h.ScanTransient("") {
				break // leaves the buffer free for the next loop
			}
			var err error
			if got, err = transient(h, "k."); err != nil {
				return err
			}
			for outer, err := range h.ScanTransient("k.00") {
				if err != nil {
					return err
				}
				key := strings.Clone(outer.Key)
				inner, err := transient(h, "k.00")
				if err != nil {
					return err
				}
				if outer.Key != key || len(inner) != 10 {
					return fmt.Errorf("nested: outer %q became %q, inner %d entries", key, outer.Key, len(inner))
				}
				pairs += len(inner)
			}
			return nil
		}))
		if err != nil {
			t.Fatalf("call %d: %v", call, err)
		}
		if !slices.Equal(got, want) || pairs != 100 {
			t.Fatalf("call %d: %d entries (equal %v), %d nested pairs", call, len(got), slices.Equal(got, want), pairs)
		}
	}
}

// TestScanPagesYieldsTheHostsPages reads a view of many pages with
// ScanPages: every page as the host sent it, the entries in order with
// their revisions and versions, a page nested in another (its own buffers),
// and a loop stopped early.
func TestScanPagesYieldsTheHostsPages(t *testing.T) {
	f := &sdk.Fake{PageEntries: 4}
	var want []string
	for i := range 10 {
		k := fmt.Sprintf("k%02d", i)
		f.Set(k, []byte("v"+k))
		want = append(want, k+"=v"+k)
	}
	_, err := f.Render(sdk.RenderFunc(func(h *sdk.Host, _ *sdk.Batch) error {
		var got []string
		var sizes []int
		for page, err := range h.ScanPages("k") {
			if err != nil {
				return err
			}
			sizes = append(sizes, len(page))
			first := strings.Clone(page[0].Key)
			var inner int
			for p, err := range h.ScanPages("k0") {
				if err != nil {
					return err
				}
				inner += len(p)
			}
			if page[0].Key != first || inner != 10 {
				return fmt.Errorf("nested: page starting %q now starts %q, inner scan %d entries", first, page[0].Key, inner)
			}
			for _, e := range page {
				if e.Revision == 0 {
					return fmt.Errorf("%s: no revision", e.Key)
				}
				got = append(got, e.Key+"="+string(e.Value))
			}
		}
		if !slices.Equal(got, want) || !slices.Equal(sizes, []int{4, 4, 2}) {
			return fmt.Errorf("got %v in pages of %v", got, sizes)
		}
		for range h.ScanPages("") {
			break
		}
		for page, err := range h.ScanPages("nothing") {
			return fmt.Errorf("a prefix no key has: page %v, %v", page, err)
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
}

func TestKeysAndVersionsOutliveTheCall(t *testing.T) {
	f := &sdk.Fake{}
	var kept []sdk.Update
	p := funcs{apply: func(_ *sdk.Host, b *sdk.Batch) error {
		kept = append(kept, b.Updates...)
		return nil
	}}
	if _, err := f.Apply(p, sdk.Update{Op: sdk.OpPut, Key: "first-key", Value: []byte("v1"), Version: []byte{1, 2, 3}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Apply(p, sdk.Update{Op: sdk.OpPut, Key: "other-key", Value: []byte("v2"), Version: []byte{9, 9, 9}}); err != nil {
		t.Fatal(err)
	}
	if kept[0].Key != "first-key" || !bytes.Equal(kept[0].Version, []byte{1, 2, 3}) {
		t.Fatalf("the first call's update became %q %v", kept[0].Key, kept[0].Version)
	}
}

// TestUpdatesCarryNothingFromThePreviousCall: the SDK reuses its []Update
// across calls, so every field of every update must be set anew. A delete
// or a put without a version must not show the previous call's Value or
// Version.
func TestUpdatesCarryNothingFromThePreviousCall(t *testing.T) {
	f := &sdk.Fake{}
	var got []sdk.Update
	p := funcs{apply: func(_ *sdk.Host, b *sdk.Batch) error {
		got = got[:0]
		for _, u := range b.Updates {
			u.Value = bytes.Clone(u.Value) // values are valid only during the call
			got = append(got, u)
		}
		return nil
	}}
	if _, err := f.Apply(p,
		sdk.Update{Op: sdk.OpPut, Key: "a", Value: []byte("secret"), Version: []byte{0xaa, 0xbb}},
		sdk.Update{Op: sdk.OpPut, Key: "b", Value: []byte("other"), Version: []byte{0xcc}},
	); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Apply(p, sdk.Update{Op: sdk.OpDelete, Key: "a"}, sdk.Update{Op: sdk.OpPut, Key: "c", Value: []byte{}}); err != nil {
		t.Fatal(err)
	}
	if u := got[0]; u.Op != sdk.OpDelete || u.Value != nil || u.Version != nil {
		t.Errorf("delete decoded as %+v", u)
	}
	if u := got[1]; u.Op != sdk.OpPut || u.Value == nil || len(u.Value) != 0 || u.Version != nil {
		t.Errorf("put without a version decoded as %+v", u)
	}
}

// TestFakeRefusesFileDirectoryConflicts: like the host, the fake refuses to
// stage a path that would be, once the call commits, both a file and a
// directory, and fails a call that writes below a file or onto a directory
// it does not remove, so plugin unit tests meet the failures the host would
// give.
func TestFakeRefusesFileDirectoryConflicts(t *testing.T) {
	tests := []struct {
		name    string
		steps   []func(h *sdk.Host) error
		refused bool // the last request is refused; otherwise the call fails when it returns
	}{
		{"below a file on disk", steps(write("file/x")), false},
		{"onto a directory on disk", steps(write("dir")), false},
		{"onto a directory on disk, removing only part of it", steps(remove("dir/x"), write("dir")), false},
		{"remove a directory on disk", steps(remove("dir")), true},
		{"below a file staged in this call", steps(write("a"), write("a/b/c")), true},
		{"onto a directory of a file staged in this call", steps(write("a/b/c"), write("a/b")), true},
		{"a removed file written as a file and a directory", steps(remove("file"), write("file/x"), write("file")), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := fakeWithFileAndDir()
			var got error
			_, err := f.Render(sdk.RenderFunc(func(h *sdk.Host, _ *sdk.Batch) error {
				for i, step := range tt.steps {
					err := step(h)
					if i < len(tt.steps)-1 && err != nil {
						return err
					}
					got = err
				}
				return nil
			}))
			if errors.Is(got, abi.ErrInvalid) != tt.refused || err == nil || !strings.Contains(err.Error(), "invalid argument") {
				t.Fatalf("last request: %v; call: %v", got, err)
			}
			if paths := f.Paths("out"); !slices.Equal(paths, []string{"dir/x", "dir/y", "file"}) {
				t.Fatalf("paths after a refused call %v", paths)
			}
		})
	}
	// A removal drops the staged file "a": "a/b" no longer conflicts.
	f := &sdk.Fake{Outputs: []string{"out"}}
	_, err := f.Render(sdk.RenderFunc(func(h *sdk.Host, _ *sdk.Batch) error {
		return run(h, write("a"), remove("a"), write("a/b"))
	}))
	if err != nil || !slices.Equal(f.Paths("out"), []string{"a/b"}) {
		t.Fatalf("err %v, paths %v", err, f.Paths("out"))
	}
}

// TestFakeReshapes: like the host, the fake lets one call turn a file into
// a directory (remove "a", write "a/b") and back (remove every file below
// "a", write "a"), in either order.
func TestFakeReshapes(t *testing.T) {
	tests := []struct {
		name  string
		steps []func(h *sdk.Host) error
		want  []string
	}{
		{"file into directory", steps(remove("file"), write("file/x"), write("file/y/z")), []string{"dir/x", "dir/y", "file/x", "file/y/z"}},
		{"file into directory, removed last", steps(write("file/x"), remove("file")), []string{"dir/x", "dir/y", "file/x"}},
		{"directory into file", steps(remove("dir/x"), remove("dir/y"), write("dir")), []string{"dir", "file"}},
		{"directory into file, removed last", steps(write("dir"), remove("dir/y"), remove("dir/x")), []string{"dir", "file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := fakeWithFileAndDir()
			if _, err := f.Render(sdk.RenderFunc(func(h *sdk.Host, _ *sdk.Batch) error { return run(h, tt.steps...) })); err != nil {
				t.Fatal(err)
			}
			if got := f.Paths("out"); !slices.Equal(got, tt.want) {
				t.Fatalf("paths %v, want %v", got, tt.want)
			}
		})
	}
}

// fakeWithFileAndDir returns a fake whose output "out" holds the file
// "file" and the directory "dir" (with "dir/x" and "dir/y").
func fakeWithFileAndDir() *sdk.Fake {
	f := &sdk.Fake{Outputs: []string{"out"}}
	f.WriteFile("out", "file", []byte("f"), 0o644)
	f.WriteFile("out", "dir/x", []byte("x"), 0o644)
	f.WriteFile("out", "dir/y", []byte("y"), 0o644)
	return f
}

func write(p string) func(h *sdk.Host) error {
	return func(h *sdk.Host) error { _, err := h.WriteFile("out", p, []byte(p), 0); return err }
}

func remove(p string) func(h *sdk.Host) error {
	return func(h *sdk.Host) error { _, err := h.RemoveFile("out", p); return err }
}

func steps(s ...func(h *sdk.Host) error) []func(h *sdk.Host) error { return s }

func run(h *sdk.Host, steps ...func(h *sdk.Host) error) error {
	for _, step := range steps {
		if err := step(h); err != nil {
			return err
		}
	}
	return nil
}

// configured is a Configurer that needs the config key "need".
type configured struct{ rendered *bool }

func (configured) Configure(h *sdk.Host) error {
	if _, ok := h.Config("need"); !ok {
		return errors.New("need is not set")
	}
	return nil
}

func (c configured) Apply(h *sdk.Host, b *sdk.Batch) error  { return c.Render(h, b) }
func (c configured) Render(h *sdk.Host, b *sdk.Batch) error { *c.rendered = true; return nil }

// TestFakeConfigures checks that the Fake configures a Configurer before a
// call, as the host does when it initializes an instance, and that a
// refused configuration fails without the call.
func TestFakeConfigures(t *testing.T) {
	var rendered bool
	f := &sdk.Fake{}
	if _, err := f.Render(configured{&rendered}); err == nil || !strings.Contains(err.Error(), "configure: need is not set") || rendered {
		t.Errorf("render with a refused configuration = %v, rendered %v; want the configure error and no call", err, rendered)
	}
	f.Config = map[string]string{"need": "x"}
	if _, err := f.Render(configured{&rendered}); err != nil || !rendered {
		t.Errorf("render with a good configuration = %v, rendered %v", err, rendered)
	}
}

// keysPlugin is a Configurer that reads the settings known.
type keysPlugin struct {
	sdk.RenderFunc
	known []string
}

func (p keysPlugin) Configure(h *sdk.Host) error { return sdk.CheckConfigKeys(h, p.known...) }

// TestCheckConfigKeys: CheckConfigKeys, run by Configure, refuses the keys
// the plugin does not read, naming each (with a known key a typo away) and
// the keys it reads.
func TestCheckConfigKeys(t *testing.T) {
	files := []string{"strict", "prefix", "hook"}
	for _, tc := range []struct {
		name   string
		config map[string]string
		known  []string
		want   string // "" = accepted
	}{
		{"no configuration", nil, files, ""},
		{"known keys", map[string]string{"prefix": "a.", "hook": ""}, files, ""},
		{"a typo", map[string]string{"prefx": "a.", "hook": ""}, files,
			`unknown configuration key "prefx" (did you mean "prefix"?); this plugin reads: hook, prefix, strict`},
		{"another case", map[string]string{"Prefix": "a."}, files,
			`unknown configuration key "Prefix" (did you mean "prefix"?); this plugin reads: hook, prefix, strict`},
		{"two unknown keys, sorted", map[string]string{"zzz": "", "hok": "", "strict": "true"}, files,
			`unknown configuration keys "hok" (did you mean "hook"?), "zzz"; this plugin reads: hook, prefix, strict`},
		{"nothing near", map[string]string{"output": "x"}, files,
			`unknown configuration key "output"; this plugin reads: hook, prefix, strict`},
		{"too short to suggest", map[string]string{"b": ""}, []string{"a"},
			`unknown configuration key "b"; this plugin reads: a`},
		{"the empty key", map[string]string{"": "x"}, files,
			`unknown configuration key ""; this plugin reads: hook, prefix, strict`},
		{"a quoted key", map[string]string{"a\"b\n": "x"}, files,
			`unknown configuration key "a\"b\n"; this plugin reads: hook, prefix, strict`},
		{"a plugin without settings", map[string]string{"prefix": "a."}, nil,
			`unknown configuration key "prefix"; this plugin reads no configuration`},
		{"a known key listed twice", map[string]string{"prefx": "a."}, []string{"prefix", "hook", "prefix"},
			`unknown configuration key "prefx" (did you mean "prefix"?); this plugin reads: hook, prefix`},
		{"a typo in a key of two-byte runes", map[string]string{"größ": ""}, []string{"größe"},
			`unknown configuration key "größ" (did you mean "größe"?); this plugin reads: größe`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rendered := false
			f := &sdk.Fake{Config: tc.config}
			_, err := f.Render(keysPlugin{func(*sdk.Host, *sdk.Batch) error { rendered = true; return nil }, tc.known})
			if tc.want == "" {
				if err != nil || !rendered {
					t.Fatalf("render = %v, rendered %v; want it accepted", err, rendered)
				}
				return
			}
			if want := "sdk fake: configure: " + tc.want; err == nil || err.Error() != want || rendered {
				t.Fatalf("render = %v, rendered %v\nwant %s", err, rendered, want)
			}
		})
	}
}

// TestFakeRefusesANULInAConfigKey: the host refuses such a key when it
// loads the plugin (config_keys ends each key with a NUL), and so does the
// Fake.
func TestFakeRefusesANULInAConfigKey(t *testing.T) {
	f := &sdk.Fake{Config: map[string]string{"a\x00b": ""}}
	_, err := f.Render(sdk.RenderFunc(func(*sdk.Host, *sdk.Batch) error { return nil }))
	if err == nil || err.Error() != `sdk fake: configuration key "a\x00b" holds a NUL byte` {
		t.Fatalf("render = %v", err)
	}
}
