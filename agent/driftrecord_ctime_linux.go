//go:build linux

package agent

import (
	"io/fs"
	"syscall"
)

// changeTime returns a file's change time (ctime) in nanoseconds, 0 when
// unknown. Nothing in user space sets it: an edit that restores the size and
// the modification time still moves it.
func changeTime(fi fs.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ctim.Nano()
	}
	return 0
}
