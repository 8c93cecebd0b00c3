//go:build !unix || aix || solaris

package filelock

import (
	"errors"
	"os"
)

const noFollow = 0

func tryLock(f *os.File) error {
	return &os.PathError{Op: "flock", Path: f.Name(), Err: errors.ErrUnsupported}
}
