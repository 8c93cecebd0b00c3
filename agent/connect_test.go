package agent

import (
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/internal/logtest"
	"github.com/slipstreamkv/slipstream/internal/plugintest"
)

// TestWatchesWaitForTheConnection: with NATS down at start, the watches
// wait for the agent's connection, their status naming the server it
// cannot reach, rather than failing on a connection not made yet (the
// "ERROR watch failed … not connected" of a clean dev restart); once it is
// made they attach with no error left. The log says so: the start settles
// with the watch not ready (not "started"), and the connection, made after
// failures, is logged.
func TestWatchesWaitForTheConnection(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "alpha")
	f.srv.Shutdown()
	var logs logtest.Buffer
	a, err := New(f.config(filesConfig), Options{
		Logger:         slog.New(slog.NewTextHandler(&logs, nil)),
		Notify:         func(string) error { return nil },
		PluginCacheDir: plugintest.CacheDir(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()

	waitFor(t, "the connection failure in the status", func() bool { return a.Status()[0].LastError != "" })
	if s := a.Status()[0]; !strings.Contains(s.LastError, "cannot connect to NATS at "+f.srv.URL()) || s.Ready {
		t.Errorf("status while NATS is down: %+v, want the connection failure naming %s", s, f.srv.URL())
	}
	// The watch reaches its bucket only once its plugin compiled: that can
	// take long on a loaded machine, longer than waitFor's deadline.
	for deadline := time.Now().Add(5 * time.Minute); !strings.Contains(logs.String(), "plugin loaded"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the plugin did not load")
		}
	}
	time.Sleep(100 * time.Millisecond) // let the watch get to its bucket, or fail on it
	f.srv.Start()
	waitFor(t, "the watch to catch up", func() bool { return a.Ready() })
	if s := a.Status()[0]; s.LastError != "" || s.Reason != "" {
		t.Errorf("status once caught up: %+v, want no error left", s)
	}
	if got := readFile(filepath.Join(f.dir, "out", "a.conf")); got != "alpha" {
		t.Errorf("a.conf = %q", got)
	}
	if strings.Contains(logs.String(), "watch failed") {
		t.Errorf("a watch failed for want of the connection:\n%s", logs.String())
	}
	log := logs.String()
	settled := strings.Index(log, `level=WARN msg="not every watch is ready; they keep retrying" status="0/1 watches caught up, failing: cfg"`)
	connected := strings.Index(log, `level=INFO msg="connected to NATS" servers=`+f.srv.URL()+" attempts=")
	if settled < 0 || connected < settled || strings.Contains(log, `attempts=1\n`) {
		t.Errorf("the log does not say the start settled with the watch not ready, then that NATS was connected after failed attempts:\n%s", log)
	}
}

// A start that goes well is logged as such: systemd hears READY=1 once
// the watch caught up and its first drift check is over, and the agent
// then logs that every watch caught up, not that one is not ready (which
// it did while the drift check ran right after the catch-up).
func TestCleanStartLogsEveryWatchCaughtUp(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "alpha")
	var logs logtest.Buffer
	var notes []string
	var mu sync.Mutex
	a, err := New(f.config(filesConfig), Options{
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Notify: func(s string) error {
			mu.Lock()
			defer mu.Unlock()
			notes = append(notes, s)
			return nil
		},
		PluginCacheDir: plugintest.CacheDir(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	_, stop := f.run(a)
	defer stop()
	waitFor(t, "the start logged", func() bool { return strings.Contains(logs.String(), "every watch caught up") })
	if strings.Contains(logs.String(), "not every watch is ready") {
		t.Errorf("a clean start warned that a watch is not ready:\n%s", logs.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(notes, "READY=1") {
		t.Errorf("systemd heard %q, want READY=1", notes)
	}
}

// A watch that is not ready while the connection it had is down says so
// first in its status's reason: what failed (a timeout, a store not
// connected) is a consequence.
func TestStatusSaysTheConnectionIsDown(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "alpha")
	a, _ := f.start(f.config(filesConfig))
	waitFor(t, "ready", a.Ready)
	connected := func() float64 { return gauge(a, "slipagent_nats_connected", nil) }
	if c := connected(); c != 1 {
		t.Errorf("slipagent_nats_connected = %v while connected, want 1", c)
	}
	f.srv.Shutdown()
	// The metric says so at once, while the watches may stay ready for
	// stale_after: an operator's alert needs no watch to fail.
	waitFor(t, "slipagent_nats_connected 0", func() bool { return connected() == 0 })
	waitFor(t, "the watch not ready", func() bool { return !a.Status()[0].Ready })
	if s := a.Status()[0]; !strings.HasPrefix(s.Reason, "not connected to NATS, reconnecting: ") {
		t.Errorf("reason while NATS is down: %q", s.Reason)
	}
	f.srv.Start()
	waitFor(t, "ready again", a.Ready)
	if s := a.Status()[0]; s.Reason != "" {
		t.Errorf("reason once ready again: %q", s.Reason)
	}
	if c := connected(); c != 1 {
		t.Errorf("slipagent_nats_connected = %v once reconnected, want 1", c)
	}
}
