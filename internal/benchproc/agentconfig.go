package benchproc

import (
	"fmt"
	"path/filepath"
	"strings"
)

// TemplateAgent is the agent every benchmark runs: one watch whose template
// example plugin renders the bucket into one file of sorted key=value
// lines (the configuration of the yardstick's bench_slipagent_agent.sh),
// and an http listener for /readyz and /status.
type TemplateAgent struct {
	DataDir  string
	CacheDir string // "": the default, inside DataDir
	Servers  []string
	Plugin   string // the template module
	Watch    string
	Bucket   string
	Out      string // the rendered file
	HTTP     string // host:port
	// Extra lines of the plugin block and of the watch block.
	PluginSettings, WatchSettings string
}

// HCL is the agent's configuration.
func (c TemplateAgent) HCL() string {
	var b strings.Builder
	fmt.Fprintf(&b, "data_dir = %s\n", HCLString(c.DataDir))
	if c.CacheDir != "" {
		fmt.Fprintf(&b, "cache_dir = %s\n", HCLString(c.CacheDir))
	}
	servers := make([]string, len(c.Servers))
	for i, s := range c.Servers {
		servers[i] = HCLString(s)
	}
	fmt.Fprintf(&b, `
nats {
  servers = [%s]
}

plugin "template" {
  module = %s
%s  config = {
    template = %s
    output   = "render"
    path     = %s
    hook     = ""
  }
}

watch %q {
  bucket = %q
  plugin = "template"
  output "render" {
    dir = %s
  }
%s}

http {
  listen = %q
}
`, strings.Join(servers, ", "), HCLString(c.Plugin), c.PluginSettings,
		HCLString("{{ range .Entries }}{{ .Key }}={{ .Value }}\n{{ end }}"),
		HCLString(filepath.Base(c.Out)), c.Watch, c.Bucket, HCLString(filepath.Dir(c.Out)), c.WatchSettings, c.HTTP)
	return b.String()
}
