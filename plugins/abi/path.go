package abi

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Path limits.
const (
	// MaxPathLen is the longest relative path a plugin may stage, in bytes.
	MaxPathLen = 4096
	// MaxNameLen is the longest path component, in bytes.
	MaxNameLen = 255
	// MaxPathDepth is the most components a path may have. It bounds the
	// directories one stage_write may create, and so the time one host call
	// may take.
	MaxPathDepth = 32
	// StagePrefix starts the names of the host's staging files. Paths with a
	// component starting with it are refused, and output_list hides them.
	StagePrefix = ".slipstream-"
)

// CheckPath reports whether p is a valid path for a file under an output
// directory. The rules:
//
//   - non-empty, at most [MaxPathLen] bytes and [MaxPathDepth] components,
//     valid UTF-8, no control characters (bytes below 0x20 and 0x7f);
//   - relative: it does not start with "/";
//   - components are separated by single "/", with no empty component (no
//     "//", no trailing "/"), none equal to "." or "..", none longer than
//     [MaxNameLen] bytes, none starting with [StagePrefix].
//
// CheckPath is purely lexical; the host also refuses paths that would leave
// the output directory through a symlink.
func CheckPath(p string) error {
	if p == "" {
		return fmt.Errorf("%w: empty path", ErrInvalid)
	}
	if len(p) > MaxPathLen {
		return fmt.Errorf("%w: path of %d bytes exceeds %d", ErrInvalid, len(p), MaxPathLen)
	}
	if !utf8.ValidString(p) {
		return fmt.Errorf("%w: path %s is not valid UTF-8", ErrInvalid, Quote(p))
	}
	if strings.HasPrefix(p, "/") {
		return fmt.Errorf("%w: path %s is absolute", ErrInvalid, Quote(p))
	}
	for _, c := range []byte(p) {
		if c < 0x20 || c == 0x7f {
			return fmt.Errorf("%w: path %s contains a control character", ErrInvalid, Quote(p))
		}
	}
	depth := 0
	for name := range strings.SplitSeq(p, "/") {
		depth++
		switch {
		case depth > MaxPathDepth:
			return fmt.Errorf("%w: path %s has more than %d components", ErrInvalid, Quote(p), MaxPathDepth)
		case name == "":
			return fmt.Errorf("%w: path %s has an empty component", ErrInvalid, Quote(p))
		case name == "." || name == "..":
			return fmt.Errorf("%w: path %s contains %q", ErrInvalid, Quote(p), name)
		case len(name) > MaxNameLen:
			return fmt.Errorf("%w: path %s has a component longer than %d bytes", ErrInvalid, Quote(p), MaxNameLen)
		case strings.HasPrefix(name, StagePrefix):
			return fmt.Errorf("%w: path %s uses the reserved prefix %q", ErrInvalid, Quote(p), StagePrefix)
		}
	}
	return nil
}

// CheckDir is CheckPath for a directory argument, where "" names the output
// directory itself.
func CheckDir(p string) error {
	if p == "" {
		return nil
	}
	return CheckPath(p)
}
