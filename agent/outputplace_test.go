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
