package agent

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/snapshot/transport"
)

// startExports runs the watch's export rounds, if its bootstrap block asks
// for them, until the returned stop is called: about every export
// interval (first at a random point of the first one, so that a fleet
// started together spreads out) it runs a round, which exports the fold
// through exports only if it takes the bucket's lease. exports is nil
// when the watch does not export.
func (r *watchRunner) startExports(ctx context.Context, store kvcore.Store) (exports chan kvcore.ExportRequest, stop func()) {
	b := r.conf.Bootstrap
	if b == nil || b.ExportInterval <= 0 {
		return nil, func() {}
	}
	if left := sweepRoundScratch(r.dir); len(left) > 0 {
		r.log.Info("removed the scratch directories of interrupted export rounds", "dirs", left)
	}
	exports = make(chan kvcore.ExportRequest)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		d := rand.N(b.ExportInterval)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
			if err := r.exportRound(ctx, store, exports); err != nil && ctx.Err() == nil {
				r.log.Warn("export round failed; the next one retries", "object_store", b.ObjectStore, "err", err)
			}
			d = b.ExportInterval*9/10 + rand.N(b.ExportInterval/5+1)
		}
	})
	return exports, func() { cancel(); wg.Wait() }
}

// exportRound runs one export round of the watch.
func (r *watchRunner) exportRound(ctx context.Context, store kvcore.Store, exports chan<- kvcore.ExportRequest) error {
	ident, ok := store.(kvcore.BucketIdentifier)
	if !ok {
		return fmt.Errorf("bucket %s cannot tell its identity", r.conf.Bucket)
	}
	id, err := ident.BucketID(ctx)
	if err != nil {
		return err
	}
	tr, kv, err := r.transport(ctx, true)
	if err != nil {
		return err
	}
	key := artifactKey(r.conf, id)
	lease := transport.NewLease(kv, tr.LeaseKey(key), holderID(r.conf.Name), r.log)
	res, err := transport.RunExportRound(ctx, lease, r.conf.Bootstrap.LeaseTTL, exports, tr, key, r.dir, r.log)
	switch {
	case err != nil:
		return err
	case res == nil:
		r.log.Debug("another agent holds this round's export lease", "key", key)
	case res.Outcome.Published:
		r.log.Info("exported the fold as an artifact", "object", res.Pointer.Payload, "cursor", res.Pointer.Cursor.String(), "pruned", res.Pruned)
	}
	return nil
}

// holderID names this agent's watch in export leases.
func holderID(watch string) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), watch)
}

// sweepRoundScratch removes the scratch directories export rounds a crash
// interrupted left in dir, and returns them.
func sweepRoundScratch(dir string) []string {
	left, _ := filepath.Glob(filepath.Join(dir, transport.RoundScratchPrefix+"*"))
	for _, d := range left {
		os.RemoveAll(d)
	}
	return left
}
