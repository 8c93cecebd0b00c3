package natskv

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/slipstreamkv/slipstream/internal/logtest"
	"github.com/slipstreamkv/slipstream/internal/natstest"
)

// A permissions violation the server reports asynchronously reaches the
// connection's logger once, however often it repeats (nats.go's default
// writes every one of them to stderr).
func TestAsyncErrorsAreLoggedOnce(t *testing.T) {
	srv := natstest.Run(t, func(o *server.Options) {
		o.Users = []*server.User{{Username: "u", Password: "p", Permissions: &server.Permissions{
			Publish: &server.SubjectPermission{Allow: []string{"allowed.>"}},
		}}}
	})
	var log logtest.Buffer
	o := fastOpts(strings.Replace(srv.URL(), "nats://", "nats://u:p@", 1))
	o.Logger = slog.New(slog.NewTextHandler(&log, nil))
	c := connect(t, o)
	nc := c.sess.nc
	for range 5 {
		if err := nc.Publish("denied.x", nil); err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "the violation logged", func() bool { return strings.Contains(log.String(), "denied.x") })
	if n := strings.Count(log.String(), "Permissions Violation"); n != 1 {
		t.Errorf("logged %d times, want once:\n%s", n, log.String())
	}
}
