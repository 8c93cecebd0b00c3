package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/goreleaser/nfpm/v2/files"
)

// Where the packages install things.
const (
	binaryPath  = "/usr/bin/slipagent"
	unitPath    = "/lib/systemd/system/slipagent.service"
	configPath  = "/etc/slipagent/agent.hcl"
	pluginsPath = "/usr/lib/slipagent/plugins"
	// dropInPath is the hooks drop-in, shipped as an example to copy into
	// /etc/systemd/system/slipagent.service.d/: below
	// /usr/lib/systemd/system/slipagent.service.d/ it would loosen the unit
	// on every host. Not under /usr/share/doc, which minimal images leave
	// out (dpkg path-exclude).
	dropInPath = "/usr/share/slipagent/slipagent.service.d/hooks-restart-services.conf"
)

// options are the inputs of one build.
type options struct {
	Version string // as git describe prints it; the packages' version is derived from it
	Arch    string // GOARCH
	Binary  string // the slipagent binary
	Plugins string // a directory of *.wasm example plugins
	Root    string // the repository root
	Out     string // where the artifacts go
}

// contents lists what every artifact carries: the binary, the unit, the
// hooks drop-in (an example, inactive), the example configuration (a config
// file dpkg and rpm leave alone once the administrator changed it) and each
// example plugin.
func contents(opts options) (files.Contents, error) {
	if _, err := os.Stat(opts.Binary); err != nil {
		return nil, fmt.Errorf("the binary to package: %w", err)
	}
	plugins, err := filepath.Glob(filepath.Join(opts.Plugins, "*.wasm"))
	if err != nil {
		return nil, fmt.Errorf("plugins %s: %w", opts.Plugins, err)
	}
	if len(plugins) == 0 {
		return nil, fmt.Errorf("no example plugins (*.wasm) in %s: run `make plugins-go` first", opts.Plugins)
	}
	sort.Strings(plugins)
	c := files.Contents{
		{Source: opts.Binary, Destination: binaryPath, FileInfo: &files.ContentFileInfo{Mode: 0o755}},
		{Source: filepath.Join(opts.Root, "contrib", "slipagent.service"), Destination: unitPath, FileInfo: &files.ContentFileInfo{Mode: 0o644}},
		{Source: filepath.Join(opts.Root, "contrib", "slipagent.service.d", "hooks-restart-services.conf"), Destination: dropInPath, FileInfo: &files.ContentFileInfo{Mode: 0o644}},
		{Source: filepath.Join(opts.Root, "agent.hcl.example"), Destination: configPath, Type: files.TypeConfigNoReplace, FileInfo: &files.ContentFileInfo{Mode: 0o640}},
		{Destination: pluginsPath, Type: files.TypeDir, FileInfo: &files.ContentFileInfo{Mode: 0o755}},
	}
	for _, p := range plugins {
		c = append(c, &files.Content{Source: p, Destination: pluginsPath + "/" + filepath.Base(p), FileInfo: &files.ContentFileInfo{Mode: 0o644}})
	}
	for _, f := range c {
		if f.Source == "" {
			continue
		}
		if _, err := os.Stat(f.Source); err != nil {
			return nil, fmt.Errorf("%s: %w", f.Destination, err)
		}
	}
	return c, nil
}
