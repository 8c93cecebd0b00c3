//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/internal/netlab"
	"github.com/slipstreamkv/slipstream/internal/plugintest"
)

// leafAgentConfig is an agent on the edge site: bucket cfg through the
// files plugin into $DIR/out, read from the leaf node on its host, $DOMAIN
// naming the JetStream it reads (none: the leaf's own, which holds a
// mirror of the hub's cfg).
const leafAgentConfig = `
data_dir  = "$DIR/data"
cache_dir = "$CACHE"
nats {
  servers = ["nats://127.0.0.1:4222"]
  $DOMAIN
}
http { listen = "unix:$DIR/http.sock" }
plugin "files" {
  module = "$CACHE/../files.wasm"
  config = { prefix = "files." }
}
watch "cfg" {
  bucket = "cfg"
  plugin = "files"
  output "files" { dir = "$DIR/out" }
}
`

// An edge site behind a leaf node, on hosts of their own, with the link to
// the hub's site cut and healed: an agent reading the leaf's mirror of the
// bucket keeps serving its copy and stays ready; one reading the hub's
// JetStream through its domain says it is detached; once the link is back
// both converge on what was put meanwhile and after.
func TestLeafSiteLinkCut(t *testing.T) {
	if testing.Short() {
		t.Skip("runs nats-server and slipagent processes on hosts of their own")
	}
	hubHost, edge := netlab.NewHost(t), netlab.NewHost(t)
	link := netlab.Connect(t, hubHost, edge)
	bin := natstest.ServerBinary(t)
	// Short pings: each side notices a silent link in a few seconds.
	const pings = "ping_interval: \"1s\"\nping_max: 2\n"
	natstest.StartProc(t, bin, natstest.ProcSpec{Name: "hub", Port: 4222, Wrap: hubHost.Wrap(), Dial: hubHost.Dial,
		Config: pings + fmt.Sprintf(`server_name: hub
listen: 0.0.0.0:4222
jetstream { domain: hub, store_dir: %q }
leafnodes { listen: 0.0.0.0:7422 }
`, filepath.Join(t.TempDir(), "js"))})
	natstest.StartProc(t, bin, natstest.ProcSpec{Name: "leaf", Port: 4222, Wrap: edge.Wrap(), Dial: edge.Dial,
		Config: pings + fmt.Sprintf(`server_name: leaf
listen: 127.0.0.1:4222
jetstream { domain: edge, store_dir: %q }
leafnodes { reconnect: "250ms", remotes: [{ url: "nats-leaf://%s:7422" }] }
`, filepath.Join(t.TempDir(), "js"), link.AddrA)})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	hub := kvOn(ctx, t, hubHost)
	cfg, err := hub.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "cfg"})
	if err != nil {
		t.Fatal(err)
	}
	put := func(v string) {
		t.Helper()
		if _, err := cfg.PutString(ctx, "files.a.conf", v); err != nil {
			t.Fatalf("put %s on the hub: %v", v, err)
		}
	}
	put("1")
	leaf := kvOn(ctx, t, edge)
	if _, err := leaf.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "cfg", Mirror: &jetstream.StreamSource{Name: "cfg", Domain: "hub"}}); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	os.WriteFile(filepath.Join(dir, "files.wasm"), plugintest.Module(t, "plugins/examples/files"), 0o644)
	type agent struct {
		name, dir, config string
		proc              *slipagentProcess
	}
	start := func(name, domain string) *agent {
		a := &agent{name: name, dir: filepath.Join(dir, name)}
		os.MkdirAll(a.dir, 0o755)
		a.config = filepath.Join(a.dir, "agent.hcl")
		text := strings.NewReplacer("$DIR", a.dir, "$CACHE", cache, "$DOMAIN", domain).Replace(leafAgentConfig)
		os.WriteFile(a.config, []byte(text), 0o644)
		a.proc = startSlipagentUnder(t, edge.Wrap(), a.dir, "run", "-config", a.config)
		return a
	}
	mirror := start("mirror", "")
	through := start("through", `domain = "hub"`)
	agents := []*agent{mirror, through}
	logs := func() string {
		var b strings.Builder
		for _, a := range agents {
			fmt.Fprintf(&b, "--- %s:\n%s", a.name, a.proc.output())
		}
		return b.String()
	}
	status := func(a *agent) (bool, string) {
		code, out, errOut := runCmd(t, "status", "-config", a.config)
		return code == exitOK, out + errOut
	}
	converged := func(what, want string) {
		t.Helper()
		for _, a := range agents {
			deadline := time.Now().Add(3 * time.Minute)
			for {
				got, _ := os.ReadFile(filepath.Join(a.dir, "out", "a.conf"))
				ready, st := status(a)
				if ready && string(got) == want {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: agent %s has a.conf %q, want %q; status:\n%s\n%s", what, a.name, got, want, st, logs())
				}
				time.Sleep(250 * time.Millisecond)
			}
		}
	}
	converged("the first sync", "1")

	// The link goes down; the hub takes a put the edge cannot see.
	link.Cut()
	put("2")
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ready, st := status(through)
		if !ready && strings.Contains(st, "detached") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent reading the hub's domain across the cut link does not say it is detached; status:\n%s\n%s", st, logs())
		}
		time.Sleep(250 * time.Millisecond)
	}
	if ready, st := status(mirror); !ready {
		t.Fatalf("the agent reading the leaf's mirror stopped being ready while the link was cut; status:\n%s\n%s", st, logs())
	}
	if got, _ := os.ReadFile(filepath.Join(mirror.dir, "out", "a.conf")); string(got) != "1" {
		t.Fatalf("the mirror's agent has a.conf %q across a cut link, want its copy %q", got, "1")
	}

	// Back: what was put meanwhile and after reaches both.
	link.Heal()
	converged("the put made while the link was cut", "2")
	put("3")
	converged("a put after the link healed", "3")
}

// kvOn connects the test to the nats-server listening on 127.0.0.1:4222 of
// host h, retrying until its JetStream answers.
func kvOn(ctx context.Context, t *testing.T, h *netlab.Host) jetstream.JetStream {
	t.Helper()
	js := natstest.JetStream(t, "nats://127.0.0.1:4222", nats.SetCustomDialer(h), nats.MaxReconnects(-1))
	for {
		if _, err := js.AccountInfo(ctx); err == nil {
			return js
		} else if ctx.Err() != nil {
			t.Fatalf("JetStream on the test host: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
