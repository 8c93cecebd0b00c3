package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/internal/plugintest"
)

// TestMain removes the binary plugintest builds.
func TestMain(m *testing.M) { plugintest.Main(m) }

// TestSmoke runs every phase with a fleet of 2 agents on 100 keys and
// checks that each row has its figures and that no phase leaked or lost a
// consumer.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nats-server and slipagent processes")
	}
	agent, plugin := plugintest.Agent(t)
	cfg := config{SlipAgent: agent, Plugin: plugin, NATSServer: natstest.ServerBinary(t), N: 2, K: 100, Work: t.TempDir()}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := run(ctx, cfg)
	var table bytes.Buffer
	res.print(&table)
	t.Logf("\n%s", &table)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.phases) != 4 {
		t.Fatalf("%d phases, want 4", len(res.phases))
	}
	for i, p := range res.phases {
		if p.err != nil {
			t.Errorf("%s: %v", p.name, p.err)
			continue
		}
		if p.complete <= 0 || p.rssKB <= 0 {
			t.Errorf("%s: time to complete %v, server RSS %d kB", p.name, p.complete, p.rssKB)
		}
		fault := i%2 == 1
		if fault && p.stall <= 0 {
			t.Errorf("%s: no stall figure", p.name)
		}
		wantBefore := 0
		if fault {
			wantBefore = cfg.N
		}
		if p.before != wantBefore || p.after != cfg.N {
			t.Errorf("%s: consumers %d before, %d after; want %d, %d", p.name, p.before, p.after, wantBefore, cfg.N)
		}
	}
	if res.loadStart == "" || res.loadEnd == "" {
		t.Error("the load average is missing")
	}
}

// TestSmokeBootstrap runs the bootstrap comparison with 2 agents on 100
// keys and checks that the agents of the second way started from the
// artifact.
func TestSmokeBootstrap(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nats-server and slipagent processes")
	}
	agent, plugin := plugintest.Agent(t)
	cfg := config{SlipAgent: agent, Plugin: plugin, NATSServer: natstest.ServerBinary(t), N: 2, K: 100, Work: t.TempDir(), Bootstrap: true}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := runBootstrap(ctx, cfg)
	var table bytes.Buffer
	res.print(&table)
	t.Logf("\n%s", &table)
	if err != nil {
		t.Fatal(err)
	}
	if res.failed() {
		t.Fatal("a way of joining failed")
	}
	if res.plain.fromArt != 0 || res.fromArtifact.fromArt != cfg.N {
		t.Errorf("agents from the artifact: %d plain, %d with bootstrap; want 0, %d", res.plain.fromArt, res.fromArtifact.fromArt, cfg.N)
	}
	for _, j := range []*join{res.plain, res.fromArtifact} {
		if j.wire <= 0 || j.payloads <= 0 || j.payloads > j.wire {
			t.Errorf("%s: %d bytes sent, %d of them payloads", j.name, j.wire, j.payloads)
		}
	}
	if res.artifactBytes <= 0 {
		t.Error("no artifact size")
	}
}
