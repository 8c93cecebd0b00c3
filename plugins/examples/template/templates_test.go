//go:build !wasip1

package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	"github.com/slipstreamkv/slipstream/internal/plugintest"
	"github.com/slipstreamkv/slipstream/internal/plugintest/harness"
	"github.com/slipstreamkv/slipstream/plugins/host"
	"github.com/slipstreamkv/slipstream/plugins/sdk"
)

func templatesConfig(t *testing.T, specs []map[string]any, extra map[string]string) map[string]string {
	t.Helper()
	list, err := json.Marshal(specs)
	if err != nil {
		t.Fatal(err)
	}
	cfg := map[string]string{"templates": string(list)}
	for k, v := range extra {
		cfg[k] = v
	}
	return cfg
}

func mode(t *testing.T, h *harness.Harness, output, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(filepath.Join(h.Outputs[output], path))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestModuleSeveralTemplates(t *testing.T) {
	h := harness.New(t, plugintest.Module(t, "plugins/examples/template"), harness.Options{
		Outputs: []string{"conf", "certs"},
		Hooks:   []string{"reload", "restart"},
		Plugin: host.PluginConfig{Name: "template", Config: templatesConfig(t, []map[string]any{
			{"source": `{{ range .Entries }}server {{ .Value }};{{ "\n" }}{{ end }}`, "destination": "upstreams.conf", "perms": "0640", "prefix": "web/"},
			{"source": `port {{ key "port" }}`, "destination": "sub/port.conf"},
			{"source": `{{ key "tls/cert" }}`, "destination": "web.pem", "output": "certs", "perms": "0600", "hook": "restart"},
			{"source": `{{ "{{" }} [[ key "port" ]]`, "destination": "delims", "left_delimiter": "[[", "right_delimiter": "]]"},
			// a plan, reading the entries the first template loaded
			{"source": `{{ range .Entries }}{{ .Key }} {{ end }}`, "destination": "keys", "prefix": "web/"},
		}, map[string]string{"output": "conf"})},
	})
	res := h.Commit(h.Apply(h.Put("web/a", "10.0.0.1"), h.Put("web/b", "10.0.0.2"), h.Put("port", "80"), h.Put("tls/cert", "PEM")))
	for _, f := range []struct{ output, path, want string }{
		{"conf", "upstreams.conf", "server 10.0.0.1;\nserver 10.0.0.2;\n"},
		{"conf", "sub/port.conf", "port 80"},
		{"certs", "web.pem", "PEM"},
		{"conf", "keys", "web/a web/b "},
		{"conf", "delims", `{{ "{{" }} 80`},
	} {
		if got, _ := h.Read(f.output, f.path); got != f.want {
			t.Errorf("%s/%s = %q, want %q", f.output, f.path, got, f.want)
		}
	}
	if m := mode(t, h, "conf", "upstreams.conf"); m != 0o640 {
		t.Errorf("upstreams.conf mode %v", m)
	}
	if m := mode(t, h, "certs", "web.pem"); m != 0o600 {
		t.Errorf("web.pem mode %v", m)
	}
	if hooks := res.Hooks(); !slices.Equal(hooks, []string{"reload", "restart"}) {
		t.Errorf("hooks %v", hooks)
	}
	// Only the certificate changes: only its hook runs.
	res = h.Commit(h.Apply(h.Put("tls/cert", "PEM2")))
	if hooks := res.Hooks(); !slices.Equal(hooks, []string{"restart"}) {
		t.Errorf("hooks after a certificate change %v", hooks)
	}
}

// TestModuleRendersOnlyTemplatesABatchChanges tampers with an output to see
// which templates a batch renders: one that read none of the batch's keys is
// left alone, unless the batch is a retry of an uncommitted one.
func TestModuleRendersOnlyTemplatesABatchChanges(t *testing.T) {
	h := harness.New(t, plugintest.Module(t, "plugins/examples/template"), harness.Options{
		Outputs: []string{"out"},
		Plugin: host.PluginConfig{Name: "template", Config: templatesConfig(t, []map[string]any{
			{"source": `{{ key "a" }}`, "destination": "a"},
			{"source": `{{ range ls "b" }}{{ .Value }}{{ end }}`, "destination": "b"},
			{"source": `{{ .Revision }}`, "destination": "rev"},
		}, map[string]string{"hook": ""})},
	})
	h.Commit(h.Apply(h.Put("a", "1"), h.Put("b/x", "2")))
	tamper := func(path string) {
		if err := os.WriteFile(filepath.Join(h.Outputs["out"], path), []byte("tampered"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	check := func(step string, want map[string]string) {
		t.Helper()
		for path, w := range want {
			if got, _ := h.Read("out", path); got != w {
				t.Errorf("%s: %s = %q, want %q", step, path, got, w)
			}
		}
	}
	tamper("a")
	tamper("b")
	h.Commit(h.Apply(h.Put("b/y", "3")))
	check("a batch changing b's keys", map[string]string{"a": "tampered", "b": "23", "rev": "3"})

	// A batch that is not committed, then delivered again (as after a
	// failed check): the retry renders every template.
	tamper("b")
	unchanged := h.Put("c", "x")
	res, err := h.Apply(unchanged)
	if err != nil {
		t.Fatal(err)
	}
	res.Discard()
	check("an uncommitted batch", map[string]string{"a": "tampered", "b": "tampered"})
	res, err = h.Inst.Apply(t.Context(), host.Batch{Cursor: host.Cursor{Revision: unchanged.Revision}, Updates: []host.Update{unchanged}}, h.View)
	h.Commit(res, err)
	check("its retry", map[string]string{"a": "1", "b": "23", "rev": "4"})

	// A full render renders everything.
	tamper("a")
	h.Commit(h.Render())
	check("a full render", map[string]string{"a": "1"})
}

// TestModuleErrorsNameTemplateAndLine checks the errors of templates that do
// not parse (refused when the module loads) and of templates that fail to
// execute (a failed render).
func TestModuleErrorsNameTemplateAndLine(t *testing.T) {
	wasm := plugintest.Module(t, "plugins/examples/template")
	for _, c := range []struct {
		name string
		cfg  map[string]string
		want string
	}{
		{"parse", templatesConfig(t, []map[string]any{
			{"source": "ok", "destination": "a"},
			{"source": "line 1\n{{ if }}", "destination": "b", "name": "b.tmpl"},
		}, nil), "template: b.tmpl:2: missing value for if"},
		{"unknown function", templatesConfig(t, []map[string]any{
			{"source": "\n\n{{ nope }}", "destination": "c.conf"},
		}, nil), `template: c.conf:3: function "nope" not defined`},
		{"execution", templatesConfig(t, []map[string]any{
			{"source": "ok\n{{ key \"absent\" }}", "destination": "d", "name": "d.tmpl"},
		}, nil), `template: d.tmpl:2:3: executing "d.tmpl" at <key "absent">`},
		{"single template", map[string]string{"template": "\n{{ .Nope }}", "path": "x.conf"}, `template: x.conf:2:3: executing "x.conf" at <.Nope>`},
		{"single template named", map[string]string{"template": "{{ end }}", "name": "nginx.conf.tmpl"}, "template: nginx.conf.tmpl:1: unexpected {{end}}"},
	} {
		cfg := host.PluginConfig{Name: "template", Config: c.cfg}
		p, err := harness.Engine(t).Load(t.Context(), wasm, cfg)
		loaded := err == nil
		if loaded {
			p.Close(t.Context())
			_, err = harness.New(t, wasm, harness.Options{Outputs: []string{"out"}, Plugin: cfg}).Render()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Count(err.Error(), "template:") != 1 {
			t.Errorf("%s: error %v, want one containing %q, and \"template:\" once", c.name, err, c.want)
		}
		if executing := strings.Contains(c.want, "executing"); loaded != executing {
			t.Errorf("%s: loaded = %v; want a template that does not parse refused at load, one that fails to execute at render", c.name, loaded)
		}
	}
	// The bare module, with no configuration at all (plugin compile or
	// inspect of the file), loads; a render refuses it.
	cfg := host.PluginConfig{Name: "template"}
	p, err := harness.Engine(t).Load(t.Context(), wasm, cfg)
	if err != nil {
		t.Fatalf("the module without a configuration is refused at load: %v", err)
	}
	p.Close(t.Context())
	if _, err := harness.New(t, wasm, harness.Options{Outputs: []string{"out"}, Plugin: cfg}).Render(); err == nil || !strings.Contains(err.Error(), "has no template") {
		t.Errorf("a render without a configuration = %v, want it refused", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  map[string]string
		want string
	}{
		{"none", map[string]string{}, "has no template (or templates)"},
		{"both", map[string]string{"template": "x", "templates": `[]`}, "has both template and templates"},
		{"empty list", map[string]string{"templates": `[]`}, "templates is empty"},
		{"not a list", map[string]string{"templates": `"x"`}, "want a list of objects"},
		{"unknown setting", map[string]string{"templates": `[{"source":"x","destination":"a","perm":"0644"}]`}, `unknown field "perm"`},
		{"no destination", map[string]string{"templates": `[{"source":"x"}]`}, "templates[0] has no destination"},
		{"no source", map[string]string{"templates": `[{"destination":"a"}]`}, "templates[0] (a) has no source"},
		{"bad destination", map[string]string{"templates": `[{"source":"x","destination":"../a"}]`}, `templates[0]: destination "../a"`},
		{"duplicate", map[string]string{"templates": `[{"source":"x","destination":"a"},{"source":"y","destination":"a"}]`}, `templates[0] and templates[1] both write "a"`},
		{"bad perms", map[string]string{"templates": `[{"source":"x","destination":"a","perms":"0999"}]`}, `templates[0]: perms "0999" is not an octal permission`},
		{"numeric perms", map[string]string{"templates": `[{"source":"x","destination":"a","perms":644}]`}, `templates[0]: perms 644 is not a string: write it as "0644"`},
		{"bad mode", map[string]string{"template": "x", "mode": "9"}, `mode "9" is not an octal permission`},
		{"path beside templates", map[string]string{"templates": `[{"source":"x","destination":"a"}]`, "path": "p"}, "path is a setting of each element"},
		{"empty separator", map[string]string{"template": "x", "separator": ""}, "separator is empty"},
	} {
		f := &sdk.Fake{Outputs: []string{"out"}, Config: c.cfg}
		_, err := f.Render(sdk.RenderFunc(render))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
}

// TestPlanPrintsWhatTextTemplatePrints runs templates a plan covers both
// ways, and checks that the others get no plan.
func TestPlanPrintsWhatTextTemplatePrints(t *testing.T) {
	for _, src := range []string{
		benchTemplate,
		"# {{.Watch}} at {{.Revision}}\n{{- range .Entries}}\n{{.Key}} {{.Revision}} {{.Value -}} ;{{end}}\n",
		"static",
		"",
		"{{range .Entries}}{{end}}",
	} {
		f := &sdk.Fake{Watch: "w", Outputs: []string{"out"}, Hooks: []string{"reload"}, Config: map[string]string{"template": src}}
		for _, k := range []string{"b", "a", "c/d"} {
			if _, err := f.Apply(sdk.RenderFunc(render), sdk.Update{Op: sdk.OpPut, Key: k, Value: []byte("v-" + k)}); err != nil {
				t.Fatal(err)
			}
		}
		if parsed.cfg.templates[0].plan == nil {
			t.Errorf("%q has no plan", src)
			continue
		}
		if _, err := f.Render(sdk.RenderFunc(render)); err != nil {
			t.Fatal(err)
		}
		planned, _ := f.File("out", "rendered")
		parsed.cfg.templates[0].plan = nil
		f.WriteFile("out", "rendered", nil, 0)
		if _, err := f.Render(sdk.RenderFunc(render)); err != nil {
			t.Fatal(err)
		}
		executed, _ := f.File("out", "rendered")
		if string(planned.Data) != string(executed.Data) {
			t.Errorf("%q: the plan printed %q, text/template %q", src, planned.Data, executed.Data)
		}
		parsed.cfg = nil // it lost its plan
	}
	for _, src := range []string{
		"{{.Entries}}",
		"{{range .Entries}}{{.Key | upper}}{{end}}",
		"{{range $e := .Entries}}{{$e.Key}}{{end}}",
		"{{range .Entries}}{{.Key}}{{else}}none{{end}}",
		"{{range .Entries}}{{range .Entries}}{{end}}{{end}}",
		"{{range .Entries}}{{.Watch}}{{end}}",
		"{{.Key}}",
		"{{if .Watch}}x{{end}}",
		`{{key "a"}}`,
	} {
		tm := tmpl{name: "t"}
		if err := tm.parse(src, "", ""); err != nil {
			t.Fatal(err)
		}
		if tm.plan != nil {
			t.Errorf("%q got a plan", src)
		}
	}
}

// TestPlanPrintsWhatTextTemplatePrintsOverPages compares a plan with
// text/template on views of many pages (the plan's buffer grows while it
// streams them): keys and values with special characters, empty values,
// after deletes, and an empty view. The collector is on again after a
// render.
func TestPlanPrintsWhatTextTemplatePrintsOverPages(t *testing.T) {
	const src = "# {{.Watch}}\n{{range .Entries}}{{.Key}}={{.Value}} @{{.Revision}}\n{{end}}-- {{.Revision}}\n"
	f := &sdk.Fake{Watch: "w", Outputs: []string{"out"}, Hooks: []string{"reload"}, Config: map[string]string{"template": src}, PageEntries: 7}
	var updates []sdk.Update
	for i := range 300 {
		value := strings.Repeat(fmt.Sprintf("v%d ", i), i%5)
		updates = append(updates, sdk.Update{Op: sdk.OpPut, Key: fmt.Sprintf("k/%03d-é\n\t{{x}}=", i), Value: []byte(value + "\x00\"<&>")})
	}
	updates = append(updates, sdk.Update{Op: sdk.OpPut, Key: "empty", Value: nil})
	both := func(step string) {
		t.Helper()
		if _, err := f.Render(sdk.RenderFunc(render)); err != nil {
			t.Fatal(err)
		}
		if parsed.cfg.templates[0].plan == nil {
			t.Fatal("no plan")
		}
		if p := debug.SetGCPercent(100); p != 100 {
			t.Errorf("%s: the collector is at %d%% after a render", step, p)
		}
		planned, _ := f.File("out", "rendered")
		parsed.cfg.templates[0].plan = nil
		if _, err := f.Render(sdk.RenderFunc(render)); err != nil {
			t.Fatal(err)
		}
		executed, _ := f.File("out", "rendered")
		parsed.cfg = nil // it lost its plan
		if string(planned.Data) != string(executed.Data) {
			t.Errorf("%s: the plan printed %q, text/template %q", step, planned.Data, executed.Data)
		}
		if !strings.HasPrefix(string(executed.Data), "# w\n") {
			t.Errorf("%s: rendered %q", step, executed.Data)
		}
	}
	both("an empty view")
	if _, err := f.Apply(sdk.RenderFunc(render), updates...); err != nil {
		t.Fatal(err)
	}
	both("300 keys")
	var deletes []sdk.Update
	for i := 0; i < len(updates); i += 3 {
		deletes = append(deletes, sdk.Update{Op: sdk.OpDelete, Key: updates[i].Key})
	}
	if _, err := f.Apply(sdk.RenderFunc(render), deletes...); err != nil {
		t.Fatal(err)
	}
	both("after deletes")
}

// TestModuleBenchConfiguration renders with the configuration that
// ../shared/bench/peers/bench_slipagent_agent.sh and make bench-e2e write.
func TestModuleBenchConfiguration(t *testing.T) {
	h := harness.New(t, plugintest.Module(t, "plugins/examples/template"), harness.Options{
		Outputs: []string{"render"},
		Plugin: host.PluginConfig{Name: "template", Config: map[string]string{
			"template": benchTemplate, "output": "render", "path": "out.txt", "hook": "",
		}},
	})
	res := h.Commit(h.Apply(h.Put("k2", "v2"), h.Put("k1", "v1")))
	if got, _ := h.Read("render", "out.txt"); got != "k1=v1\nk2=v2\n" {
		t.Fatalf("rendered %q", got)
	}
	if len(res.Hooks()) != 0 {
		t.Fatalf("hooks %v", res.Hooks())
	}
	h.Commit(h.Apply(h.Delete("k1")))
	if got, _ := h.Read("render", "out.txt"); got != "k2=v2\n" {
		t.Fatalf("after a delete %q", got)
	}

	// A batch not committed, then delivered again with the changes since.
	put := h.Put("k3", "v3")
	res, err := h.Apply(put)
	if err != nil {
		t.Fatal(err)
	}
	res.Discard()
	del := h.Delete("k2")
	h.View.Apply([]host.Update{del})
	res, err = h.Inst.Apply(t.Context(), host.Batch{Cursor: host.Cursor{Revision: del.Revision}, Updates: []host.Update{put, del}}, h.View)
	h.Commit(res, err)
	if got, _ := h.Read("render", "out.txt"); got != "k3=v3\n" {
		t.Fatalf("after a retry %q", got)
	}
}
