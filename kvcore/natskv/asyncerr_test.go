package natskv

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/slipstreamkv/slipstream/internal/logtest"
	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/kvcore"
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
	// The connection keeps the latest, for a caller whose request the
	// server denied and which only timed out.
	if text, at := c.Denied(); !strings.Contains(text, `Permissions Violation for Publish to "denied.x"`) || time.Since(at) > time.Minute {
		t.Errorf("Denied = %q at %v", text, at)
	}
}

// A watch whose user may not ask about its consumer
// ($JS.API.CONSUMER.INFO) cannot tell it caught up; after a few heartbeats
// it says so at warning level, naming the permission, instead of staying
// syncing without a word above debug.
func TestAWatchThatCannotAskWhetherItCaughtUpSaysSo(t *testing.T) {
	srv := natstest.Run(t, func(o *server.Options) {
		o.Users = []*server.User{{Username: "admin", Password: "admin"}, {Username: "u", Password: "p", Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{"$JS.API.STREAM.INFO.KV_cfg", "$JS.API.CONSUMER.CREATE.KV_cfg.>", "$JS.API.CONSUMER.DELETE.KV_cfg.>", "$JS.API.STREAM.MSG.GET.KV_cfg"}},
			Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
		}}}
	})
	admin := connect(t, fastOpts(strings.Replace(srv.URL(), "nats://", "nats://admin:admin@", 1)))
	mustPut(t, openStore(t, admin, kvcore.StoreConfig{Bucket: "cfg"}), "k", "v")

	var log logtest.Buffer
	o := fastOpts(strings.Replace(srv.URL(), "nats://", "nats://u:p@", 1))
	o.Timeout = time.Second
	o.Logger = slog.New(slog.NewTextHandler(&log, nil))
	st, err := connect(t, o).Open(testCtx(t), "cfg")
	if err != nil {
		t.Fatal(err)
	}
	w, err := st.Watch(testCtx(t), kvcore.AllKeys(), kvcore.Cursor{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	waitFor(t, 30*time.Second, "the warning", func() bool {
		return strings.Contains(log.String(), "level=WARN msg=\"cannot ask the server whether the watch caught up (it needs $JS.API.CONSUMER.INFO.KV_cfg.>)")
	})
}
