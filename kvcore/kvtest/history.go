package kvtest

import (
	"testing"

	"github.com/slipstreamkv/slipstream/kvcore"
)

func (s *suite) historyCases() []testCase {
	return []testCase{
		{"History", s.testHistory},
	}
}

// testHistory checks a [kvcore.HistoryReader]: every retained record of one
// key, oldest first, markers and empty values included, with the versions
// the writes returned; no more than the bucket keeps; only the marker after
// a purge; ErrNotFound for a key without records.
func (s *suite) testHistory(t *testing.T) {
	st := s.open(t, kvcore.StoreConfig{History: 4})
	hr, ok := st.(kvcore.HistoryReader)
	if !ok {
		t.Skip("the backend's stores do not implement kvcore.HistoryReader")
	}
	ctx := s.ctx(t)
	_, err := hr.History(ctx, "k")
	wantErr(t, "history of an absent key", err, kvcore.ErrNotFound)
	_, err = hr.History(ctx, "bad key")
	wantErr(t, "history of an invalid key", err, kvcore.ErrInvalidKey)

	v1 := s.put(t, st, "k", "1")
	s.put(t, st, "other", "x")
	v2 := s.put(t, st, "k", "")
	s.del(t, st, "k")
	got, err := hr.History(ctx, "k")
	noErr(t, "history", err)
	want(t, got, "put k=1", "put k=", "delete k")
	if got[0].Version != v1 || got[1].Version != v2 || !after(got[2].Version, v2) {
		t.Fatalf("history versions = %v %v %v, want %v %v and a later one", got[0].Version, got[1].Version, got[2].Version, v1, v2)
	}
	for _, u := range got {
		if u.Created.IsZero() {
			t.Errorf("history record %s has no time", describe(u))
		}
	}

	s.put(t, st, "k", "3")
	s.put(t, st, "k", "4")
	got, err = hr.History(ctx, "k")
	noErr(t, "history after eviction", err)
	want(t, got, "put k=", "delete k", "put k=3", "put k=4")

	noErr(t, "purge", st.Purge(ctx, "k"))
	got, err = hr.History(ctx, "k")
	noErr(t, "history after purge", err)
	want(t, got, "purge k")
}
