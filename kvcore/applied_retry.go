package kvcore

import (
	"context"
	"math/rand/v2"
	"time"
)

// retry calls fn until it succeeds or ctx is done, backing off in between;
// an error no retry can cure (see isFatal) ends it at once, and so does any
// error under AppliedConfig.NoRetry, unreported. It clears the
// reported failure only if it reported one itself, so a step that keeps
// working does not hide another one that keeps failing; and a step retried
// within one that is failing (a fold write between the attempts of a batch
// that fails) puts that failure back once it succeeds, instead of clearing
// it while the batch still fails (the count of failures in a row goes on).
func (l *appliedLoop) retry(ctx context.Context, fn func() error) error {
	outer := l.progress.Err
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil {
			switch {
			case attempt == 0:
			case outer != nil:
				l.progress.Err = outer
				l.report()
			default:
				l.recovered()
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if l.cfg.NoRetry {
			return err
		}
		l.failed(err)
		if isFatal(err) {
			return err
		}
		if !l.sleep(ctx, attempt) {
			return ctx.Err()
		}
	}
}

// backoff is the wait after a failed attempt: full jitter over an
// exponentially growing, capped window.
func (l *appliedLoop) backoff(attempt int) time.Duration {
	d := l.cfg.MaxBackoff
	if attempt < 30 {
		d = min(l.cfg.MinBackoff<<attempt, l.cfg.MaxBackoff)
	}
	return d/2 + rand.N(d/2+1)
}

// sleep waits for the attempt's backoff. It returns false when ctx ended first.
func (l *appliedLoop) sleep(ctx context.Context, attempt int) bool {
	t := time.NewTimer(l.backoff(attempt))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
