package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/fleet"
	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/internal/plugintest"
)

// TestFleetDuplicateHostNameIsLoud runs two real agents that both report as
// host web1, one of them failing its hook. However the two overwrite each
// other's record, fleet wait does not converge on a revision only one of
// them applied, fleet status names the conflict, and both agents log it.
// Once the failing agent is killed, the conflict ends and wait converges.
func TestFleetDuplicateHostNameIsLoud(t *testing.T) {
	srv := natstest.Run(t)
	url := srv.URL()
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	os.WriteFile(filepath.Join(dir, "files.wasm"), plugintest.Module(t, "plugins/examples/files"), 0o644)
	putRev(t, url, "files.a.conf", "1")

	start := func(name string, broken bool) *slipagentProcess {
		host := filepath.Join(dir, name)
		os.MkdirAll(host, 0o755)
		if broken {
			os.WriteFile(filepath.Join(host, "broken"), nil, 0o644)
		}
		cfg := fleetAgentHCL(host, cache, url, "web1", "") +
			`http { listen = "unix:` + filepath.Join(host, "http.sock") + `" }`
		path := filepath.Join(host, "agent.hcl")
		os.WriteFile(path, []byte(cfg), 0o644)
		return startSlipagent(t, host, "run", "-config", path)
	}
	wait := func(args ...string) (int, string, string) {
		return runCmd(t, append([]string{"fleet", "wait", "-server", url, "-report-bucket", "fleet", "-bucket", "cfg", "-poll", "200ms"}, args...)...)
	}

	// The first agent compiles the plugin into the shared cache.
	healthy := start("a", false)
	if code, out, errOut := wait("-revision", "1", "-timeout", "3m"); code != exitOK {
		t.Fatalf("the first agent did not report revision 1: %d %q %q\n%s", code, out, errOut, healthy.output())
	}
	failing := start("b", true)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		_, rep := fleetReport(t, url)
		if len(rep.Watches) == 1 && len(rep.Watches[0].Failing) == 1 && rep.Watches[0].Failing[0].State == fleet.StateConflict {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no conflict reported: %v\n--- a:\n%s--- b:\n%s", hostsOf(rep), healthy.output(), failing.output())
		}
		time.Sleep(200 * time.Millisecond)
	}

	target := strconv.FormatUint(putRev(t, url, "files.a.conf", "twenty-two bytes long"), 10)
	code, out, errOut := wait("-revision", target, "-timeout", "10s")
	if code != exitTimeout || !strings.Contains(out, "0 of 1 hosts applied revision "+target) ||
		!strings.Contains(out, "conflict: host name web1 is also reported by another agent (instance ") {
		t.Errorf("fleet wait with two agents as web1 = %d %q %q", code, out, errOut)
	}
	if code, out, _ := runCmd(t, "fleet", "status", "-server", url, "-report-bucket", "fleet", "-revision", target); code != exitFailure ||
		!strings.Contains(out, "conflict: host name web1") {
		t.Errorf("fleet status with two agents as web1 = %d\n%s", code, out)
	}
	// slipagent status says so too, while the watch itself is ready.
	code, out, errOut = runCmd(t, "status", "-config", filepath.Join(dir, "a", "agent.hcl"))
	if code != exitOK || !strings.Contains(out, "fleet report web1.cfg (bucket fleet): host name web1 is also reported by another agent (instance ") {
		t.Errorf("slipagent status of the healthy agent = %d %q %q", code, out, errOut)
	}
	for name, p := range map[string]*slipagentProcess{"healthy": healthy, "failing": failing} {
		if log := p.output(); !strings.Contains(log, "another agent reports under the same host name") || !strings.Contains(log, "host=web1 key=web1.cfg bucket=fleet") {
			t.Errorf("the %s agent did not log the conflict:\n%s", name, log)
		}
	}

	failing.stop(t, syscall.SIGKILL)
	if code, out, errOut := wait("-revision", target, "-timeout", "2m"); code != exitOK || !strings.Contains(out, "1 of 1 hosts applied revision "+target) {
		t.Errorf("fleet wait once web1 is one agent again = %d %q %q\n%s", code, out, errOut, healthy.output())
	}

	// The healthy agent killed and restarted at once takes its record
	// over: a new instance, and no conflict.
	_, rep := fleetReport(t, url)
	old := rep.Watches[0].All[0].Instance
	healthy.stop(t, syscall.SIGKILL)
	restarted := start("a", false)
	var heartbeats []time.Time
	deadline = time.Now().Add(2 * time.Minute)
	for len(heartbeats) < 3 {
		_, rep := fleetReport(t, url)
		if len(rep.Watches) == 1 && len(rep.Watches[0].All) == 1 {
			h := rep.Watches[0].All[0]
			switch {
			case h.State == fleet.StateConflict:
				t.Fatalf("the restarted agent reports a conflict: %+v\n%s", h.Record, restarted.output())
			case h.Instance != old && (len(heartbeats) == 0 || h.Time.After(heartbeats[len(heartbeats)-1])):
				heartbeats = append(heartbeats, h.Time)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restarted agent does not report: %v\n%s", hostsOf(rep), restarted.output())
		}
		time.Sleep(200 * time.Millisecond)
	}
}
