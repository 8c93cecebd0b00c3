package host

import (
	"sync"
	"time"
)

// clock is one call's time limit. It runs while the guest runs (sleeps
// included) and pauses while the host stages a file for it (stage_write,
// stage_remove): creating and writing files is the host's work, bounded by
// the plugin's max_files and max_bytes, and a render of a million files must
// not spend its time limit on the disk's speed. When the limit is used up,
// expire runs (it cancels the call's context, which interrupts the guest).
type clock struct {
	mu      sync.Mutex
	left    time.Duration // the limit left when the clock last started
	started time.Time     // zero while paused
	timer   *time.Timer
	expired bool
}

// startClock starts a clock of limit that calls expire once it is used up.
func startClock(limit time.Duration, expire func()) *clock {
	c := &clock{left: limit, started: time.Now()}
	c.timer = time.AfterFunc(limit, func() {
		c.mu.Lock()
		c.expired = true
		c.mu.Unlock()
		expire()
	})
	return c
}

// pause stops the clock until resume.
func (c *clock) pause() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.expired || c.started.IsZero() {
		return
	}
	c.timer.Stop() // if it fired already, expired is set once we unlock
	c.left -= time.Since(c.started)
	c.started = time.Time{}
}

// resume restarts a paused clock.
func (c *clock) resume() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.expired || !c.started.IsZero() {
		return
	}
	c.started = time.Now()
	c.timer.Reset(max(c.left, 0))
}

// over reports whether the limit is used up, even if the timer has not run
// expire yet: the limit is strict.
func (c *clock) over() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.expired {
		return true
	}
	if c.started.IsZero() {
		return c.left <= 0
	}
	return time.Since(c.started) >= c.left
}

// stop stops the clock for good; expire no longer runs.
func (c *clock) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timer.Stop()
}
