package host

import (
	"context"
	"slices"
	"testing"
)

func TestMemView(t *testing.T) {
	v := NewMemView(Entry{Key: "b", Value: []byte("1")}, Entry{Key: "a"}, Entry{Key: "b", Value: []byte("2")})
	v.Apply([]Update{
		{Op: OpPut, Key: "c/1"}, {Op: OpPut, Key: "c/2"}, {Op: OpPut, Key: "c/3"}, {Op: OpPut, Key: "d"},
		{Op: OpDelete, Key: "a"}, {Op: OpPurge, Key: "c/2"}, {Op: OpDelete, Key: "never"},
	})
	if e, ok, _ := v.Get(context.Background(), "b"); !ok || string(e.Value) != "2" {
		t.Fatalf("b = %+v %v", e, ok)
	}
	if _, ok, _ := v.Get(context.Background(), "a"); ok || v.Len() != 4 {
		t.Fatalf("a still present or len %d", v.Len())
	}
	scan := func(prefix, after string, limit int) []string {
		var keys []string
		v.Scan(context.Background(), prefix, after, func(e Entry) bool {
			keys = append(keys, e.Key)
			return len(keys) < limit
		})
		return keys
	}
	tests := []struct {
		prefix, after string
		limit         int
		want          []string
	}{
		{"", "", 10, []string{"b", "c/1", "c/3", "d"}},
		{"c/", "", 10, []string{"c/1", "c/3"}},
		{"c/", "c/1", 10, []string{"c/3"}},
		{"c/", "a", 10, []string{"c/1", "c/3"}},
		{"c/", "c/3", 10, nil},
		{"c/", "z", 10, nil},
		{"", "b", 2, []string{"c/1", "c/3"}},
		{"x", "", 10, nil},
	}
	for _, tt := range tests {
		if got := scan(tt.prefix, tt.after, tt.limit); !slices.Equal(got, tt.want) {
			t.Errorf("Scan(%q, %q) = %v, want %v", tt.prefix, tt.after, got, tt.want)
		}
	}
}
