package agent

import (
	"fmt"
	"path/filepath"

	"github.com/hashicorp/hcl/v2"
)

// An output directory is the plugin's: a full render removes every file in
// it that the plugin does not write. The configuration is refused when two
// outputs share files, or an output holds the agent's own files, however
// the paths are spelled (symlinks included): each would prune the other's
// files for ever while the watches say they are ready.

// realDir returns path with the symlinks of its longest existing ancestor
// resolved, so that two spellings of one directory compare equal even
// before the directory exists.
func realDir(path string) string {
	rest := ""
	for p := path; ; {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Join(r, rest)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return path
		}
		rest = filepath.Join(filepath.Base(p), rest)
		p = parent
	}
}

// placedOutput is an output of a watch with its resolved directory.
type placedOutput struct {
	*OutputConf
	watch string
	real  string
}

// placeOutput checks o, an output of watch, against the outputs placed
// before it and the agent's own files, and returns it placed.
func (c *Config) placeOutput(watch string, o *OutputConf, placed []placedOutput, diags hcl.Diagnostics) (placedOutput, hcl.Diagnostics) {
	p := placedOutput{o, watch, realDir(o.Dir)}
	for _, other := range placed {
		if within(p.real, other.real) || within(other.real, p.real) {
			same := ""
			if p.real != o.Dir || other.real != other.Dir {
				same = fmt.Sprintf(" (%s and %s once symlinks are resolved)", p.real, other.real)
			}
			diags = append(diags, errAt(o.DirRange, "Overlapping output directories", fmt.Sprintf("%s overlaps the output %q in %s%s: a full render of one would prune the other's files.", o.Dir, other.Name, other.DefRange.String(), same)))
		}
	}
	for _, own := range append(c.ownFiles(), ownFile{"configuration file", o.DefRange.Filename}) {
		if own.path != "" && within(realDir(own.path), p.real) {
			diags = append(diags, errAt(o.DirRange, "Output directory holds the agent's files", fmt.Sprintf("output %q: %s contains the agent's %s %s: a full render would remove it. Give the output a directory of its own.", o.Name, o.Dir, own.setting, own.path)))
		}
	}
	return p, diags
}
