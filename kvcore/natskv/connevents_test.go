package natskv

import (
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/internal/logtest"
	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/kvcore"
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
	if n := log.Count(`level=WARN msg="lost the connection to NATS; reconnecting" server=` + srv.URL()); n != 1 {
		t.Errorf("%d lines of the lost connection, want 1:\n%s", n, log.String())
	}
	c.Close()
	time.Sleep(100 * time.Millisecond)
	if n := log.Count("lost the connection"); n != 1 {
		t.Errorf("closing the connection logged a loss:\n%s", log.String())
	}
}

// Each update a watch delivers says how many records the server still had
// to send after it: a watch trails its bucket while that is above 0.
func TestEventsSayHowManyRecordsArePending(t *testing.T) {
	srv := natstest.Run(t)
	c := connect(t, fastOpts(srv.URL()))
	s := openStore(t, c, kvcore.StoreConfig{})
	for i := range 5 {
		mustPut(t, s, fmt.Sprintf("k%d", i), "v")
	}
	w, err := s.Watch(testCtx(t), kvcore.AllKeys(), kvcore.CursorAt(kvcore.RevisionVersion(0)))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var got []uint64
	for range 5 {
		got = append(got, next(t, w, eventWait).Pending)
	}
	if !slices.Equal(got, []uint64{4, 3, 2, 1, 0}) {
		t.Errorf("pending %v, want 4 3 2 1 0", got)
	}
}
