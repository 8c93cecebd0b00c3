//go:build !unix

package host

import "os"

// openDirFlags opens a directory to list it.
const openDirFlags = os.O_RDONLY
