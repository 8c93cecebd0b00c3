//go:build !wasip1

package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/slipstreamkv/slipstream/internal/plugintest"
	"github.com/slipstreamkv/slipstream/internal/plugintest/harness"
	"github.com/slipstreamkv/slipstream/plugins/host"
	"github.com/slipstreamkv/slipstream/plugins/sdk"
)

func TestMain(m *testing.M) { plugintest.Main(m) }

const hostsTemplate = `# {{.Watch}}
{{range .Entries}}{{with json .Value}}{{.ip}} {{end}}{{trimPrefix "hosts/" .Key}}
{{end}}`

func TestFakeRendersAndRequestsReloadOnChange(t *testing.T) {
	f := &sdk.Fake{
		Watch:   "dns",
		Outputs: []string{"out"},
		Hooks:   []string{"reload"},
		Config:  map[string]string{"template": hostsTemplate, "prefix": "hosts/", "path": "hosts", "mode": "644"},
	}
	res, err := f.Apply(sdk.RenderFunc(render),
		sdk.Update{Op: sdk.OpPut, Key: "hosts/web", Value: []byte(`{"ip":"10.0.0.2"}`)},
		sdk.Update{Op: sdk.OpPut, Key: "hosts/db", Value: []byte(`{"ip":"10.0.0.1"}`)},
		sdk.Update{Op: sdk.OpPut, Key: "other", Value: []byte(`ignored`)},
	)
	if err != nil {
		t.Fatal(err)
	}
	file, _ := f.File("out", "hosts")
	if want := "# dns\n10.0.0.1 db\n10.0.0.2 web\n"; string(file.Data) != want {
		t.Fatalf("rendered %q, want %q", file.Data, want)
	}
	if !slices.Equal(res.Hooks, []string{"reload"}) {
		t.Fatalf("hooks %v", res.Hooks)
	}
	// A change outside the prefix leaves the file as it is: no reload.
	res, err = f.Apply(sdk.RenderFunc(render), sdk.Update{Op: sdk.OpPut, Key: "other", Value: []byte(`changed`)})
	if err != nil || len(res.Hooks) != 0 || len(res.Changed) != 0 {
		t.Fatalf("unrelated change: %+v %v", res, err)
	}
	res, err = f.Render(sdk.RenderFunc(render))
	if err != nil || len(res.Hooks) != 0 {
		t.Fatalf("render of an up-to-date file: %+v %v", res, err)
	}
}

func TestFakeTemplateErrorsFailTheCall(t *testing.T) {
	for name, cfg := range map[string]map[string]string{
		"no template":  {},
		"syntax":       {"template": "{{.Entries"},
		"missing key":  {"template": `{{index .Values "absent"}}{{.Nope}}`},
		"invalid json": {"template": `{{range .Entries}}{{json .Value}}{{end}}`},
		"bad mode":     {"template": "x", "mode": "9"},
	} {
		f := &sdk.Fake{Outputs: []string{"out"}, Config: cfg}
		f.Set("k", []byte("not json"))
		if _, err := f.Render(sdk.RenderFunc(render)); err == nil {
			t.Errorf("%s: the call succeeded", name)
		}
		if len(f.Paths("out")) != 0 {
			t.Errorf("%s: wrote %v", name, f.Paths("out"))
		}
	}
}

func newHarness(t *testing.T, cfg map[string]string) *harness.Harness {
	return harness.New(t, plugintest.Module(t, "plugins/examples/template"), harness.Options{
		Watch:   "dns",
		Outputs: []string{"out"},
		Hooks:   []string{"reload"},
		Plugin:  host.PluginConfig{Name: "template", Config: cfg},
	})
}

func TestModuleRendersAndReloadsOnChange(t *testing.T) {
	h := newHarness(t, map[string]string{"template": hostsTemplate, "prefix": "hosts/", "path": "etc/hosts"})
	res := h.Commit(h.Apply(h.Put("hosts/web", `{"ip":"10.0.0.2"}`), h.Put("hosts/db", `{"ip":"10.0.0.1"}`)))
	if got, _ := h.Read("out", "etc/hosts"); got != "# dns\n10.0.0.1 db\n10.0.0.2 web\n" {
		t.Fatalf("rendered %q", got)
	}
	if !slices.Equal(res.Hooks(), []string{"reload"}) {
		t.Fatalf("hooks %v", res.Hooks())
	}
	res = h.Commit(h.Apply(h.Put("unrelated", "x")))
	if len(res.Hooks()) != 0 {
		t.Fatalf("unchanged output requested %v", res.Hooks())
	}
	res = h.Commit(h.Apply(h.Delete("hosts/web")))
	if got, _ := h.Read("out", "etc/hosts"); got != "# dns\n10.0.0.1 db\n" || len(res.Hooks()) != 1 {
		t.Fatalf("after delete %q, hooks %v", got, res.Hooks())
	}
	// A template that does not parse is refused when the module loads.
	_, err := harness.Engine(t).Load(t.Context(), plugintest.Module(t, "plugins/examples/template"),
		host.PluginConfig{Name: "template", Config: map[string]string{"template": "{{"}})
	if err == nil || !strings.Contains(err.Error(), "template: rendered:1: unclosed action") {
		t.Fatalf("bad template: %v", err)
	}
	// So is a misspelt setting, alone or beside good ones.
	const reads = "; this plugin reads: hook, mode, name, output, path, prefix, separator, template, templates"
	for _, c := range []struct {
		cfg  map[string]string
		want string
	}{
		{map[string]string{"templat": "{{ .Watch }}"}, `template: config: unknown configuration key "templat" (did you mean "template"?)` + reads},
		{map[string]string{"template": "{{ .Watch }}", "prefx": "app/"}, `template: config: unknown configuration key "prefx" (did you mean "prefix"?)` + reads},
	} {
		_, err := harness.Engine(t).Load(t.Context(), plugintest.Module(t, "plugins/examples/template"), host.PluginConfig{Name: "template", Config: c.cfg})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("config %v: %v, want %q", c.cfg, err, c.want)
		}
	}
}

func TestModuleRendersAViewLargerThanAPage(t *testing.T) {
	h := newHarness(t, map[string]string{
		"template": `{{len .Entries}} entries{{range .Entries}}{{if eq (len .Value) 0}} empty:{{.Key}}{{end}}{{end}}`,
		"prefix":   "k/",
	})
	for i := range 1500 { // 1500 KiB of values: many scan pages
		h.View.Put(host.Entry{Key: fmt.Sprintf("k/%05d", i), Value: []byte(strings.Repeat("v", 1024)), Revision: uint64(i + 1)})
	}
	h.View.Put(host.Entry{Key: "k/zero", Value: []byte{}})
	res := h.Commit(h.Render())
	if got, _ := h.Read("out", "rendered"); got != "1501 entries empty:k/zero" {
		t.Fatalf("rendered %q", got)
	}
	if !slices.Equal(res.Hooks(), []string{"reload"}) {
		t.Fatalf("hooks %v", res.Hooks())
	}
}
