package agent

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestWatchesWaitForTheConnection: with NATS down at start, the watches
// wait for the agent's connection, their status naming the server it
// cannot reach (not a watch failing on a connection that is not made yet),
// and once it is made they attach with no error left.
func TestWatchesWaitForTheConnection(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "alpha")
	f.srv.Shutdown()
	a, _ := f.start(f.config(filesConfig))
	waitFor(t, "the connection failure in the status", func() bool { return a.Status()[0].LastError != "" })
	if s := a.Status()[0]; !strings.Contains(s.LastError, "cannot connect to NATS at "+f.srv.URL()) || s.Ready {
		t.Errorf("status while NATS is down: %+v, want the connection failure naming %s", s, f.srv.URL())
	}
	f.srv.Start()
	waitFor(t, "the watch to catch up", func() bool { return a.Ready() })
	if s := a.Status()[0]; s.LastError != "" || s.Reason != "" {
		t.Errorf("status once caught up: %+v, want no error left", s)
	}
	if got := readFile(filepath.Join(f.dir, "out", "a.conf")); got != "alpha" {
		t.Errorf("a.conf = %q", got)
	}
}
