package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/internal/plugintest"
)

// TestMain lets the test binary be the bare renderer's child process, as
// the benchmark's own executable is.
func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) == roleBare {
		if err := runBareFromEnv(); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	plugintest.Main(m)
}

// TestSmoke runs every workload with tiny sizes against an embedded
// nats-server and checks that each row of the table has its figures.
func TestSmoke(t *testing.T) {
	agent, plugin := plugintest.Agent(t)
	srv := natstest.Run(t)

	cfg := config{
		SlipAgent: agent, Plugin: plugin, NATSURL: srv.URL(), Work: t.TempDir(),
		LatN: 5, LatInterval: 10 * time.Millisecond,
		BurstN: 50, BurstConc: 4,
		BigN: 200, HugeN: 300, ValueSize: 16,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := run(ctx, cfg)
	var table bytes.Buffer
	res.print(&table)
	t.Logf("\n%s", &table)
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range res.failures {
		t.Error(err)
	}

	bareNone := map[string]bool{} // rows with no bare figure
	for _, w := range []string{"agent time in plugin calls", "READY", "batches re-applied", "what the agent did"} {
		bareNone[w] = true
	}
	if len(res.rows) != 16 {
		t.Errorf("%d rows, want 16", len(res.rows))
	}
	for _, r := range res.rows {
		if !r.agent.set {
			t.Errorf("%q: no slipagent figure", r.workload)
		}
		noBare := false
		for w := range bareNone {
			noBare = noBare || strings.Contains(r.workload, w)
		}
		if r.bare.set == noBare {
			t.Errorf("%q: bare figure set = %v", r.workload, r.bare.set)
		}
		if strings.Contains(r.workload, "batches re-applied") && r.agent.n != 0 {
			t.Errorf("the restart over an up-to-date fold re-applied %d batches", r.agent.n)
		}
	}
	if res.loadStart == "" || res.loadEnd == "" {
		t.Error("the load average is missing")
	}
}
