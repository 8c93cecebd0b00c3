package natskv

import (
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Port of upstream resume_guard_boundaries (spec §10, §11.G 116).
func TestResumeWindow(t *testing.T) {
	tests := []struct {
		rev, first uint64
		ok         bool
	}{
		{3, 4, true},
		{3, 1, true},
		{3, 5, false},
		{math.MaxUint64, math.MaxUint64, true},
		{0, 1, true},
		{0, 2, false},
	}
	for _, tc := range tests {
		if got := resumeWindowOK(tc.rev, tc.first); got != tc.ok {
			t.Errorf("resumeWindowOK(%d, %d) = %v, want %v", tc.rev, tc.first, got, tc.ok)
		}
	}
	if s, ok := resumeStartSequence(3); !ok || s != 4 {
		t.Errorf("resumeStartSequence(3) = %d, %v", s, ok)
	}
	if _, ok := resumeStartSequence(math.MaxUint64); ok {
		t.Error("resumeStartSequence(MaxUint64) wrapped")
	}
}

// Port of upstream resume_start_does_not_wrap_in_nats (§11.G 117): the
// successor of a revision is computed only by resumeStartSequence.
func TestNoOpenCodedSuccessor(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	succ := regexp.MustCompile(`\b(rev|revision|pos|cursor)\s*\+\s*1\b`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || f == "resume.go" {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(src), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "//") {
				continue
			}
			if succ.MatchString(line) {
				t.Errorf("%s:%d computes a revision's successor by hand: %s", f, i+1, strings.TrimSpace(line))
			}
		}
	}
}

// Port of upstream cursor_expired_matches_known_nats_error_strings (§5.8, §11.F 106).
func TestLooksExpired(t *testing.T) {
	for _, msg := range []string{
		"consumer start sequence is too old",
		"first sequence is 42, requested 1",
		"sequence not found in stream",
		"requested revision is too old",
		"Consumer Start Sequence Too Old",
	} {
		if !looksExpired(msg) {
			t.Errorf("looksExpired(%q) = false", msg)
		}
	}
	for _, msg := range []string{"connection refused", "permission denied", "stream not found"} {
		if looksExpired(msg) {
			t.Errorf("looksExpired(%q) = true", msg)
		}
	}
}
