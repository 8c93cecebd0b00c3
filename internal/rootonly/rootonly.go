// Package rootonly is for tests that need root: they skip elsewhere, and
// fail instead where RequireEnv says root is expected (CI running as root).
package rootonly

import (
	"os"
	"testing"
)

// RequireEnv names the environment variable that makes [Require] fail,
// rather than skip, a test not running as root (.ci/run sets it as root).
const RequireEnv = "SLIPSTREAM_REQUIRE_ROOT"

// Require skips tb, or fails it when RequireEnv is "1", unless the test runs
// as root; why says what needs root.
func Require(tb testing.TB, why string) {
	tb.Helper()
	require(tb, os.Geteuid(), why)
}

func require(tb testing.TB, euid int, why string) {
	tb.Helper()
	if euid == 0 {
		return
	}
	if os.Getenv(RequireEnv) == "1" {
		tb.Fatalf("%s needs root, this test runs as uid %d, and %s=1", why, euid, RequireEnv)
		return
	}
	tb.Skipf("%s needs root; this test runs as uid %d (%s=1 makes this a failure)", why, euid, RequireEnv)
}
