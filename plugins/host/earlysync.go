package host

import (
	"fmt"
	"os"

	"github.com/slipstreamkv/slipstream/plugins/abi"
)

// earlySyncs is how many staged files of a call have their fsync started
// as soon as they are staged, in the background, rather than at the commit:
// a batch that changes a few files (the common, latency-bound case) then
// has their fsyncs under way while the guest finishes, the call's result is
// checked and the agent records it, instead of starting them only then.
// The guest's time limit does not pay for them: they run beside it. The
// rest of a large call's files are fsynced by the commit, commitSyncWorkers
// at a time.
const earlySyncs = commitSyncWorkers

// earlySync is the background fsync of one staged file.
type earlySync struct {
	op   *stagedOp
	done chan error
}

// syncEarly starts the fsync of op's staged file in r, if the call has not
// started earlySyncs of them yet.
func (s *stage) syncEarly(r *os.Root, op *stagedOp) {
	if op.synced || s.earlyStarted >= earlySyncs {
		return
	}
	s.earlyStarted++
	e := earlySync{op: op, done: make(chan error, 1)}
	s.early = append(s.early, e)
	sync, tmp := s.syncFile, op.tmp()
	go func() { e.done <- sync(r, tmp) }()
}

// collectEarly waits for every background fsync started so far and marks
// the files they synced. The first failure of a file still staged is kept
// for syncStaged: a failed fsync is never retried (the kernel may have
// dropped the pages it could not write, and a second fsync would succeed
// on what is left).
func (s *stage) collectEarly() {
	for _, e := range s.early {
		err := <-e.done
		if s.ops == nil || e.op.idx >= len(s.ops) || s.ops[e.op.idx] != e.op {
			continue // superseded or discarded: its file is gone anyway
		}
		if err == nil {
			e.op.synced = true
		} else if s.earlyErr == nil {
			s.earlyErr = fmt.Errorf("%w: commit: fsync the file staged for %s in output %q: %v", ErrIO, abi.Quote(e.op.path), e.op.output, err)
		}
	}
	s.early = nil
}
