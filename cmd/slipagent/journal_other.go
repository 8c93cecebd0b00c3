//go:build !unix

package main

import "os"

// isJournalStream reports false: the journal is systemd's, on Linux.
func isJournalStream(*os.File, string) bool { return false }
