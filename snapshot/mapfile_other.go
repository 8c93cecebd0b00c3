//go:build !unix

package snapshot

import (
	"errors"
	"os"
)

// mapFile is not supported here: entries are copied instead (see window).
func mapFile(*os.File, int64, int) ([]byte, error) { return nil, errors.ErrUnsupported }

// unmapFile is never called without mapFile.
func unmapFile([]byte) error { return errors.ErrUnsupported }
