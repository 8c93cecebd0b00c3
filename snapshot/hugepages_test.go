package snapshot

import (
	"bytes"
	"testing"
)

// prefaulted returns its slice unchanged, whatever its size and
// alignment, and the memory stays usable and keeps what was written.
func TestPrefaultedKeepsTheSlice(t *testing.T) {
	const bigBuf = 8 << 20
	for _, n := range []int{0, 1, bigBuf - 1, bigBuf, 3*bigBuf + 12345} {
		big := make([]byte, n+1)
		for i := range big {
			big[i] = byte(i * 7)
		}
		s := big[1:] // unaligned start
		want := bytes.Clone(s)
		got := prefaulted(s)
		if len(got) != len(s) || cap(got) != cap(s) || (n > 0 && &got[0] != &s[0]) {
			t.Fatalf("n=%d: a different slice came back", n)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("n=%d: contents changed", n)
		}
		for i := range got {
			got[i] = 0xA5
		}
	}
	refs := prefaulted(make([]ref, bigBuf))
	refs[len(refs)-1] = 7
	if refs[len(refs)-1] != 7 || len(refs) != bigBuf {
		t.Fatal("typed slice broken")
	}
}
