package benchproc

import (
	"os"
	"strconv"
)

// EnvOr is the environment variable name, or def when it is empty: the
// default of a benchmark's flag, so make can pass settings through.
func EnvOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// EnvInt is the environment variable name as an integer, or def when it is
// not one.
func EnvInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return n
	}
	return def
}
