package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// crossBuild runs `go build` of pkgs for goos/goarch from the repository
// root and returns its output and error.
func crossBuild(t *testing.T, goos, goarch string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("go", append([]string{"build"}, args...)...)
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// linuxOnly are the packages that are Linux tools, not part of the agent
// or the library: the end-to-end benchmark watches files with inotify.
var linuxOnly = []string{"github.com/slipstreamkv/slipstream/internal/e2ebench"}

// TestBuildsOnMacOS: every package but linuxOnly builds for macOS (the
// README's platform list); the tests run on Linux only.
func TestBuildsOnMacOS(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles the whole module")
	}
	list := exec.Command("go", "list", "-f", "{{if .GoFiles}}{{.ImportPath}}{{end}}", "./...") // packages with more than tests
	list.Dir = filepath.Join("..", "..")
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list ./...: %v", err)
	}
	pkgs := slices.DeleteFunc(strings.Fields(string(out)), func(p string) bool { return slices.Contains(linuxOnly, p) })
	if msg, err := crossBuild(t, "darwin", "arm64", pkgs...); err != nil {
		t.Fatalf("GOOS=darwin GOARCH=arm64 go build (every package but %q): %v\n%s", linuxOnly, err, msg)
	}
}

// TestWindowsIsRefused: a build for Windows fails, and its first error says
// why (agent/agent_windows.go).
func TestWindowsIsRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles the agent's dependencies")
	}
	out, err := crossBuild(t, "windows", "amd64", "-o", os.DevNull, "./cmd/slipagent")
	if err == nil {
		t.Fatalf("GOOS=windows go build ./cmd/slipagent succeeded:\n%s", out)
	}
	const msg = "undefined: slipagent_does_not_support_Windows__it_runs_on_Linux_and_macOS__see_Platforms_in_README"
	var first string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "agent") || strings.Contains(line, ".go:") {
			first = line
			break
		}
	}
	if !strings.Contains(first, msg) {
		t.Errorf("the first error of GOOS=windows go build ./cmd/slipagent is %q, want %q; all output:\n%s", first, msg, out)
	}
}
