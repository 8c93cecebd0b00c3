package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPluginLimitsReachTheHost: a plugin's limits block is what its calls
// get, and a render that hits one fails naming the setting to change, then
// succeeds once the setting is raised (issue 7).
func TestPluginLimitsReachTheHost(t *testing.T) {
	f := newFixture(t)
	for _, k := range []string{"a", "b", "c"} {
		f.put("cfg", "files."+k, k)
	}
	limited := strings.Replace(filesConfig, `config = { prefix = "files.", hook = "changed" }`,
		`config = { prefix = "files.", hook = "changed" }
  limits { max_files = 2 }`, 1)
	a, stop := f.start(f.config(limited))
	waitFor(t, "the render to fail on max_files", func() bool {
		return strings.Contains(a.Status()[0].LastError, "more than 2 staged files in one call (limit max_files of the plugin)")
	})
	stop()
	if _, err := os.Stat(filepath.Join(f.dir, "out", "a")); err == nil {
		t.Fatal("a render that hit a limit committed a file")
	}

	raised := strings.Replace(limited, "max_files = 2", "max_files = 3", 1)
	a, stop = f.start(f.config(raised))
	defer stop()
	waitFor(t, "the render", func() bool { return a.Ready() })
	if got := readFile(filepath.Join(f.dir, "out", "c")); got != "c" {
		t.Fatalf("c = %q", got)
	}
}
