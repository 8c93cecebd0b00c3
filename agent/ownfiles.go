package agent

import (
	"fmt"
	"path/filepath"
	"strings"
)

// ownFile is a file or directory the agent reads, or creates, because its
// configuration names it; setting says where, as an operator finds it in
// the configuration: `plugin "files" module`.
type ownFile struct{ setting, path string }

// ownFiles lists every path the configuration points the agent at, bar the
// configuration's own files, so that no output directory may hold one (a
// full render removes every file of an output its plugin does not write).
// A hook's command or check counts when its program is a path (has a "/");
// a bare name is looked up in $PATH. Relative paths that finalize does not
// resolve against the configuration are opened from the agent's working
// directory, and are listed so.
func (c *Config) ownFiles() []ownFile {
	own := []ownFile{{"data_dir", c.DataDir}, {"cache_dir", c.CacheDir}}
	if n := c.NATS; n != nil {
		own = append(own, ownFile{"nats creds_file", n.CredsFile})
		if t := n.TLS; t != nil {
			own = append(own, ownFile{"nats tls ca_file", t.CAFile}, ownFile{"nats tls cert_file", t.CertFile}, ownFile{"nats tls key_file", t.KeyFile})
		}
	}
	if h := c.HTTP; h != nil {
		own = append(own, ownFile{"http token_file", h.TokenFile})
		if h.Network == "unix" {
			own = append(own, ownFile{"http listen socket", h.Address})
		}
		if t := h.TLS; t != nil {
			own = append(own, ownFile{"http tls cert_file", t.CertFile}, ownFile{"http tls key_file", t.KeyFile}, ownFile{"http tls client_ca_file", t.ClientCAFile})
		}
	}
	for _, p := range c.Plugins {
		own = append(own, ownFile{fmt.Sprintf("plugin %q module", p.Name), p.Module})
	}
	for _, w := range c.Watches {
		for _, h := range w.Hooks {
			for _, cmd := range []struct {
				attr string
				argv []string
			}{{"command", h.Command}, {"check", h.Check}} {
				if len(cmd.argv) > 0 && strings.Contains(cmd.argv[0], "/") {
					own = append(own, ownFile{fmt.Sprintf("watch %q hook %q %s", w.Name, h.Name, cmd.attr), cmd.argv[0]})
				}
			}
		}
	}
	kept := own[:0]
	for _, f := range own {
		if f.path == "" {
			continue
		}
		if abs, err := filepath.Abs(f.path); err == nil {
			f.path = abs
		}
		kept = append(kept, f)
	}
	return kept
}
