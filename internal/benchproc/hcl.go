package benchproc

import (
	"strconv"
	"strings"
)

// HCLString quotes s as an HCL string literal without interpolation, for
// the agent configurations the benchmarks write.
func HCLString(s string) string {
	q := strconv.Quote(s)
	q = strings.ReplaceAll(q, "${", "$${")
	return strings.ReplaceAll(q, "%{", "%%{")
}
