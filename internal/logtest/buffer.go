// Package logtest collects what a logger (or a command running in the
// test's process) writes, for tests that read it while it still writes.
package logtest

import (
	"bytes"
	"strings"
	"sync"
)

// Buffer is an io.Writer for a logger (slog.NewTextHandler(&b, nil)) or a
// command's output that a test may read at any time.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Count returns how many times s was written so far.
func (b *Buffer) Count(s string) int {
	return strings.Count(b.String(), s)
}
