package kvcore

import (
	"fmt"
	"strings"
)

// Scope selects the keys a watch covers: the whole bucket, or the union of one
// or more key prefixes served by a single backend consumer.
//
// Prefixes are plain string prefixes of the key ("node." matches "node.a").
// The zero Scope, and Prefixes() with no arguments, select nothing and are
// refused by Watch with [ErrEmptyScope]: an empty prefix list never silently
// means "everything".
type Scope struct {
	all      bool
	prefixes []string
}

// AllKeys is the scope of the whole bucket.
func AllKeys() Scope { return Scope{all: true} }

// Prefixes is the scope of every key that starts with one of ps.
// An empty string among ps selects the whole bucket.
func Prefixes(ps ...string) Scope {
	for _, p := range ps {
		if p == "" {
			return AllKeys()
		}
	}
	return Scope{prefixes: append([]string(nil), ps...)}
}

// All reports whether the scope is the whole bucket.
func (s Scope) All() bool { return s.all }

// List returns the scope's prefixes: [""] for the whole bucket, nil for an
// empty scope. The slice is a copy.
func (s Scope) List() []string {
	if s.all {
		return []string{""}
	}
	return append([]string(nil), s.prefixes...)
}

// Validate returns [ErrEmptyScope] when the scope selects nothing, and an
// error wrapping [ErrInvalidKey] when a prefix is outside the portable
// syntax (see [ValidPrefix]).
func (s Scope) Validate() error {
	if !s.all && len(s.prefixes) == 0 {
		return ErrEmptyScope
	}
	for _, p := range s.prefixes {
		if !ValidPrefix(p) {
			return fmt.Errorf("%w: prefix %q", ErrInvalidKey, p)
		}
	}
	return nil
}

// Match reports whether key is in the scope.
func (s Scope) Match(key string) bool {
	if s.all {
		return true
	}
	for _, p := range s.prefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// String renders the scope for logs: "*" or the quoted prefixes.
func (s Scope) String() string {
	if s.all {
		return "*"
	}
	q := make([]string, len(s.prefixes))
	for i, p := range s.prefixes {
		q[i] = `"` + p + `*"`
	}
	return "[" + strings.Join(q, " ") + "]"
}
