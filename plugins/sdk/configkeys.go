package sdk

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/agext/levenshtein"
)

// CheckConfigKeys returns an error naming every key of the plugin's
// configuration that is not one of known, with the closest known key when
// one is near enough to be a typo, and the keys the plugin reads:
//
//	unknown configuration key "prefx" (did you mean "prefix"?); this plugin reads: hook, prefix, strict
//
// It returns nil when every key is known. Call it from
// [Configurer.Configure] with every key the plugin reads, so that a
// misspelt setting refuses the module (and fails slipagent validate)
// rather than silently leaving the setting at its default.
func CheckConfigKeys(h *Host, known ...string) error {
	keys, err := h.ConfigKeys()
	if err != nil {
		return err
	}
	known = slices.Compact(slices.Sorted(slices.Values(known)))
	var unknown []string
	for _, k := range keys {
		if _, ok := slices.BinarySearch(known, k); ok {
			continue
		}
		u := strconv.Quote(k)
		if s, ok := closest(k, known); ok {
			u += fmt.Sprintf(" (did you mean %q?)", s)
		}
		unknown = append(unknown, u)
	}
	if len(unknown) == 0 {
		return nil
	}
	what := "unknown configuration key "
	if len(unknown) > 1 {
		what = "unknown configuration keys "
	}
	reads := "this plugin reads no configuration"
	if len(known) > 0 {
		reads = "this plugin reads: " + strings.Join(known, ", ")
	}
	return fmt.Errorf("%s%s; %s", what, strings.Join(unknown, ", "), reads)
}

// closest returns the known key nearest to key by edit distance (as HCL
// suggests attribute names), if it is at most 2 edits away and fewer edits
// than key has runes (so that "x" does not suggest "a"). Ties go to the
// first in known.
func closest(key string, known []string) (best string, ok bool) {
	bestDist := 3
	for _, k := range known {
		if d := levenshtein.Distance(key, k, nil); d < bestDist && d < utf8.RuneCountInString(key) {
			best, bestDist, ok = k, d, true
		}
	}
	return best, ok
}
