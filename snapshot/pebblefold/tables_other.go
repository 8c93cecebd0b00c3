//go:build !unix

package pebblefold

import "github.com/cockroachdb/pebble/v2/vfs"

// mappedTables returns fs: tables are read with the file system's reads.
func mappedTables(fs vfs.FS) vfs.FS { return fs }
