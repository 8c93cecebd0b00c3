//go:build unix

package host

import (
	"io/fs"
	"syscall"
)

// ownedBy reports whether fi belongs to owner (always true for a nil owner).
func ownedBy(fi fs.FileInfo, owner *Owner) bool {
	if owner == nil {
		return true
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == owner.UID && int(st.Gid) == owner.GID
}
