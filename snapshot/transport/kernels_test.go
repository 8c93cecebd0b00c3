package transport

import "testing"

func TestPointerPublishAllowedVectors(t *testing.T) {
	for _, tc := range []struct {
		state     PointerState
		candidate uint64
		want      bool
	}{
		{PointerState{}, 0, true},
		{PointerState{Present: true}, 0, true},
		{PointerState{Present: true, RankKnown: true, Rank: 5}, 5, true},
		{PointerState{Present: true, RankKnown: true, Rank: 5}, 6, true},
		{PointerState{Present: true, RankKnown: true, Rank: 5}, 4, false},
	} {
		if got := PointerPublishAllowed(tc.state, tc.candidate); got != tc.want {
			t.Errorf("PointerPublishAllowed(%+v, %d) = %v, want %v", tc.state, tc.candidate, got, tc.want)
		}
	}
}

func TestPayloadPrunableVectors(t *testing.T) {
	for _, tc := range []struct {
		rank         uint64
		known        bool
		pointer      uint64
		target, aged bool
		want         bool
	}{
		{4, true, 5, false, true, true},
		{5, true, 5, false, true, false},
		{6, true, 5, false, true, false},
		{4, true, 5, true, true, false},
		{0, false, 5, false, true, false},
		{4, true, 5, false, false, false},
	} {
		if got := PayloadPrunable(tc.rank, tc.known, tc.pointer, tc.target, tc.aged); got != tc.want {
			t.Errorf("PayloadPrunable(%+v) = %v, want %v", tc, got, tc.want)
		}
	}
}
