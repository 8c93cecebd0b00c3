//go:build unix

package agent

import (
	"io/fs"
	"syscall"
)

// fileIdentity returns a file's inode and owner.
func fileIdentity(fi fs.FileInfo) (ino uint64, uid, gid uint32) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino), st.Uid, st.Gid
	}
	return 0, 0, 0
}
