package kvcore

import (
	"context"
	"fmt"
)

// ExportRequest asks a running [WatchApplied] for an export of its fold
// (see [Fold.Export]), sent on [AppliedConfig.Exports]. The loop serves it
// between two batches while it follows the bucket: it applies and
// checkpoints the batch it is collecting, exports, and replies, so the
// export's cursor is the applied one. A request waits while the loop syncs,
// retries a failing batch or reconnects. A failed export is replied, and
// the loop goes on.
type ExportRequest struct {
	// Dir is where the export is written; it must be absent or empty.
	Dir string
	// Reply receives the result. It needs room for it (a buffer of one):
	// the loop does not wait for a receiver, and drops the result of a
	// request nobody can take it for.
	Reply chan<- ExportResult
}

// ExportResult answers an [ExportRequest].
type ExportResult struct {
	// Cursor is the cursor the export is at.
	Cursor Cursor
	// Err is why the export failed, or why the batch before it could not
	// be applied; nil on success.
	Err error
}

// export serves req.
func (l *appliedLoop) export(ctx context.Context, req ExportRequest) {
	c, err := l.fold.Export(ctx, req.Dir)
	if err != nil {
		err = fmt.Errorf("kvcore: exporting the fold to %s: %w", req.Dir, err)
		l.cfg.Logger.Warn("export failed", "scope", l.cfg.Scope.String(), "dir", req.Dir, "err", err)
	} else {
		l.cfg.Logger.Info("exported the fold", "scope", l.cfg.Scope.String(), "dir", req.Dir, "cursor", c.String())
	}
	l.replyExport(req, ExportResult{Cursor: c, Err: err})
}

// replyExport sends res to the requester, if it has room for it.
func (l *appliedLoop) replyExport(req ExportRequest, res ExportResult) {
	select {
	case req.Reply <- res:
	default:
		l.cfg.Logger.Warn("dropped an export's result: its reply channel has no room", "dir", req.Dir)
	}
}
