package transport

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Prune deletes the payloads of key that are provably stale: not the
// pointer's target, older than grace, and of a lower cursor rank than the
// pointer (see [PayloadPrunable]). Without a readable pointer nothing is
// provably stale and nothing is deleted. It returns how many it deleted.
func (t *Transport) Prune(ctx context.Context, key string, grace time.Duration) (int, error) {
	p, err := t.Manifest(ctx, key)
	if err != nil {
		return 0, nil
	}
	cutoff := t.now().Add(-grace)
	objs, err := t.objects.List(ctx, t.payloadDir(key))
	if err != nil {
		return 0, fmt.Errorf("transport: prune %q: %w", key, err)
	}
	pointerRank := Rank(p.Cursor)
	n := 0
	for _, o := range objs {
		base := strings.TrimPrefix(o.Name, t.payloadDir(key))
		head, _, _ := strings.Cut(base, "-")
		rank, perr := strconv.ParseUint(head, 16, 64)
		if !PayloadPrunable(rank, perr == nil, pointerRank, o.Name == p.Payload, !o.Modified.After(cutoff)) {
			continue
		}
		if err := t.objects.Delete(ctx, o.Name); err != nil {
			return n, fmt.Errorf("transport: prune %q: %w", key, err)
		}
		n++
	}
	return n, nil
}
