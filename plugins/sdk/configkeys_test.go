package sdk

import "testing"

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"a", "", 1},
		{"", "abc", 3},
		{"prefix", "prefix", 0},
		{"prefx", "prefix", 1},
		{"prefixx", "prefix", 1},
		{"perfix", "prefix", 2},
		{"hook", "hok", 1},
		{"kitten", "sitting", 3},
		{"mode", "node", 1},
		{"ab", "ba", 2},
	} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := editDistance(tc.b, tc.a); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.b, tc.a, got, tc.want)
		}
	}
}

func TestClosest(t *testing.T) {
	known := []string{"hook", "mode", "output", "prefix", "prune", "strict"}
	for key, want := range map[string]string{
		"prefx":    "prefix",
		"perfix":   "prefix",
		"hok":      "hook",
		"mod":      "mode",
		"prun":     "prune",
		"outptu":   "output",
		"x":        "",
		"prefixes": "prefix",
		"xyz":      "",
		"pre":      "prune", // two edits; prefix is three
		"modes":    "mode",
		"strictt":  "strict",
		"node":     "mode",
	} {
		got, ok := closest(key, known)
		if got != want || ok != (want != "") {
			t.Errorf("closest(%q) = %q, %v; want %q", key, got, ok, want)
		}
	}
}
