package fleet

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// BenchmarkAggregate10k aggregates the records of 10,000 hosts (one watch
// each), from the report bucket's values as Read gets them: ".../ours"
// decodes and aggregates, ".../baseline" only unmarshals them (the least any
// reader does), so the ratio shows what checking and aggregating adds.
// Run it with: go test -run '^$' -bench Aggregate10k ./fleet | go run ./internal/benchtab
func BenchmarkAggregate10k(b *testing.B) {
	const hosts = 10_000
	keys, values := make([]string, hosts), make([][]byte, hosts)
	now := time.Now()
	for i := range hosts {
		r := Record{Host: fmt.Sprintf("host%05d", i), Agent: "v1.0.0", Watch: "routes", Bucket: "cfg",
			Revision: uint64(1000 - i%17), State: StateReady, Since: now, Time: now, Interval: Duration(30 * time.Second)}
		if i%100 == 0 {
			r.State, r.Error = StateFailing, "hook reload: exit status 1"
		}
		keys[i] = Key(r.Host, r.Watch)
		values[i], _ = json.Marshal(r)
	}
	b.Run("ours", func(b *testing.B) {
		for b.Loop() {
			records := make([]Record, 0, hosts)
			for i := range keys {
				r, err := Decode(keys[i], values[i])
				if err != nil {
					b.Fatal(err)
				}
				records = append(records, r)
			}
			rep := Aggregate(records, Query{Revision: 1000, Now: now})
			if rep.Watches[0].Hosts != hosts {
				b.Fatalf("hosts = %d", rep.Watches[0].Hosts)
			}
		}
		b.ReportMetric(float64(hosts), "hosts")
	})
	b.Run("baseline", func(b *testing.B) {
		for b.Loop() {
			for i := range values {
				var r Record
				if err := json.Unmarshal(values[i], &r); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(hosts), "hosts")
	})
}
