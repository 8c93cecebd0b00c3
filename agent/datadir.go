package agent

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/hashicorp/hcl/v2"
)

// checkDataDir refuses a data_dir the agent cannot use: one that is not a
// directory (or lies below a file), or that it cannot list. One that does
// not exist yet passes: Run creates it. validate, once, plan, run and a
// reload all check it first, so each says the same, naming the setting,
// the path and where it is set.
func checkDataDir(cfg *Config) error {
	fi, err := os.Stat(cfg.DataDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case errors.Is(err, syscall.ENOTDIR):
		err = notADirectoryAbove(cfg.DataDir)
	case err == nil && !fi.IsDir():
		err = syscall.ENOTDIR
	case err == nil:
		var f *os.File
		if f, err = os.Open(cfg.DataDir); err == nil {
			_, err = f.Readdirnames(1)
			f.Close()
			if err == io.EOF {
				err = nil
			}
		}
	}
	if err != nil {
		return dataDirError(cfg, err)
	}
	return nil
}

// dataDirError is err about cfg's data_dir, which it names with the place
// it is set. An *fs.PathError of the data dir itself is shortened to its
// cause (the path is named already).
func dataDirError(cfg *Config, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == cfg.DataDir {
		err = pe.Err
	}
	if cfg.DataDirRange.Filename == "" {
		return fmt.Errorf("agent: data_dir %s (the default): %w", cfg.DataDir, err)
	}
	return fmt.Errorf("agent: %s: data_dir %s: %w", setAt(cfg.DataDirRange), cfg.DataDir, err)
}

// notADirectoryAbove names the file that a path goes through as if it were
// a directory (stat said ENOTDIR).
func notADirectoryAbove(path string) error {
	for dir := filepath.Dir(path); dir != path; path, dir = dir, filepath.Dir(dir) {
		if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
			return fmt.Errorf("%s is %w", dir, syscall.ENOTDIR)
		}
	}
	return syscall.ENOTDIR
}

// setAt is where a setting is written, FILE:LINE, for errors that are not
// configuration diagnostics.
func setAt(rng hcl.Range) string {
	return fmt.Sprintf("%s:%d", rng.Filename, rng.Start.Line)
}
