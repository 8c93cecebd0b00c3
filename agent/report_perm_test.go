package agent

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/slipstreamkv/slipstream/fleet"
	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/kvcore/natskv"
)

// reporterPermissions are the NATS permissions the README documents for
// host web1 reporting to bucket fleet, and nothing else.
var reporterPermissions = &server.Permissions{
	Publish: &server.SubjectPermission{Allow: []string{
		"$KV.fleet.web1.>",
		"$JS.API.DIRECT.GET.KV_fleet.$KV.fleet.web1.>",
		"$JS.API.STREAM.INFO.KV_fleet",
		"$JS.API.STREAM.CREATE.KV_fleet",
	}},
	Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
}

// With only the documented permissions, an agent creates the report bucket
// and reports its watch (failing: it may not read its bucket), and cannot
// write another host's keys.
func TestFleetReportWithTheDocumentedPermissions(t *testing.T) {
	srv := natstest.Run(t, func(o *server.Options) {
		o.Users = []*server.User{
			{Username: "web1", Password: "p", Permissions: reporterPermissions},
			{Username: "admin", Password: "p"},
		}
	})
	url := func(user string) string {
		return strings.Replace(srv.URL(), "nats://", "nats://"+user+":p@", 1)
	}
	admin := natskv.New(natskv.Options{Servers: []string{url("admin")}})
	if err := admin.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Store(context.Background(), kvcore.StoreConfig{Bucket: "cfg"}); err != nil {
		t.Fatal(err)
	}

	f := &fixture{t: t, srv: srv, conn: admin, dir: t.TempDir()}
	cfg := f.config(strings.Replace(filesConfig, "$NATS", url("web1"), 1) + strings.Replace(reportBlock, `"h1"`, `"web1"`, 1))
	cfg.Plugins[0].Module = "/nonexistent.wasm" // the watch fails before it loads a plugin anyway
	record := func() fleet.Record {
		s, err := admin.Open(context.Background(), "fleet")
		if err != nil {
			return fleet.Record{}
		}
		e, err := s.Get(context.Background(), fleet.Key("web1", "cfg"))
		if err != nil {
			return fleet.Record{}
		}
		r, _ := fleet.Decode(e.Key, e.Value)
		return r
	}
	first, stop := f.start(cfg)
	waitFor(t, "web1's record", func() bool {
		r := record()
		return r.State != fleet.StateReady && r.State != ""
	})
	// A restarted agent reads its key to tell its earlier run's record
	// from another agent's, and takes it over.
	stop()
	again, _ := f.start(cfg)
	waitFor(t, "the restarted agent's record", func() bool {
		r := record()
		return r.Instance == again.ReportStatus().Instance && r.State != fleet.StateConflict
	})
	if first.ReportStatus().Instance == again.ReportStatus().Instance {
		t.Error("two runs with one instance id")
	}

	web1 := natskv.New(natskv.Options{Servers: []string{url("web1")}, Timeout: 2 * time.Second})
	if err := web1.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer web1.Close()
	reports, err := web1.Store(context.Background(), kvcore.StoreConfig{Bucket: "fleet"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reports.Put(context.Background(), fleet.Key("web2", "cfg"), []byte("{}")); err == nil {
		t.Error("web1 wrote web2's record")
	}
}
