package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/slipstreamkv/slipstream/plugins/abi"
)

const versionUsage = `usage: slipagent version [-json]

Prints the module version, the commit it was built from (with "+dirty" when
the work tree had changes), the Go version and the plugin ABI versions this
host accepts.`

// Set by `make dist` with -ldflags "-X main.stampedVersion=… -X
// main.stampedCommit=…" (git describe's version, and the commit hash with
// "+dirty" when the work tree had changes); they win over what the Go
// toolchain recorded.
var stampedVersion, stampedCommit string

// buildVersion is what "slipagent version" reports.
type buildVersion struct {
	Version  string `json:"version"`            // the main module's version, "(devel)" for a source build
	Commit   string `json:"commit,omitempty"`   // vcs.revision
	Modified bool   `json:"modified,omitempty"` // vcs.modified: built from a dirty tree
	Go       string `json:"go"`
	Platform string `json:"platform"`
	ABI      []int  `json:"plugin_abi"` // plugin ABI versions the host accepts
}

func currentVersion() buildVersion {
	v := recordedVersion()
	if stampedVersion != "" {
		v.Version = stampedVersion
	}
	if stampedCommit != "" {
		v.Commit, v.Modified = strings.CutSuffix(stampedCommit, "+dirty")
	}
	return v
}

// recordedVersion is what the Go toolchain recorded in the binary.
func recordedVersion() buildVersion {
	v := buildVersion{Version: "unknown", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH, ABI: []int{abi.Version}}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	v.Version = info.Main.Version
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

func runVersion(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("slipagent version", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if code, ok := parseFlagsOnly(fs, versionUsage, args, stdout, stderr); !ok {
		return code
	}
	v := currentVersion()
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			fmt.Fprintf(stderr, "slipagent version: %v\n", err)
			return exitFailure
		}
		return exitOK
	}
	commit := v.Commit
	switch {
	case commit == "":
		commit = "unknown"
	case v.Modified:
		commit += "+dirty"
	}
	fmt.Fprintf(stdout, "slipagent %s\ncommit:     %s\ngo:         %s %s\nplugin ABI: %s\n", v.Version, commit, v.Go, v.Platform, abiList(v.ABI))
	return exitOK
}

func abiList(versions []int) string {
	s := ""
	for i, n := range versions {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprint(n)
	}
	return s
}

// String is the version in one word, as fleet reports carry it: the module
// version, then the commit's first 12 digits and "+dirty" when known.
func (v buildVersion) String() string {
	s := v.Version
	if v.Commit != "" {
		s += "+" + v.Commit[:min(12, len(v.Commit))]
	}
	if v.Modified {
		s += "+dirty"
	}
	return s
}
