package main

import (
	"path"

	"github.com/slipstreamkv/slipstream/plugins/sdk"
)

// prune removes, on a full render, the files in the outputs of cfg that no
// template writes: an output directory is the plugin's, and a destination
// renamed or dropped from the configuration would otherwise leave its old
// file there for good. The removals are staged like any write, so the
// agent's deletion guard judges them and a commit makes them durable; an
// output that lost a file gets the hooks of its templates requested.
// Names the host would refuse to remove (see sdk.CheckPath) are left, with
// a warning, rather than failing every render.
func prune(h *sdk.Host, cfg *config) error {
	keep := map[string]bool{}
	hooks := map[string][]string{} // per output, its templates' hooks
	var outputs []string
	for _, t := range cfg.templates {
		keep[t.output+"\x00"+t.path] = true
		if _, seen := hooks[t.output]; !seen {
			outputs = append(outputs, t.output)
			hooks[t.output] = nil
		}
		if t.hook != "" {
			hooks[t.output] = append(hooks[t.output], t.hook)
		}
	}
	for _, output := range outputs {
		removed, err := pruneDir(h, output, "", keep)
		if err != nil {
			return err
		}
		if !removed {
			continue
		}
		for _, hook := range hooks[output] {
			if err := h.RequestHook(hook); err != nil {
				return err
			}
		}
	}
	return nil
}

// pruneDir removes the files below dir in output that keep does not name,
// and reports whether it removed any.
func pruneDir(h *sdk.Host, output, dir string, keep map[string]bool) (bool, error) {
	removed := false
	for e, err := range h.ReadDir(output, dir) {
		if err != nil {
			return false, err
		}
		p := path.Join(dir, e.Name)
		if err := sdk.CheckPath(p); err != nil {
			h.Logf(sdk.LevelWarn, "template: not removing a file no template writes in output %q: %v", output, err)
			continue
		}
		if e.IsDir() {
			did, err := pruneDir(h, output, p, keep)
			if err != nil {
				return false, err
			}
			removed = removed || did
			continue
		}
		if keep[output+"\x00"+p] {
			continue
		}
		did, err := h.RemoveFile(output, p)
		if err != nil {
			return false, err
		}
		removed = removed || did
	}
	return removed, nil
}
