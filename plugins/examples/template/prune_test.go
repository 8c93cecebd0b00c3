//go:build !wasip1

package main

import (
	"slices"
	"testing"

	"github.com/slipstreamkv/slipstream/plugins/sdk"
)

// TestFakeRenderRemovesFilesNoTemplateWrites: a full render leaves an
// output with exactly the files its templates write, and requests their
// hook when it removed one; an incremental batch removes nothing.
func TestFakeRenderRemovesFilesNoTemplateWrites(t *testing.T) {
	f := &sdk.Fake{
		Outputs: []string{"out", "tls"},
		Hooks:   []string{"reload", "restart"},
		Config: map[string]string{"templates": `[
			{"source": "a", "destination": "a.conf"},
			{"source": "b", "destination": "conf.d/b.conf", "hook": "restart"},
			{"source": "c", "destination": "c.pem", "output": "tls", "hook": ""}
		]`},
	}
	for _, file := range []struct{ output, path string }{
		{"out", "ports.conf"}, {"out", "conf.d/old.conf"}, {"tls", "old.pem"},
	} {
		f.WriteFile(file.output, file.path, []byte("stale"), 0o644)
	}
	if _, err := f.Apply(sdk.RenderFunc(render), sdk.Update{Op: sdk.OpPut, Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if got := f.Paths("out"); !slices.Equal(got, []string{"a.conf", "conf.d/b.conf", "conf.d/old.conf", "ports.conf"}) {
		t.Fatalf("after a batch, out holds %q", got)
	}
	if _, err := f.Render(sdk.RenderFunc(render)); err != nil {
		t.Fatal(err)
	}
	if got := f.Paths("out"); !slices.Equal(got, []string{"a.conf", "conf.d/b.conf"}) {
		t.Errorf("after a render, out holds %q", got)
	}
	if got := f.Paths("tls"); !slices.Equal(got, []string{"c.pem"}) {
		t.Errorf("after a render, tls holds %q", got)
	}
	// Everything in place: a render removes nothing and requests nothing.
	f.WriteFile("tls", "new.pem", []byte("stale"), 0o644)
	res, err := f.Render(sdk.RenderFunc(render))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Changed, []string{"tls:new.pem"}) || len(res.Hooks) != 0 {
		t.Errorf("render removing a file of a template without a hook: %+v", res)
	}
	f.WriteFile("out", "x", []byte("stale"), 0o644)
	res, err = f.Render(sdk.RenderFunc(render))
	if err != nil {
		t.Fatal(err)
	}
	if hooks := slices.Sorted(slices.Values(res.Hooks)); !slices.Equal(hooks, []string{"reload", "restart"}) || !slices.Equal(res.Changed, []string{"out:x"}) {
		t.Errorf("render removing a file in out: %+v", res)
	}
}
