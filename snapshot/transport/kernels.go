package transport

// PointerState is what a pointer swap found at the pointer: nothing
// (Present false), an unparseable value (Present, RankKnown false), or a
// manifest at cursor rank Rank.
type PointerState struct {
	Present   bool
	RankKnown bool
	Rank      uint64
}

// PointerPublishAllowed reports whether an artifact of cursor rank
// candidate may replace the pointer found in state: an absent or
// unparseable pointer always, otherwise only by the same or a newer rank
// (upstream spec §10).
func PointerPublishAllowed(state PointerState, candidate uint64) bool {
	if !state.Present || !state.RankKnown {
		return true
	}
	return candidate >= state.Rank
}

// PayloadPrunable reports whether a payload object may be deleted: it is
// not the pointer's target, it is older than the grace period, its rank is
// known and strictly below the pointer's (upstream spec §10).
func PayloadPrunable(payloadRank uint64, rankKnown bool, pointerRank uint64, isPointerTarget, agedOut bool) bool {
	return !isPointerTarget && agedOut && rankKnown && payloadRank < pointerRank
}
