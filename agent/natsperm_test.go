package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/internal/plugintest"
	"github.com/slipstreamkv/slipstream/kvcore/natskv"
)

// TestAgentNeedsOnlyReadPermissions runs the agent as a NATS user that may
// not publish to the bucket's subjects ($KV.cfg.>) nor create or change
// streams: only the permissions the README's security model lists.
func TestAgentNeedsOnlyReadPermissions(t *testing.T) {
	agentPerms := &server.Permissions{
		Publish: &server.SubjectPermission{
			Allow: []string{
				"$JS.API.STREAM.INFO.KV_cfg",
				"$JS.API.CONSUMER.CREATE.KV_cfg.>",
				"$JS.API.CONSUMER.INFO.KV_cfg.>",
				"$JS.API.CONSUMER.DELETE.KV_cfg.>", // the agent removes consumers it left behind
				"$JS.FC.KV_cfg.>",                  // flow control replies, on a large sync
				"$JS.API.STREAM.MSG.GET.KV_cfg",    // a reconciliation's reads of single keys
			},
		},
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>", "$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.KV_cfg"}},
	}
	f, cfg := permittedFixture(t, agentPerms)
	a, _ := f.start(cfg)
	waitFor(t, "the first file", func() bool { return readFile(filepath.Join(f.dir, "out", "a.conf")) == "alpha" })
	f.put("cfg", "files.b.conf", "bravo")
	waitFor(t, "a change", func() bool { return readFile(filepath.Join(f.dir, "out", "b.conf")) == "bravo" })
	waitFor(t, "ready", a.Ready)
}

// permittedFixture is a fixture whose server has an admin user, which puts
// files.a.conf in bucket cfg, and the user "agent" with perms, whom cfg
// connects as.
func permittedFixture(t *testing.T, perms *server.Permissions) (*fixture, *Config) {
	srv := natstest.Run(t, func(o *server.Options) {
		o.Users = []*server.User{
			{Username: "admin", Password: "admin"},
			{Username: "agent", Password: "agent", Permissions: perms},
		}
	})
	host := strings.TrimPrefix(srv.URL(), "nats://")
	f := &fixture{t: t, srv: srv, dir: t.TempDir()}
	f.conn = natskv.New(natskv.Options{Servers: []string{"nats://admin:admin@" + host}, Timeout: 5 * time.Second})
	if err := f.conn.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.conn.Close() })
	if err := os.WriteFile(filepath.Join(f.dir, "files.wasm"), plugintest.Module(t, "plugins/examples/files"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.put("cfg", "files.a.conf", "alpha")
	cfg := f.config(filesConfig)
	cfg.NATS.Servers = []string{"nats://agent:agent@" + host}
	return f, cfg
}

// A watch whose user lacks a permission it needs fails with a timeout (the
// server only reports the denied request, asynchronously); its status's
// reason names the permission the server refused.
func TestStatusNamesARefusedPermission(t *testing.T) {
	f, cfg := permittedFixture(t, &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: []string{"$JS.API.CONSUMER.CREATE.KV_cfg.>", "$JS.API.CONSUMER.INFO.KV_cfg.>"}},
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
	})
	cfg.NATS.Timeout = time.Second
	a, _ := f.start(cfg)
	want := `the NATS server refused a permission`
	waitFor(t, "the watch failing, naming the refused permission", func() bool {
		s := a.Status()[0]
		return s.State != stateStarting && strings.Contains(s.Reason, want)
	})
	if s := a.Status()[0]; s.Ready || !strings.Contains(s.Reason, `Permissions Violation for Publish to "$JS.API.STREAM.INFO.KV_cfg"`) {
		t.Errorf("status %q, want the denied STREAM.INFO named", s.Reason)
	}
}
