package abi

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckPath(t *testing.T) {
	long := strings.Repeat("a", MaxNameLen)
	tests := []struct {
		path string
		ok   bool
	}{
		{"a", true},
		{"a/b/c.conf", true},
		{"..a/b..", true},
		{".hidden", true},
		{long, true},
		{"ünïcode/名前", true},
		{"", false},
		{"/etc/passwd", false},
		{"../x", false},
		{"a/../../x", false},
		{"a/..", false},
		{"./a", false},
		{"a/./b", false},
		{"a//b", false},
		{"a/", false},
		{"a\x00b", false},
		{"a\nb", false},
		{"a\x7f", false},
		{"\xff\xfe", false},
		{long + "a", false},
		{strings.Repeat("a/", MaxPathLen/2) + "a", false},
		{strings.Repeat("d/", MaxPathDepth-1) + "f", true},
		{strings.Repeat("d/", MaxPathDepth) + "f", false},
		{".slipstream-x", false},
		{"d/.slipstream-0123.tmp", false},
	}
	for _, tt := range tests {
		err := CheckPath(tt.path)
		if (err == nil) != tt.ok {
			t.Errorf("CheckPath(%q) = %v, want ok=%v", tt.path, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("CheckPath(%q) = %v, want it to wrap ErrInvalid", tt.path, err)
		}
	}
	if err := CheckDir(""); err != nil {
		t.Errorf("CheckDir(\"\") = %v", err)
	}
	if err := CheckDir("../x"); err == nil {
		t.Error("CheckDir accepted ../x")
	}
}
