//go:build !unix

package agent

import "io/fs"

// fileIdentity returns zeros where files have no inode or numeric owner: the
// record then relies on the mtime, size, mode and digest.
func fileIdentity(fs.FileInfo) (ino uint64, uid, gid uint32) { return 0, 0, 0 }
