package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Outputs that share files through a symlink, or an output that holds the
// agent's own files, are refused however the paths are spelled: otherwise
// the watches prune each other's files (or the agent's state) for ever
// while saying they are ready.
func TestOutputPlacesAreChecked(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "out"), filepath.Join(dir, "outlink")); err != nil {
		t.Fatal(err)
	}
	watch := func(name, out string) string {
		return `
watch "` + name + `" {
  bucket = "b"
  plugin = "p"
  output "o" { dir = "` + out + `" }
}`
	}
	config := func(dataDir string, watches ...string) string {
		return `data_dir = "` + dataDir + `"
plugin "p" { module = "/p.wasm" }` + strings.Join(watches, "")
	}
	for _, tt := range []struct {
		name, src, want string
	}{
		{"one directory through a symlink", config("/var/lib/slipagent", watch("a", "out"), watch("b", "outlink")), "once symlinks are resolved"},
		{"below it through a symlink", config("/var/lib/slipagent", watch("a", "out/sub"), watch("b", "outlink")), "Overlapping output directories"},
		{"data_dir inside", config(filepath.Join(dir, "out", "data"), watch("a", "out")), "contains the agent's data_dir"},
		{"data_dir inside through a symlink", config(filepath.Join(dir, "outlink", "data"), watch("a", "out")), "contains the agent's data_dir"},
		{"the configuration inside", config("/var/lib/slipagent", watch("a", ".")), "contains the agent's configuration file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "agent.hcl")
			if err := os.WriteFile(path, []byte(tt.src), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load = %v, want an error saying %q", err, tt.want)
			}
		})
	}
	// Side by side, even through a symlink, is fine.
	path := filepath.Join(dir, "agent.hcl")
	os.WriteFile(path, []byte(config("/var/lib/slipagent", watch("a", "outlink/x"), watch("b", "out/y"))), 0o644)
	if _, err := Load(path); err != nil {
		t.Errorf("outputs side by side: %v", err)
	}
}

// An output may hold none of the files the configuration points the agent
// at: the first full render would remove them, and the agent would only
// notice at its next reload or restart.
func TestOutputMayNotHoldFilesTheConfigurationNames(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	const base = `data_dir = "data"
plugin "p" { module = "p.wasm" }
`
	watch := func(hook string) string {
		return `watch "w" {
  bucket = "b"
  plugin = "p"
  output "files" { dir = "out" }
` + hook + `
}
`
	}
	for _, tt := range []struct {
		name, src, want string
	}{
		{"plugin module", `data_dir = "data"
plugin "p" { module = "out/p.wasm" }
` + watch(""), `plugin "p" module ` + filepath.Join(out, "p.wasm")},
		{"http token_file", base + `http {
  listen     = "127.0.0.1:0"
  token_file = "out/http.token"
}
` + watch(""), "http token_file " + filepath.Join(out, "http.token")},
		{"http tls key_file", base + `http {
  listen = "127.0.0.1:0"
  tls {
    cert_file = "cert.pem"
    key_file  = "out/key.pem"
  }
}
` + watch(""), "http tls key_file " + filepath.Join(out, "key.pem")},
		{"http socket", base + `http { listen = "unix:out/http.sock" }
` + watch(""), "http listen socket " + filepath.Join(out, "http.sock")},
		{"nats creds_file", `data_dir = "data"
nats { creds_file = "` + filepath.Join(out, "agent.creds") + `" }
plugin "p" { module = "p.wasm" }
` + watch(""), "nats creds_file " + filepath.Join(out, "agent.creds")},
		{"nats tls cert_file", `data_dir = "data"
nats {
  tls { cert_file = "` + filepath.Join(out, "nats.pem") + `" }
}
plugin "p" { module = "p.wasm" }
` + watch(""), "nats tls cert_file " + filepath.Join(out, "nats.pem")},
		{"hook command", base + watch(`hook "reload" { command = ["`+filepath.Join(out, "hook.sh")+`", "x"] }`), `watch "w" hook "reload" command ` + filepath.Join(out, "hook.sh")},
		{"hook command by relative path", base + watch(`hook "reload" { command = ["out/hook.sh"] }`), `watch "w" hook "reload" command ` + filepath.Join(out, "hook.sh")},
		{"hook check", base + watch(`hook "reload" {
  command = ["true"]
  check   = ["`+filepath.Join(out, "check.sh")+`"]
}`), `watch "w" hook "reload" check ` + filepath.Join(out, "check.sh")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "agent.hcl")
			if err := os.WriteFile(path, []byte(tt.src), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if err == nil || !strings.Contains(err.Error(), "Output directory holds the agent's files") || !strings.Contains(err.Error(), `output "files": `+out+" contains the agent's "+tt.want) {
				t.Errorf("Load = %v, want the output refused naming %q", err, tt.want)
			}
		})
	}
	// A hook run by name (from $PATH) and files beside the output are fine.
	path := filepath.Join(dir, "agent.hcl")
	src := `data_dir = "data"
plugin "p" { module = "p.wasm" }
http {
  listen     = "127.0.0.1:0"
  token_file = "http.token"
}
` + watch(`hook "reload" { command = ["out", "x"] }`)
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err != nil {
		t.Errorf("agent files beside the output: %v", err)
	}
}
