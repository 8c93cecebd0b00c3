package natskv

import (
	"log/slog"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/internal/logtest"
	"github.com/slipstreamkv/slipstream/internal/natstest"
)

// A server restart shows in the log as a lost connection and a reconnect
// to the server; closing the connection ourselves logs nothing.
func TestConnectionLossAndReturnAreLogged(t *testing.T) {
	srv := natstest.Run(t)
	var log logtest.Buffer
	o := fastOpts(srv.URL())
	o.Logger = slog.New(slog.NewTextHandler(&log, nil))
	c := connect(t, o)
	srv.Restart()
	waitFor(t, 10*time.Second, "the reconnect logged", func() bool { return log.Count(`msg="reconnected to NATS" server=`+srv.URL()) == 1 })
	if n := log.Count(`level=WARN msg="lost the connection to NATS; reconnecting"`); n != 1 {
		t.Errorf("%d lines of the lost connection, want 1:\n%s", n, log.String())
	}
	c.Close()
	time.Sleep(100 * time.Millisecond)
	if n := log.Count("lost the connection"); n != 1 {
		t.Errorf("closing the connection logged a loss:\n%s", log.String())
	}
}
