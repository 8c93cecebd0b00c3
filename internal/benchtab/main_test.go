package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRenderPairsOursWithBaseline(t *testing.T) {
	in := `goos: linux
pkg: github.com/slipstreamkv/slipstream/kvcore/natskv
BenchmarkScan/100k/ours-2         	       1	 200000000 ns/op	   500000 keys/s
BenchmarkScan/100k/baseline-2     	       1	 180000000 ns/op	   555555 keys/s
BenchmarkLonely-2                 	      10	      1234 ns/op
PASS
`
	results, err := parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 3 {
		t.Fatalf("parsed %d results, want 3", len(results))
	}
	var out bytes.Buffer
	render(&out, results)
	got := out.String()
	for _, want := range []string{"natskv Scan/100k", "200000000", "180000000", "0.90", "Lonely", "1234"} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "100k/baseline") {
		t.Errorf("paired baseline listed on its own:\n%s", got)
	}
}

func TestRatio(t *testing.T) {
	tests := []struct {
		name       string
		unit       string
		ours, base float64
		want       string
	}{
		{"slower time", "ns/op", 200, 100, "0.50"},
		{"faster time", "ns/op", 100, 200, "2.00"},
		{"lower rate", "keys/s", 90, 100, "0.90"},
		{"zero ours time", "ns/op", 0, 100, "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ratio(tt.unit, tt.ours, tt.base); got != tt.want {
				t.Errorf("ratio(%q, %v, %v) = %s, want %s", tt.unit, tt.ours, tt.base, got, tt.want)
			}
		})
	}
}
