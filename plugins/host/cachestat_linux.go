package host

import (
	"fmt"
	"os"
	"syscall"
)

// statFingerprint is a cache entry's stat fingerprint: device, inode, size
// and change time. The change time moves with every write to the file and
// every rename over its path, and only the kernel sets it (utimes cannot),
// so a file with the fingerprint the ledger recorded when it hashed it
// still has the content it hashed: the ledger hashes it again only when
// the fingerprint differs. "" when there is none (never equal).
func statFingerprint(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	return fmt.Sprintf("%d:%d:%d:%d.%09d", st.Dev, st.Ino, st.Size, st.Ctim.Sec, st.Ctim.Nsec)
}
