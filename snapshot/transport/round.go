package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// RoundScratchPrefix names the temporary directory an export round works
// in, in its scratch directory; one a crash left behind can be removed
// once no round runs there.
const RoundScratchPrefix = ".slipstream-export-round-"

// ErrLoopGone: the watch loop an export round asked for an export has
// ended without answering.
var ErrLoopGone = errors.New("transport: the watch loop is gone; export not delivered")

// Round is one export round's outcome.
type Round struct {
	// Pointer describes the exported artifact.
	Pointer *Pointer
	// Outcome says whether the pointer moved to it.
	Outcome PublishOutcome
	// Pruned is how many stale payloads were deleted.
	Pruned int
}

// RunExportRound runs one fleet-wide export round for key (upstream spec
// §9.10): it takes the lease for ttl (returning nil, nil when another
// holder has it), asks the watch loop behind exports for an export of its
// fold at its applied cursor into a temporary directory in scratch,
// uploads it, completes the lease, and, when the pointer moved, prunes
// payloads older than 4 × ttl. Any failure before the upload finished
// abandons the lease so that the next round can retry at once. The
// temporary directory is always removed.
func RunExportRound(ctx context.Context, lease *Lease, ttl time.Duration, exports chan<- kvcore.ExportRequest, t *Transport, key, scratch string, log *slog.Logger) (*Round, error) {
	if log == nil {
		log = slog.Default()
	}
	guard, err := lease.TryAcquire(ctx, ttl)
	if err != nil {
		return nil, fmt.Errorf("export lease: %w", err)
	}
	if guard == nil {
		return nil, nil
	}
	// The lease's own writes use a context that outlives a cancelled round.
	bg := context.WithoutCancel(ctx)
	tmp, err := os.MkdirTemp(scratch, RoundScratchPrefix)
	if err != nil {
		guard.Abandon(bg)
		return nil, fmt.Errorf("export round %q: %w", key, err)
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "artifact")
	if err := requestExport(ctx, exports, dir); err != nil {
		guard.Abandon(bg)
		return nil, fmt.Errorf("export round %q: %w", key, err)
	}
	out, p, err := t.Upload(ctx, key, dir)
	if err != nil {
		guard.Abandon(bg)
		return nil, fmt.Errorf("export round %q: %w", key, err)
	}
	if !out.Published {
		log.Warn("a newer artifact is already published; this one is left unreferenced", "key", key, "cursor", p.Cursor.String(), "remote", out.Remote.String())
	}
	if err := guard.Complete(bg, p.Cursor); err != nil {
		log.Warn("could not record the export round's completion", "key", key, "err", err)
	}
	r := &Round{Pointer: p, Outcome: out}
	if out.Published {
		grace := time.Duration(math.MaxInt64)
		if ttl < grace/4 {
			grace = 4 * ttl
		}
		if r.Pruned, err = t.Prune(ctx, key, grace); err != nil {
			log.Warn("could not prune old artifacts", "key", key, "err", err)
		}
	}
	return r, nil
}

// requestExport asks the watch loop for an export into dir and waits for
// its answer.
func requestExport(ctx context.Context, exports chan<- kvcore.ExportRequest, dir string) error {
	reply := make(chan kvcore.ExportResult, 1)
	select {
	case exports <- kvcore.ExportRequest{Dir: dir, Reply: reply}:
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrLoopGone, ctx.Err())
	}
	select {
	case res := <-reply:
		return res.Err
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrLoopGone, ctx.Err())
	}
}
