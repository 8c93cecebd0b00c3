package host

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/slipstreamkv/slipstream/plugins/abi"
)

// SweepStaged removes the staging files a crash between staging and commit
// (or discard) left below dir, and returns their paths. Call it for every
// output directory before the first batch. Symlinks are not followed. A
// missing dir is not an error.
func SweepStaged(dir string) ([]string, error) {
	var removed []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() && strings.HasPrefix(d.Name(), abi.StagePrefix) && strings.HasSuffix(d.Name(), ".tmp") {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			removed = append(removed, p)
		}
		return nil
	})
	if err != nil {
		return removed, fmt.Errorf("host: sweep staged files in %s: %w", dir, err)
	}
	return removed, nil
}
