package abi

import (
	"strings"
	"testing"
)

func TestQuote(t *testing.T) {
	if got := Quote("a\x00"); got != `"a\x00"` {
		t.Errorf("Quote(short) = %s", got)
	}
	long := strings.Repeat("\xff", 1<<20)
	want := `"` + strings.Repeat(`\xff`, MaxQuoteLen) + `"… (1048576 bytes)`
	if got := Quote(long); got != want {
		t.Errorf("Quote(long) = %.40s…, %d bytes", got, len(got))
	}
	if got := Quote([]byte(long)); got != want {
		t.Errorf("Quote([]byte(long)) differs from Quote(long)")
	}
	// CheckPath's errors quote the path through Quote.
	err := CheckPath(strings.Repeat("\x01", MaxPathLen))
	if err == nil || len(err.Error()) > 4*MaxQuoteLen+100 {
		t.Errorf("CheckPath of %d control bytes: %d-byte error", MaxPathLen, len(err.Error()))
	}
}
