package kvtest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/slipstreamkv/slipstream/kvcore"
)

func (s *suite) scanCases() []testCase {
	return []testCase{
		{"ScanLatestLiveValues", s.testScanLatest},
		{"ScanVersionsAreLive", s.testScanVersions},
		{"ScanHidesTombstones", s.testScanTombstones},
		{"ScanPrefixIsAStringPrefix", s.testScanStringPrefix},
		{"ScanLargeBucket", s.testScanLarge},
		{"ScanEmptyBucket", s.testScanEmpty},
		{"ScanUnderWrites", s.testScanUnderWrites},
	}
}

// scanned returns the keys and "key=value" pairs of a scan, sorted.
func (s *suite) scanned(t testing.TB, st kvcore.Store, prefix string) (keys, pairs []string) {
	t.Helper()
	ctx := s.ctx(t)
	keys, err := st.Keys(ctx, prefix)
	noErr(t, "keys "+prefix, err)
	entries, err := st.Scan(ctx, prefix)
	noErr(t, "scan "+prefix, err)
	for _, e := range entries {
		pairs = append(pairs, e.Key+"="+string(e.Value))
	}
	slices.Sort(keys)
	slices.Sort(pairs)
	return keys, pairs
}

func equal(t testing.TB, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s = %q, want %q", what, got, want)
	}
}

func (s *suite) testScanLatest(t *testing.T) {
	st := s.open(t, kvcore.StoreConfig{History: 3})
	s.put(t, st, "node.a", "1")
	s.put(t, st, "node.a", "2")
	s.put(t, st, "node.b", "3")
	s.put(t, st, "other.c", "4")
	s.put(t, st, "third.d", "5")
	s.del(t, st, "node.b")
	s.del(t, st, "third.d")
	keys, pairs := s.scanned(t, st, "node.")
	equal(t, "keys node.", keys, "node.a")
	equal(t, "scan node.", pairs, "node.a=2")
	keys, pairs = s.scanned(t, st, "")
	equal(t, "keys of the bucket", keys, "node.a", "other.c")
	equal(t, "scan of the bucket", pairs, "node.a=2", "other.c=4")
}

func (s *suite) testScanVersions(t *testing.T) {
	st := s.open(t, kvcore.StoreConfig{})
	ctx := s.ctx(t)
	s.put(t, st, "node.a", "1")
	s.put(t, st, "node.a", "2")
	vb := s.put(t, st, "node.b", "3")
	entries, err := st.Scan(ctx, "node.")
	noErr(t, "scan", err)
	var found kvcore.Entry
	for _, e := range entries {
		if e.Key == "node.b" {
			found = e
		}
	}
	if found.Version != vb {
		t.Fatalf("scan version of node.b = %v, want %v", found.Version, vb)
	}
	_, err = st.Update(ctx, "node.b", []byte("4"), found.Version)
	noErr(t, "update with the scanned version", err)
}

func (s *suite) testScanTombstones(t *testing.T) {
	st := s.open(t, kvcore.StoreConfig{})
	ctx := s.ctx(t)
	s.put(t, st, "node.a", "1")
	vb := s.put(t, st, "node.b", "2")
	s.put(t, st, "node.empty", "")
	s.put(t, st, "node.purged", "3")
	noErr(t, "delete-version", st.DeleteVersion(ctx, "node.b", vb))
	noErr(t, "purge", st.Purge(ctx, "node.purged"))
	keys, pairs := s.scanned(t, st, "node.")
	equal(t, "keys", keys, "node.a")
	equal(t, "scan", pairs, "node.a=1")
}

func (s *suite) testScanStringPrefix(t *testing.T) {
	st := s.open(t, kvcore.StoreConfig{})
	for _, k := range []string{"node", "node.a", "node.a.b", "nodes", "nodes.x", "nod", "other.node", "a.node", "a.nodes", "a.no"} {
		s.put(t, st, k, "v")
	}
	keys, _ := s.scanned(t, st, "node")
	equal(t, "keys node", keys, "node", "node.a", "node.a.b", "nodes", "nodes.x")
	keys, _ = s.scanned(t, st, "node.a")
	equal(t, "keys node.a", keys, "node.a", "node.a.b")
	keys, _ = s.scanned(t, st, "a.nod")
	equal(t, "keys a.nod", keys, "a.node", "a.nodes")
	keys, _ = s.scanned(t, st, "zzz")
	equal(t, "keys zzz", keys)
}

func (s *suite) testScanLarge(t *testing.T) {
	// More keys than JetStream's default max_ack_pending (1000), which
	// truncated scans that used acknowledged consumers.
	st := s.open(t, kvcore.StoreConfig{MaxBytes: 64 << 20})
	const n = 1500
	for i := range n {
		s.put(t, st, fmt.Sprintf("node.%05d", i), fmt.Sprint(i))
	}
	s.put(t, st, "other", "x")
	keys, pairs := s.scanned(t, st, "node.")
	if len(keys) != n || len(pairs) != n {
		t.Fatalf("keys/scan found %d/%d keys, want %d", len(keys), len(pairs), n)
	}
	if keys[0] != "node.00000" || keys[n-1] != fmt.Sprintf("node.%05d", n-1) {
		t.Fatalf("keys run from %s to %s", keys[0], keys[n-1])
	}
}

func (s *suite) testScanEmpty(t *testing.T) {
	st := s.open(t, kvcore.StoreConfig{})
	keys, pairs := s.scanned(t, st, "")
	equal(t, "keys", keys)
	equal(t, "scan", pairs)
}
