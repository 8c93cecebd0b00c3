package agent

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/slipstreamkv/slipstream/internal/atomicfile"
	"github.com/slipstreamkv/slipstream/snapshot"
)

// Kinds of local state a watch keeps in its directory, as the quarantine
// metric and /status name them.
const (
	stateKindFold    = "fold"
	stateKindJournal = "journal"
	stateKindState   = "state"
	// stateKindRecord is the record of the files committed to the outputs
	// (driftrecord.go).
	stateKindRecord = "record"
)

// maxQuarantinedShown bounds the quarantines /status lists for a watch.
const maxQuarantinedShown = 10

// corruptError is local state whose content does not load (as opposed to a
// read that failed). The watch quarantines such state and rebuilds it; it
// never quarantines on an I/O error, which fails the session instead.
type corruptError struct {
	kind string // one of the stateKind constants
	path string
	err  error
}

func (e *corruptError) Error() string {
	return fmt.Sprintf("agent: %s %s does not load: %v", e.kind, e.path, e.err)
}

func (e *corruptError) Unwrap() error { return e.err }

// foldCorrupt reports whether err, from opening a fold, means that the fold's
// content does not load: the log is refused ([snapshot.ErrInvalidFormat],
// [snapshot.ErrCorrupted]), Pebble reports corruption, or a file stands
// where a directory should (or the reverse). Anything else (permissions,
// I/O, a full disk, a lock held by another owner, an error Pebble does not
// type) is not taken for corruption: it fails the session, which retries.
func foldCorrupt(err error) bool {
	if errors.Is(err, snapshot.ErrInvalidFormat) || errors.Is(err, snapshot.ErrCorrupted) || pebble.IsCorruptionError(err) {
		return true
	}
	var errno syscall.Errno
	return errors.As(err, &errno) && (errno == syscall.ENOTDIR || errno == syscall.EISDIR)
}

// quarantine moves the damaged file or directory at path aside, beside it
// as path.quarantined-<UTC time> (it is never deleted), and says so: an ERROR log
// line, the slipagent_quarantined_total metric and the watch's /status.
// The caller then starts that state afresh from the bucket.
func (r *watchRunner) quarantine(kind, path string, reason error) error {
	at := time.Now().UTC()
	dst, err := atomicfile.Quarantine(path, at)
	if err != nil {
		return fmt.Errorf("quarantining damaged %s %s: %w (move it aside by hand)", kind, path, err)
	}
	r.log.Error("local state does not load; moved it aside and rebuilding it from the bucket",
		"kind", kind, "path", path, "quarantined_as", dst, "reason", reason)
	r.a.metrics.quarantined(r.conf.Name, kind)
	r.status.quarantined(QuarantinedState{Kind: kind, Path: dst, Reason: reason.Error(), At: at})
	return nil
}
