package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/slipstreamkv/slipstream/fleet"
	"github.com/slipstreamkv/slipstream/internal/browsertest"
	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/internal/plugintest"
	"github.com/slipstreamkv/slipstream/kvcore"
)

// fleetAgentConfig is one host's agent: a watch of bucket cfg through the
// files plugin whose hook fails while $HOST/broken exists, reporting to
// bucket fleet every second (the default max age: 10 intervals) as host
// $NAME. $EXTRA adds watches.
const fleetAgentConfig = `
data_dir  = "$HOST/data"
cache_dir = "$CACHE"
nats { servers = ["$NATS"] }
plugin "files" {
  module = "$CACHE/../files.wasm"
  config = { prefix = "files.", hook = "changed" }
}
watch "cfg" {
  bucket = "cfg"
  plugin = "files"
  output "files" { dir = "$HOST/out" }
  hook "changed" { command = ["sh", "-c", "test ! -e $HOST/broken"] }
}
$EXTRA
report {
  bucket   = "fleet"
  interval = "1s"
  host     = "$NAME"
}
`

// tlsWatch is a watch of bucket cfg with prefixes that the rollout's key
// (files.a.conf) is not under: it never applies the rollout's revisions.
const tlsWatch = `
plugin "tls" {
  module = "$CACHE/../files.wasm"
  config = { prefix = "tls." }
}
watch "tls" {
  bucket   = "cfg"
  prefixes = ["tls."]
  plugin   = "tls"
  output "files" { dir = "$HOST/tls" }
}
`

// fleetAgentHCL is fleetAgentConfig for host name in directory host, with
// extra watches.
func fleetAgentHCL(host, cache, url, name, extra string) string {
	cfg := strings.NewReplacer("$EXTRA", extra).Replace(fleetAgentConfig)
	return strings.NewReplacer("$HOST", host, "$CACHE", cache, "$NATS", url, "$NAME", name).Replace(cfg)
}

// putRev runs "kv put" and returns the revision it prints ("rev N").
func putRev(t *testing.T, url, key, value string) uint64 {
	t.Helper()
	code, out, errOut := runCmd(t, "kv", "-server", url, "put", "cfg", key, value)
	rev, err := printedRev(out)
	if code != exitOK || err != nil {
		t.Fatalf("kv put = %d %q %q", code, out, errOut)
	}
	return rev
}

// printedRev parses the "rev N" that "kv put" prints.
func printedRev(out string) (uint64, error) {
	return strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(out, "rev ")), 10, 64)
}

// fleetReport runs "fleet status -json" and decodes it.
func fleetReport(t *testing.T, url string, args ...string) (int, fleet.Report) {
	t.Helper()
	code, out, errOut := runCmd(t, append([]string{"fleet", "status", "-server", url, "-report-bucket", "fleet", "-json"}, args...)...)
	var rep fleet.Report
	if code != exitUnreachable && code != exitNotFound {
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("fleet status -json = %d %q %q: %v", code, out, errOut, err)
		}
	}
	return code, rep
}

func hostsOf(rep fleet.Report) []string {
	var hosts []string
	for _, w := range rep.Watches {
		for _, h := range w.All {
			hosts = append(hosts, fmt.Sprintf("%s@%d:%s", h.Host, h.Revision, h.State))
		}
	}
	return hosts
}

