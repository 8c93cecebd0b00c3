//go:build !linux

package host

import "github.com/tetratelabs/wazero/experimental"

// mapMemory returns nil: guests' memories are Go slices on this platform.
func mapMemory(uint64) experimental.LinearMemory { return nil }
