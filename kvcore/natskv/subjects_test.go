package natskv

import (
	"slices"
	"testing"

	"github.com/slipstreamkv/slipstream/kvcore"
)

func TestFilterSubjects(t *testing.T) {
	pre := subjectPrefix("b")
	tests := []struct {
		name    string
		scope   kvcore.Scope
		want    []string
		widened bool
	}{
		{"whole bucket", kvcore.AllKeys(), []string{"$KV.b.>"}, false},
		{"empty prefix is the bucket", kvcore.Prefixes("node.", ""), []string{"$KV.b.>"}, false},
		{"token prefix", kvcore.Prefixes("node."), []string{"$KV.b.node.>"}, false},
		{"two token prefixes", kvcore.Prefixes("vpcB.", "vpcA."), []string{"$KV.b.vpcA.>", "$KV.b.vpcB.>"}, false},
		{"partial first token widens to the bucket", kvcore.Prefixes("node"), []string{"$KV.b.>"}, true},
		{"partial later token widens to its parent", kvcore.Prefixes("a.no"), []string{"$KV.b.a.>"}, true},
		{"whole key widens to its parent", kvcore.Prefixes("node.a"), []string{"$KV.b.node.>"}, true},
		{"nested prefixes collapse", kvcore.Prefixes("a.b.", "a.", "a.b.c."), []string{"$KV.b.a.>"}, false},
		{"covered by a widened one", kvcore.Prefixes("a.b", "a.c."), []string{"$KV.b.a.>"}, true},
		{"duplicates", kvcore.Prefixes("x.", "x."), []string{"$KV.b.x.>"}, false},
		{"siblings stay apart", kvcore.Prefixes("a.", "ab."), []string{"$KV.b.a.>", "$KV.b.ab.>"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, widened := filterSubjects(pre, tc.scope)
			if !slices.Equal(got, tc.want) || widened != tc.widened {
				t.Fatalf("filterSubjects(%v) = %q, %v; want %q, %v", tc.scope, got, widened, tc.want, tc.widened)
			}
		})
	}
}
