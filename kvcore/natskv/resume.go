package natskv

import (
	"math"
	"strings"
)

// resumeWindowOK reports whether a stream whose first retained sequence is
// firstSeq still holds every revision after rev: firstSeq ≤ rev+1
// (saturating). The server itself never says: it silently starts a consumer
// at its first sequence when asked for an older one.
//
// The check is conservative. Per-key history eviction also raises the first
// sequence without losing any latest value, which then reads as expired; only
// time-to-live expiry, discard-old eviction and purges really lose records,
// and they remove the oldest records first, so they always raise it.
func resumeWindowOK(rev, firstSeq uint64) bool {
	next, ok := resumeStartSequence(rev)
	return !ok || firstSeq <= next
}

// resumeStartSequence is the stream sequence a watch resuming after rev starts
// at. It refuses rev = MaxUint64, whose successor would wrap to 0 and replay
// the whole bucket.
func resumeStartSequence(rev uint64) (uint64, bool) {
	if rev == math.MaxUint64 {
		return 0, false
	}
	return rev + 1, true
}

// expiryPhrases are fragments of server errors that mean "the start sequence
// is no longer retained". Matching is biased towards yes: a false positive
// costs one re-sync, a false negative a silent gap.
var expiryPhrases = []string{"start sequence", "first sequence", "sequence not found", "too old"}

// looksExpired reports whether a consumer-creation error says the requested
// start sequence is gone.
func looksExpired(msg string) bool {
	msg = strings.ToLower(msg)
	for _, p := range expiryPhrases {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}
