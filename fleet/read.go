package fleet

import (
	"context"
	"fmt"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// Read lists the records of a report bucket. Entries that are not records
// (a key not of the form <host>.<watch>, a value that does not decode, a
// record naming another host than its key) are left out and counted in
// skipped.
func Read(ctx context.Context, reports kvcore.Reader) (records []Record, skipped int, err error) {
	entries, err := reports.Scan(ctx, "")
	if err != nil {
		return nil, 0, fmt.Errorf("fleet: reading the reports: %w", err)
	}
	records = make([]Record, 0, len(entries))
	for _, e := range entries {
		r, err := Decode(e.Key, e.Value)
		if err != nil {
			skipped++
			continue
		}
		r.Stored = e.Created
		records = append(records, r)
	}
	return records, skipped, nil
}
