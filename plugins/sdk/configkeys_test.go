package sdk

import "testing"

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
