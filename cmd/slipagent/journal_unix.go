//go:build unix

package main

import (
	"fmt"
	"os"
	"syscall"
)

// isJournalStream reports whether f is the stream named by stream, the
// JOURNAL_STREAM variable systemd sets ("device:inode" of the stream it
// connected to the journal): a process whose standard error was redirected
// elsewhere inherits the variable but not the stream.
func isJournalStream(f *os.File, stream string) bool {
	if stream == "" {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return stream == fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}
