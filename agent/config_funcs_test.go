package agent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigFileFunctions loads a configuration from another directory than
// the test's: file(), filebase64() and templatefile() read beside it.
func TestConfigFileFunctions(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"nginx.conf.tmpl": "{{ range .Entries }}{{ .Key }}\n{{ end }}",
		"motd.tmpl":       "Hello ${name}%{ for s in sites }, ${s}%{ endfor }",
		"sub/a.tmpl":      `{{ key "a" }}`,
		"agent.hcl": `
plugin "template" {
  module = "t.wasm"
  config = {
    template = file("nginx.conf.tmpl")
    motd     = templatefile("motd.tmpl", { name = "ops", sites = ["a", "b"] })
    b64      = filebase64("sub/a.tmpl")
    templates = [
      { source = file("sub/a.tmpl"), destination = "a.conf", perms = "0644" },
    ]
  }
}
`,
	} {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, path := range []string{filepath.Join(dir, "agent.hcl"), dir} {
		cfg, err := Load(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		m := cfg.Plugins[0].ConfigMap
		if m["template"] != "{{ range .Entries }}{{ .Key }}\n{{ end }}" {
			t.Errorf("%s: template = %q", path, m["template"])
		}
		if m["motd"] != "Hello ops, a, b" {
			t.Errorf("%s: motd = %q", path, m["motd"])
		}
		if m["b64"] != "e3sga2V5ICJhIiB9fQ==" {
			t.Errorf("%s: b64 = %q", path, m["b64"])
		}
		var list []map[string]string
		if err := json.Unmarshal([]byte(m["templates"]), &list); err != nil || len(list) != 1 || list[0]["source"] != `{{ key "a" }}` || list[0]["perms"] != "0644" {
			t.Errorf("%s: templates = %s (%v)", path, m["templates"], err)
		}
	}
	// Parse resolves against the directory of the file name it is given.
	cfg, err := Parse(filepath.Join(dir, "other.hcl"), []byte(`plugin "p" {
  module = "p.wasm"
  config = { template = file("sub/a.tmpl") }
}`))
	if err != nil || cfg.Plugins[0].ConfigMap["template"] != `{{ key "a" }}` {
		t.Fatalf("Parse: %v", err)
	}
}

func TestConfigFileFunctionErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bad.tmpl"), []byte("${nope}"), 0o644); err != nil {
		t.Fatal(err)
	}
	for src, want := range map[string]string{
		`file("missing.tmpl")`:          "missing.tmpl",
		`templatefile("bad.tmpl", {})`:  "bad.tmpl:1,3-7: Unknown variable",
		`templatefile("bad.tmpl", "x")`: "vars must be an object",
	} {
		_, err := Parse(filepath.Join(dir, "agent.hcl"), []byte(`plugin "p" {
  module = "p.wasm"
  config = { template = `+src+` }
}`))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one containing %q", src, err, want)
		}
	}
}

// TestExampleTemplateBlockParses uncomments agent.hcl.example's template
// example and loads it with its template files.
func TestExampleTemplateBlockParses(t *testing.T) {
	src, err := os.ReadFile("../agent.hcl.example")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(src), "\n# plugin \"app\" {\n")
	if !ok {
		t.Fatal(`agent.hcl.example has no commented plugin "app" block`)
	}
	block, _, _ = strings.Cut(block, "\n\n") // the example ends at the next blank line
	var b strings.Builder
	b.WriteString("plugin \"app\" {\n")
	for line := range strings.Lines(block) {
		b.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "#"), " "))
	}
	dir := t.TempDir()
	for _, name := range []string{"app.conf.tmpl", "upstreams.tmpl"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("{{ .Watch }} "+name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := Parse(filepath.Join(dir, "agent.hcl"), []byte(b.String()))
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	var list []map[string]string
	if err := json.Unmarshal([]byte(cfg.Plugins[0].ConfigMap["templates"]), &list); err != nil || len(list) != 3 {
		t.Fatalf("templates %s: %v", cfg.Plugins[0].ConfigMap["templates"], err)
	}
	if list[0]["source"] != "{{ .Watch }} app.conf.tmpl" || list[2]["source"] != `{{ key "app/tls/key" | base64Decode }}` {
		t.Errorf("sources %q %q", list[0]["source"], list[2]["source"])
	}
	if len(cfg.Watches) != 1 || len(cfg.Watches[0].Outputs) != 2 || len(cfg.Watches[0].Hooks) != 2 {
		t.Errorf("watch %+v", cfg.Watches)
	}
}
