package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/slipstreamkv/slipstream/kvcore/natskv"
)

// ErrUnreachable is wrapped by Once's error when no NATS server of the
// configuration could be reached.
var ErrUnreachable = errors.New("no NATS server could be reached")

// WatchesError is Once's error when watches did not catch up: each failed,
// or is held by the deletion guard.
type WatchesError struct {
	Watches []WatchStatus // the ones that did not catch up, as they were
}

func (e *WatchesError) Error() string {
	msgs := make([]string, len(e.Watches))
	for i, s := range e.Watches {
		msgs[i] = fmt.Sprintf("watch %s: %s: %s", s.Name, s.State, s.Reason)
	}
	return strings.Join(msgs, "; ")
}

// Held reports whether a watch is held by the deletion guard (and none
// failed otherwise): `slipagent resync --confirm` is what it waits for.
func (e *WatchesError) Held() bool {
	for _, s := range e.Watches {
		if s.State != stateHeld {
			return false
		}
	}
	return len(e.Watches) > 0
}

// onceInterval is how often Once looks at the watches.
const onceInterval = 20 * time.Millisecond

// Once runs every watch until it has caught up with its bucket as the
// bucket was when the watch attached (applied through its plugin, files
// committed, hooks run, cursor checkpointed) and had its first drift check,
// then stops gracefully and returns nil, like consul-template -once.
//
// It connects once: when no server can be reached it returns an error
// wrapping ErrUnreachable; credentials that cannot be used are a
// *natskv.CredsError, before it dials. A watch that fails (its plugin, a check or hook,
// its bucket) or is held by the deletion guard is not retried: once every
// other watch has caught up, Once stops them all and returns a
// *WatchesError naming the ones that did not. It does not serve HTTP nor
// notify systemd.
func (a *Agent) Once(ctx context.Context) error {
	// Refuse untrusted files and bad credentials first: a server that
	// cannot be reached must not hide the refusal behind it. Run, in once
	// mode, does not check them again.
	a.once = true
	if err := a.preflight(); err != nil {
		return err
	}
	// Another agent on the data_dir is said at once, not after a NATS
	// server that does not answer.
	lock, err := openDataDir(a.cfg)
	if err != nil {
		return err
	}
	a.dirLock = lock
	connectCtx, cancel := context.WithTimeout(ctx, a.cfg.NATS.Timeout)
	err = a.conn.Connect(connectCtx)
	cancel()
	if err != nil {
		lock.Close()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w at %s: %w", ErrUnreachable, natskv.RedactServers(a.cfg.NATS.Servers), err)
	}
	a.cfg = a.cfg.withoutHTTP()
	a.notify = func(string) error { return nil }

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	t := time.NewTicker(onceInterval)
	defer t.Stop()
	for {
		select {
		case err := <-done:
			if err == nil {
				err = ctx.Err()
			}
			return err
		case <-t.C:
		}
		failed, pending := a.onceProgress()
		if pending {
			continue
		}
		stop()
		if err := <-done; err != nil {
			return err
		}
		if len(failed) > 0 {
			return &WatchesError{Watches: failed}
		}
		return ctx.Err()
	}
}

// onceProgress sorts the watches for Once: the ones that failed (or are
// held, waiting for a confirmation), and whether any is still catching up.
// A hold an earlier run left is pending until the watch looked for its
// confirmation: a confirmed one is being applied.
func (a *Agent) onceProgress() (failed []WatchStatus, pending bool) {
	for i, s := range a.Status() {
		switch {
		case s.Failures > 0 || s.State == stateFailing || s.State == stateDetached:
			failed = append(failed, s)
		case s.State == stateHeld && !s.Held.Checked.IsZero():
			failed = append(failed, s)
		case s.State == stateHeld || !s.Synced || !a.watches[i].driftChecked():
			pending = true
		}
	}
	return failed, pending
}

// withoutHTTP is a copy of the configuration without its HTTP listener.
func (c *Config) withoutHTTP() *Config {
	cp := *c
	cp.HTTP = nil
	return &cp
}

// firstCheck is closed once a watch's first drift check is over (at once
// when drift checks are off).
type firstCheck struct {
	once sync.Once
	done chan struct{}
}

func newFirstCheck() *firstCheck { return &firstCheck{done: make(chan struct{})} }

func (f *firstCheck) mark() { f.once.Do(func() { close(f.done) }) }

func (r *watchRunner) driftChecked() bool {
	select {
	case <-r.firstCheck.done:
		return true
	default:
		return false
	}
}
