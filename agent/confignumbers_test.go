package agent

import (
	"strings"
	"testing"
)

// A number too large for any setting is refused before HCL turns it into
// the string the setting wants, which for 1e9999000 or 1e-9999000 takes
// minutes (found by FuzzParseConfig).
func TestHugeNumbersAreRefused(t *testing.T) {
	for _, src := range []string{
		`log_level = 1e9999000`,
		`log_level = "${1e9999000}"`,
		`log_level = -1e9999000`,
		`log_level = "${1e-9999000}"`,
		`log_level = 1 / 1e300 / 1e300`,
		`log_level = 1e300 * 1e300 * 1e300`,
		`plugin "p" {
  module = "p.wasm"
  config = { a = [1, { b = 1e400 }] }
}`,
	} {
		_, err := Parse("big.hcl", []byte(src))
		if err == nil || !strings.Contains(err.Error(), "Number out of range") || !strings.Contains(err.Error(), "big.hcl:") {
			t.Errorf("%s: err = %v, want Number out of range", src, err)
		}
	}
	if _, err := Parse("ok.hcl", []byte(`plugin "p" {
  module = "p.wasm"
  config = { a = 1e300, b = -2.5, c = 1024 * 1024, d = 0, e = 1e-300 }
}`)); err != nil {
		t.Errorf("numbers in range: %v", err)
	}
}
