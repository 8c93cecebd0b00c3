package kvcore

import (
	"errors"
	"testing"
)

func TestValidNames(t *testing.T) {
	keys := []struct {
		s                string
		key, prefix, bkt bool
	}{
		{"", false, true, false},
		{"a", true, true, true},
		{"node.a", true, true, false},
		{"node.", false, true, false},
		{"node", true, true, true},
		{"a-b/c_d=e.F9", true, true, false},
		{".a", false, false, false},
		{"a..b", false, false, false},
		{"a b", false, false, false},
		{"a.*", false, false, false},
		{"a.>", false, false, false},
		{"ä", false, false, false},
		{"a_b-C", true, true, true},
		{"a/b", true, true, false},
	}
	for _, c := range keys {
		if got := ValidKey(c.s); got != c.key {
			t.Errorf("ValidKey(%q) = %v, want %v", c.s, got, c.key)
		}
		if got := ValidPrefix(c.s); got != c.prefix {
			t.Errorf("ValidPrefix(%q) = %v, want %v", c.s, got, c.prefix)
		}
		if got := ValidBucket(c.s); got != c.bkt {
			t.Errorf("ValidBucket(%q) = %v, want %v", c.s, got, c.bkt)
		}
	}
}

func TestScopeValidate(t *testing.T) {
	for _, s := range []Scope{AllKeys(), Prefixes("a."), Prefixes("node", "x.y."), Prefixes("a", "")} {
		if err := s.Validate(); err != nil {
			t.Errorf("%v: %v", s, err)
		}
	}
	if err := (Scope{}).Validate(); !errors.Is(err, ErrEmptyScope) {
		t.Errorf("zero scope: %v", err)
	}
	if err := Prefixes().Validate(); !errors.Is(err, ErrEmptyScope) {
		t.Errorf("no prefixes: %v", err)
	}
	for _, p := range []string{".a", "a..", "a b", "a.*", ">"} {
		if err := Prefixes("ok.", p).Validate(); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("prefix %q: %v", p, err)
		}
	}
}
