package agent

import (
	"fmt"

	"github.com/slipstreamkv/slipstream/internal/atomicfile"
)

// makeOutputDirs creates the watch's output directories that are missing,
// durably (the parent of each directory it creates is fsynced). The watch
// makes them when it starts and again before every full render, so that an
// output directory removed by hand (rm -rf) is rendered again in full rather
// than failing every plugin call that writes to it. An incremental batch
// does not re-create one: its files alone would not restore the rest.
func (r *watchRunner) makeOutputDirs() error {
	for _, o := range r.conf.Outputs {
		created, err := atomicfile.MkdirAll(o.Dir, 0o755)
		if err != nil {
			return fmt.Errorf("output %s: creating its directory: %w", o.Name, err)
		}
		if created {
			r.log.Info("created the output directory", "output", o.Name, "dir", o.Dir)
		}
	}
	return nil
}
