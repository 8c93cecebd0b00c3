package natskv

import (
	"testing"
	"time"
)

func TestBackoffIsJitteredAndCapped(t *testing.T) {
	w := &watch{backoffBase: 100 * time.Millisecond, backoffCap: 5 * time.Second}
	for attempt := range 200 {
		want := w.backoffCap
		if attempt < 6 {
			want = w.backoffBase << attempt
		}
		seen := map[time.Duration]bool{}
		for range 20 {
			d := w.backoff(attempt)
			if d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", attempt, d, want/2, want)
			}
			seen[d] = true
		}
		if len(seen) < 2 {
			t.Fatalf("backoff(%d) is not jittered: %v", attempt, seen)
		}
	}
}
