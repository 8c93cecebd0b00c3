package contrib

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// settingRE matches a unit's setting, also one commented out as an example
// (which an administrator may uncomment).
var settingRE = regexp.MustCompile(`(?m)^#?\s*([A-Za-z]+)=(.*)$`)

// pathSettings take paths the unit's mount namespace must find: systemd fails
// the unit (226/NAMESPACE) when one is missing, unless it starts with "-".
var pathSettings = map[string]bool{
	"ReadWritePaths": true, "ReadOnlyPaths": true, "InaccessiblePaths": true,
	"ExecPaths": true, "NoExecPaths": true, "BindPaths": true, "BindReadOnlyPaths": true,
}

// createdBy maps the settings whose directories systemd creates for the
// unit to where it creates them.
var createdBy = map[string]string{
	"StateDirectory": "/var/lib", "CacheDirectory": "/var/cache", "RuntimeDirectory": "/run",
	"LogsDirectory": "/var/log", "ConfigurationDirectory": "/etc",
}

// TestUnitPathsAreOptional: every path the shipped unit and drop-ins name in
// ReadWritePaths= and its kin is optional ("-/etc/nginx/conf.d"), unless the
// unit creates it (StateDirectory= …): a host without it must still start
// the agent.
func TestUnitPathsAreOptional(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("slipagent.service.d", "*.conf"))
	if err != nil {
		t.Fatal(err)
	}
	files = append([]string{"slipagent.service"}, files...)
	var settings [][]string
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range settingRE.FindAllStringSubmatch(string(src), -1) {
			settings = append(settings, append([]string{f}, m[1:]...))
		}
	}
	created := map[string]bool{}
	for _, s := range settings {
		if base, ok := createdBy[s[1]]; ok {
			for _, name := range strings.Fields(s[2]) {
				created[filepath.Join(base, name)] = true
			}
		}
	}
	checked := 0
	for _, s := range settings {
		if !pathSettings[s[1]] {
			continue
		}
		for _, p := range strings.Fields(s[2]) {
			checked++
			path := strings.TrimLeft(p, "-+")
			if strings.Contains(p[:len(p)-len(path)], "-") {
				continue
			}
			path, _, _ = strings.Cut(path, ":") // BindPaths=SRC:DEST
			if !created[path] {
				t.Errorf("%s: %s=%s: the unit fails (226/NAMESPACE) on a host without %s; write -%s", s[0], s[1], p, path, p)
			}
		}
	}
	if checked == 0 {
		t.Error("no ReadWritePaths= or kin found: the test reads nothing")
	}
}
