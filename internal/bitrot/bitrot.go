// Package bitrot damages files as a failing disk would, for tests of what
// reads them.
package bitrot

import (
	"os"
	"testing"
)

// Flip inverts every bit of the second quarter of the file at path.
func Flip(t testing.TB, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(b) / 4; i < len(b)/2; i++ {
		b[i] ^= 0xff
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