// TestFleetRollout runs three real agent processes against one nats-server
// and follows a rollout with the fleet commands: a put converging (h1 also
// runs a watch whose prefixes do not hold the rollout's key, which the
// commands leave out), a host whose hook fails named by status, wait and
// the rollout page in Chromium, and a killed host shown as silent, then
// ageing out of the report bucket.
func TestFleetRollout(t *testing.T) {
	srv := natstest.Run(t)
	url := srv.URL()
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	os.WriteFile(filepath.Join(dir, "files.wasm"), plugintest.Module(t, "plugins/examples/files"), 0o644)
	putRev(t, url, "files.a.conf", "1")

	agents := map[string]*slipagentProcess{}
	start := func(name, extra string) {
		host := filepath.Join(dir, name)
		os.MkdirAll(host, 0o755)
		cfg := fleetAgentHCL(host, cache, url, name, extra)
		path := filepath.Join(host, "agent.hcl")
		os.WriteFile(path, []byte(cfg), 0o644)
		agents[name] = startSlipagent(t, host, "run", "-config", path)
	}
	wait := func(args ...string) (int, string, string) {
		return runCmd(t, append([]string{"fleet", "wait", "-server", url, "-report-bucket", "fleet", "-bucket", "cfg", "-poll", "200ms"}, args...)...)
	}
	logs := func() string {
		var b strings.Builder
		for name, a := range agents {
			fmt.Fprintf(&b, "--- %s:\n%s", name, a.output())
		}
		return b.String()
	}

	// The first agent compiles the plugin into the shared cache; the
	// others find it there.
	start("h1", tlsWatch)
	if code, out, errOut := wait("-revision", "1", "-timeout", "3m"); code != exitOK {
		t.Fatalf("h1 did not report revision 1: %d %q %q\n%s", code, out, errOut, logs())
	}
	start("h2", "")
	start("h3", "")

	// A put converges: wait returns 0 once all three applied it.
	rev := putRev(t, url, "files.a.conf", "2")
	code, out, errOut := wait("-revision", strconv.FormatUint(rev, 10), "-hosts", "3", "-timeout", "3m")
	if code != exitOK || !strings.Contains(out, fmt.Sprintf("3 of 3 hosts applied revision %d", rev)) {
		t.Fatalf("fleet wait = %d %q %q\n%s", code, out, errOut, logs())
	}
	// wait counts hosts that applied the revision; status also wants them
	// ready, which a host that just started reports once its first
	// catch-up (and the hooks it owes) ended, a moment later.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		code, rep := fleetReport(t, url, "-bucket", "cfg", "-revision", strconv.FormatUint(rev, 10))
		if code == exitOK && len(rep.Watches) == 1 && rep.Watches[0].Applied == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fleet status after convergence = %d %v", code, hostsOf(rep))
		}
	}

	// h3's hook fails: it stays at rev, failing; status and wait name it.
	os.WriteFile(filepath.Join(dir, "h3", "broken"), nil, 0o644)
	stuck := putRev(t, url, "files.a.conf", "3")
	target := strconv.FormatUint(stuck, 10)
	code, out, errOut = wait("-after-put", "-watch", "cfg", "-fraction", "0.6", "-timeout", "3m")
	if code != exitOK || !strings.Contains(out, fmt.Sprintf("waiting for revision %d of bucket cfg", stuck)) {
		t.Fatalf("fleet wait -after-put -fraction 0.6 = %d %q %q\n%s", code, out, errOut, logs())
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		code, rep := fleetReport(t, url, "-bucket", "cfg", "-revision", target)
		if len(rep.Watches) == 1 && len(rep.Watches[0].Failing) == 1 {
			w := rep.Watches[0]
			h := w.Failing[0]
			if code != exitFailure || w.Applied != 2 || len(w.Laggards) != 1 || w.Laggards[0].Host != "h3" ||
				h.Host != "h3" || h.Revision != rev || h.Lag != stuck-rev || !strings.Contains(h.Error, "changed") {
				t.Fatalf("fleet status with h3 failing = %d %+v", code, w)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("h3 is not reported failing: %v\n%s", hostsOf(rep), logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
	code, out, _ = runCmd(t, "fleet", "status", "-server", url, "-report-bucket", "fleet", "-bucket", "cfg", "-revision", target)
	if code != exitFailure || !strings.Contains(out, fmt.Sprintf("cfg (bucket cfg): h3 at revision %d", rev)) || !strings.Contains(out, "failing: ") {
		t.Errorf("fleet status = %d\n%s", code, out)
	}
	code, out, errOut = wait("-revision", target, "-timeout", "3s")
	if code != exitTimeout || !strings.Contains(out, "2 of 3 hosts applied revision "+target) ||
		!strings.Contains(out, fmt.Sprintf("h3 at revision %d", rev)) || !strings.Contains(errOut, "timed out") {
		t.Errorf("fleet wait with h3 stuck = %d %q %q", code, out, errOut)
	}

	// The rollout page, served by fleet serve, shows the three hosts, h3
	// first, failing.
	checkRolloutPage(t, dir, url, rev)

	// h2 dies: it shows as silent after three heartbeat intervals, and
	// holds the wait, until its record ages out of the bucket (max age 10
	// intervals).
	agents["h2"].stop(t, syscall.SIGKILL)
	deadline = time.Now().Add(time.Minute)
	for {
		code, rep := fleetReport(t, url, "-bucket", "cfg", "-revision", target)
		if len(rep.Watches) == 1 && len(rep.Watches[0].Silent) == 1 && rep.Watches[0].Silent[0].Host == "h2" {
			if code != exitFailure || rep.Watches[0].Hosts != 3 {
				t.Fatalf("fleet status with h2 silent = %d %v", code, hostsOf(rep))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("h2 is not reported silent: %v", hostsOf(rep))
		}
		time.Sleep(200 * time.Millisecond)
	}
	code, out, errOut = wait("-revision", target, "-timeout", "3s")
	if code != exitTimeout || !strings.Contains(out, "h2 at revision "+target) || !strings.Contains(out, "silent for") {
		t.Errorf("fleet wait with h2 silent = %d %q %q", code, out, errOut)
	}
	deadline = time.Now().Add(2 * time.Minute)
	for {
		_, rep := fleetReport(t, url, "-watch", "cfg")
		hosts := hostsOf(rep)
		if len(hosts) == 2 && !strings.Contains(strings.Join(hosts, " "), "h2@") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("h2 did not age out: %v", hosts)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code, out, _ := runCmd(t, "kv", "-server", url, "keys", "fleet"); code != exitOK || out != "h1.cfg\nh1.tls\nh3.cfg\n" {
		t.Errorf("report bucket keys = %d %q, want h2's gone", code, out)
	}
	// Once h3 is repaired, everyone left converges.
	os.Remove(filepath.Join(dir, "h3", "broken"))
	if code, out, errOut := wait("-revision", target, "-timeout", "3m"); code != exitOK || !strings.Contains(out, "2 of 2 hosts") {
		t.Errorf("fleet wait after repair = %d %q %q\n%s", code, out, errOut, logs())
	}

	// A value the plugin cannot render: the hosts apply the revision (the
	// files plugin skips the key, logging an error), and wait and status
	// say so beside the convergence.
	bad := strconv.FormatUint(putRev(t, url, "files.bad//path", "x"), 10)
	code, out, errOut = wait("-revision", bad, "-timeout", "3m")
	const complaint = `its plugin logged an error applying it: files: skipping key "files.bad//path"`
	if code != exitOK || !strings.Contains(out, "2 of 2 hosts applied revision "+bad) || strings.Count(out, complaint) != 2 {
		t.Errorf("fleet wait for a key the plugin skips = %d %q %q", code, out, errOut)
	}
	code, out, _ = runCmd(t, "fleet", "status", "-server", url, "-report-bucket", "fleet", "-bucket", "cfg", "-revision", bad)
	if code != exitOK || !strings.Contains(out, "h1 at revision "+bad) || strings.Count(out, complaint) != 2 {
		t.Errorf("fleet status for a key the plugin skips = %d\n%s", code, out)
	}
}

func TestFleetChecksBeforeConnecting(t *testing.T) {
	unreachable := "nats://127.0.0.1:1"
	for _, args := range [][]string{
		{"fleet", "wait", "-server", unreachable},
		{"fleet", "wait", "-server", unreachable, "-revision", "3", "-after-put", "-bucket", "cfg"},
		{"fleet", "wait", "-server", unreachable, "-after-put"},
		{"fleet", "wait", "-server", unreachable, "-revision", "3", "-fraction", "1.5"},
		{"fleet", "status", "-server", unreachable, "-bucket", "a.b"},
		{"fleet", "status", "-server", unreachable, "extra"},
		{"fleet", "frobnicate"},
	} {
		if code, _, errOut := runCmd(t, args...); code != exitUsage {
			t.Errorf("%v = %d %q, want usage", args, code, errOut)
		}
	}
	if code, out, _ := runCmd(t, "fleet", "wait", "-h"); code != exitOK || !strings.Contains(out, "usage: slipagent fleet wait") {
		t.Errorf("fleet wait -h = %d %q", code, out)
	}
	if code, out, _ := runCmd(t, "help", "fleet"); code != exitOK || !strings.Contains(out, "Rollout: put, wait, inspect") {
		t.Errorf("help fleet = %d %q", code, out)
	}
}

// checkRolloutPage runs "fleet serve" over the rollout's reports and loads
// its page in Chromium: three hosts, h3 first, failing at revision rev.
func checkRolloutPage(t *testing.T, dir, url string, rev uint64) {
	t.Helper()
	ctx := browsertest.New(t)
	serveDir := filepath.Join(dir, "serve")
	os.MkdirAll(serveDir, 0o755)
	serve := startSlipagent(t, serveDir, "fleet", "serve", "-server", url, "-report-bucket", "fleet", "-bucket", "cfg", "-listen", "127.0.0.1:0")
	defer serve.stop(t, syscall.SIGTERM)
	var page string
	for deadline := time.Now().Add(time.Minute); page == ""; time.Sleep(50 * time.Millisecond) {
		_, rest, ok := strings.Cut(serve.output(), "serving the rollout page on ")
		if line, _, full := strings.Cut(rest, "\n"); ok && full {
			page = line
		}
		if time.Now().After(deadline) {
			t.Fatalf("fleet serve printed no address: %s", serve.output())
		}
	}
	if _, err := chromedp.Run(ctx, chromedp.Navigate(page)); err != nil {
		t.Fatal(err)
	}
	browsertest.EvalUntil(t, ctx, "the hosts", `[...document.querySelectorAll("tr.host")].map(r => r.dataset.host).join(" ")`, "h3 h1 h2")
	cell := `document.querySelector('tr[data-host="h3"] td.cell')`
	browsertest.EvalUntil(t, ctx, "h3 failing", cell+`.dataset.revision + " " + `+cell+`.dataset.state`, fmt.Sprintf("%d failing", rev))
}

// A report bucket that does not exist (no agent reported yet, or a typo in
// -report-bucket) is named once, as soon as fleet wait sees it, not only
// when the wait ends: without -timeout that would be never. Polled every
// millisecond, the timeout nearly always lands in a read, whose error (the
// deadline, naming the bucket) must not be printed as the last one.
func TestFleetWaitNamesAMissingReportBucket(t *testing.T) {
	url := natstest.Run(t).URL()
	code, out, errOut := runCmd(t, "fleet", "wait", "-server", url, "-report-bucket", "fleet-typo", "-revision", "1", "-poll", "1ms", "-timeout", "3s")
	const notice = "report bucket fleet-typo does not exist yet: no agent has reported to it"
	if code != exitTimeout || strings.Count(errOut, notice) != 1 || strings.Count(errOut, "fleet-typo") != 1 {
		t.Fatalf("fleet wait on a missing report bucket = %d %q %q; want exit 6 and the bucket named once", code, out, errOut)
	}
}

// stalledReports is a report bucket whose reads never finish before their
// context ends, as when its server is down and requests time out.
type stalledReports struct{ kvcore.Store }

func (stalledReports) Scan(ctx context.Context, prefix string) ([]kvcore.Entry, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// A wait whose only read of the report bucket was cut short by its end
// says so: it said "no host reports such a watch", which hid an unreadable
// bucket (audit finding).
func TestFleetWaitSaysItsReadsDidNotFinish(t *testing.T) {
	reports := "fleet"
	f := &fleetFlags{reports: &reports, query: fleet.Query{Revision: 3}}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var stdout, stderr strings.Builder
	code := waitConverged(ctx, &fleetReader{name: reports, reports: stalledReports{}}, f, convergence{fraction: 1}, time.Millisecond, &stdout, &stderr)
	if code != exitTimeout || !strings.Contains(stderr.String(), "no read of report bucket fleet finished before the wait ended") || strings.Contains(stdout.String(), "no host reports") {
		t.Errorf("wait = %d, stdout %q, stderr %q; want %d and the unfinished read said, not that no host reports the watch", code, stdout.String(), stderr.String(), exitTimeout)
	}
}
