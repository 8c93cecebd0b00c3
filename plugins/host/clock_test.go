package host

import (
	"testing"
	"time"
)

// TestClockPausesWhileTheHostStages: a call's clock does not run while the
// host stages a file (paused), however long that takes, and runs out once
// the guest has used up its limit.
func TestClockPausesWhileTheHostStages(t *testing.T) {
	expired := make(chan struct{})
	c := startClock(3*time.Second, func() { close(expired) })
	defer c.stop()
	c.pause()
	time.Sleep(4 * time.Second) // past the limit, all of it paused
	select {
	case <-expired:
		t.Fatal("the clock ran out while paused")
	default:
	}
	if c.over() {
		t.Fatal("over() while paused with time left")
	}
	c.resume()
	select {
	case <-expired:
	case <-time.After(time.Minute):
		t.Fatal("the clock never ran out once resumed")
	}
	if !c.over() {
		t.Fatal("over() is false after the clock ran out")
	}
	c.pause() // no effect once over
	if !c.over() {
		t.Fatal("over() is false after pausing a clock that ran out")
	}
}
