package benchproc

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
)

// Workdir is dir, or a new temporary directory named after prefix when dir
// is empty, and the function that removes it at the end of the run unless
// keep is set (then its path is logged).
func Workdir(dir, prefix string, keep bool) (string, func(), error) {
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", prefix+"-"); err != nil {
			return "", nil, err
		}
	}
	if keep {
		slog.Info("run directory kept", "dir", dir)
		return dir, func() {}, nil
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

// Inputs makes each path absolute and checks that it exists, naming a
// missing one with how to build it.
func Inputs(paths ...*string) error {
	for _, p := range paths {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		if _, err := os.Stat(abs); err != nil {
			return fmt.Errorf("%w (build it with make build plugins-go, or set its flag)", err)
		}
		*p = abs
	}
	return nil
}
