package natskv

import (
	"slices"
	"strings"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// streamName is the JetStream stream that holds bucket.
func streamName(bucket string) string { return "KV_" + bucket }

// subjectPrefix is what the subject of every key of bucket starts with.
func subjectPrefix(bucket string) string { return "$KV." + bucket + "." }

// filterSubjects returns consumer filter subjects that cover the keys of
// scope without overlapping each other (the server refuses overlapping
// filters), and whether they may also match keys outside the scope, which
// the caller must then drop. Even the whole bucket gets a filter: the
// server wants one with deliver-last-per-subject.
//
// Scope prefixes are plain string prefixes, but a subject filter only
// matches whole tokens: "node." becomes "$KV.b.node.>" exactly, while "node"
// (which must match "node", "node.a" and "nodes") and "a.no" widen to their
// last complete token, "$KV.b.>" and "$KV.b.a.>".
func filterSubjects(pre string, scope kvcore.Scope) (filters []string, widened bool) {
	if scope.All() {
		return []string{pre + ">"}, false
	}
	var heads []string // filter subjects without the trailing ">"
	for _, p := range scope.List() {
		head := p
		if !strings.HasSuffix(p, ".") {
			head = p[:strings.LastIndexByte(p, '.')+1]
			widened = true
		}
		heads = append(heads, head)
	}
	// Shorter heads first, so a covering filter is kept before the ones it covers.
	slices.SortFunc(heads, func(a, b string) int { return len(a) - len(b) })
	var kept []string
	for _, h := range heads {
		covered := false
		for _, k := range kept {
			if strings.HasPrefix(h, k) {
				covered = true
				break
			}
		}
		if !covered {
			kept = append(kept, h)
		}
	}
	filters = make([]string, len(kept))
	for i, h := range kept {
		filters[i] = pre + h + ">"
	}
	slices.Sort(filters)
	return filters, widened
}
