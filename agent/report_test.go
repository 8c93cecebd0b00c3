package agent

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/slipstreamkv/slipstream/fleet"
	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/kvcore/natskv"
)

// reportBlock makes the agent of filesConfig report as host h1.
const reportBlock = `
report {
  bucket   = "fleet"
  interval = "1s"
  max_age  = "5s"
  host     = "h1"
}
`

// fleetRecord reads host h1's record of watch cfg ("" state when absent).
func (f *fixture) fleetRecord() fleet.Record {
	f.t.Helper()
	return f.fleetRecordOf("h1")
}

// fleetRecordOf reads host's record of watch cfg ("" state when absent).
func (f *fixture) fleetRecordOf(host string) fleet.Record {
	f.t.Helper()
	return f.fleetRecordAt(fleet.Key(host, "cfg"))
}

// fleetRecordAt reads the record under key ("" state when absent).
func (f *fixture) fleetRecordAt(key string) fleet.Record {
	f.t.Helper()
	s, err := f.conn.Open(context.Background(), "fleet")
	if errors.Is(err, kvcore.ErrBucketNotFound) {
		return fleet.Record{}
	}
	if err != nil {
		f.t.Fatal(err)
	}
	e, err := s.Get(context.Background(), key)
	if errors.Is(err, kvcore.ErrNotFound) {
		return fleet.Record{}
	}
	if err != nil {
		f.t.Fatal(err)
	}
	r, err := fleet.Decode(e.Key, e.Value)
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

// The report follows the watch: its applied revision once ready, a failing
// hook's error with the revision held back, and a heartbeat while nothing
// changes. The agent creates the bucket with the max age.
func TestFleetReportFollowsTheWatch(t *testing.T) {
	f := newFixture(t)
	rev := f.put("cfg", "files.a.conf", "1")
	broken := filepath.Join(f.dir, "broken")
	cfg := f.config(strings.Replace(filesConfig, `"echo $SLIPAGENT_REVISION >> $DIR/hooks.log"`, `"test ! -e $DIR/broken"`, 1) + reportBlock)
	a, _ := f.start(cfg)
	// The first compile of the plugin may take long on a busy machine.
	waitLong(t, "h1 to report the first revision", func() bool {
		r := f.fleetRecord()
		return r.State == fleet.StateReady && r.Revision == rev
	})
	r := f.fleetRecord()
	if r.Bucket != "cfg" || r.Error != "" || time.Duration(r.Interval) != time.Second || r.Since.IsZero() {
		t.Errorf("record %+v", r)
	}
	waitFor(t, "a heartbeat", func() bool { return f.fleetRecord().Time.After(r.Time) })
	st, err := f.jetstream().Stream(context.Background(), "KV_fleet")
	if err != nil {
		t.Fatal(err)
	}
	if c := st.CachedInfo().Config; c.MaxAge != 5*time.Second || c.MaxBytes != DefaultReportMaxBytes || c.Discard != jetstream.DiscardOld {
		t.Errorf("report bucket max age %v, max bytes %d, discard %v; want max_age 5s, 64 MiB, old", c.MaxAge, c.MaxBytes, c.Discard)
	}

	if err := os.WriteFile(broken, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f.put("cfg", "files.a.conf", "2")
	waitFor(t, "h1 to report the failing hook", func() bool {
		r := f.fleetRecord()
		return r.State == fleet.StateFailing && strings.Contains(r.Error, "changed")
	})
	if r := f.fleetRecord(); r.Revision != rev {
		t.Errorf("failing record has revision %d, want %d (not applied past it)", r.Revision, rev)
	}
	if n := testutil.ToFloat64(a.fleet.reports.WithLabelValues("error")); n != 0 {
		t.Errorf("%v report errors", n)
	}
	if st := a.ReportStatus(); st.Error != "" || st.LastWrite.IsZero() {
		t.Errorf("/status report %+v, want written, no error", st)
	}
}

// A report bucket that refuses writes (full) costs reports, never the
// watch: it still applies, and the failures are counted.
func TestFleetReportFailureDoesNotStopTheWatch(t *testing.T) {
	f := newFixture(t)
	if _, err := f.conn.Store(context.Background(), kvcore.StoreConfig{Bucket: "fleet", MaxBytes: 64}); err != nil {
		t.Fatal(err)
	}
	rev := f.put("cfg", "files.a.conf", "1")
	a, _ := f.start(f.config(filesConfig + reportBlock))
	waitLong(t, "the watch to apply", func() bool { return a.Ready() && a.Status()[0].Revision == rev })
	waitFor(t, "a report failure to be counted", func() bool {
		return testutil.ToFloat64(a.fleet.reports.WithLabelValues("error")) > 0
	})
	if r := f.fleetRecord(); r.State != "" {
		t.Errorf("record %+v in a full bucket", r)
	}
	if st := a.ReportStatus(); !strings.Contains(st.Error, "report bucket fleet") || st.FailingSince.IsZero() || !st.LastWrite.IsZero() {
		t.Errorf("/status report %+v, want the failure to write", st)
	}
}

// report { replicas } reaches the bucket the agent creates: a single
// server refuses more than one copy, and the report says so (on a cluster
// the bucket gets them; it had one, lost with its server).
func TestFleetReportBucketReplicas(t *testing.T) {
	f := newFixture(t)
	rev := f.put("cfg", "files.a.conf", "1")
	report := strings.Replace(reportBlock, `host     = "h1"`, `host     = "h1"
  replicas = 3`, 1)
	a, _ := f.start(f.config(filesConfig + report))
	waitLong(t, "the watch to apply", func() bool { return a.Ready() && a.Status()[0].Revision == rev })
	waitFor(t, "the report's failure", func() bool { return a.ReportStatus().Error != "" })
	if st := a.ReportStatus(); !strings.Contains(st.Error, "report bucket fleet") || !strings.Contains(strings.ToLower(st.Error), "replicas") {
		t.Errorf("/status report %+v, want the creation of 3 replicas refused", st)
	}
}

// A report bucket deleted while the agent runs is created again, with its
// max age, at the next write (here, a change: the heartbeat is an hour
// away), and every watch's record comes back, the unchanged one too. A
// delete owed to a removed watch does not keep it from noticing.
func TestFleetReportBucketDeletedIsCreatedAgain(t *testing.T) {
	f := newFixture(t)
	f.put("a", "files.x", "1")
	f.put("b", "files.x", "1")
	report := strings.NewReplacer(`interval = "1s"`, `interval = "1h"`, `max_age  = "5s"`, `max_age  = "2h"`).Replace(reportBlock)
	a, _ := f.start(f.config(twoWatches + report))
	waitLong(t, "both watches' ready records", func() bool {
		return f.fleetRecordAt("h1.a").State == fleet.StateReady && f.fleetRecordAt("h1.b").State == fleet.StateReady
	})
	deleteBucket := func() {
		t.Helper()
		if err := f.jetstream().DeleteKeyValue(context.Background(), "fleet"); err != nil {
			t.Fatal(err)
		}
	}
	deleteBucket()
	f.put("a", "files.x", "2")
	waitFor(t, "both records in a new report bucket", func() bool { return f.reportKeys() == "h1.a h1.b" })
	st, err := f.jetstream().Stream(context.Background(), "KV_fleet")
	if err != nil {
		t.Fatal(err)
	}
	if c := st.CachedInfo().Config; c.MaxAge != 2*time.Hour {
		t.Errorf("re-created report bucket has max age %v, want 2h", c.MaxAge)
	}

	// b removed (its record is owed a delete), then the bucket deleted.
	if err := a.Reload(context.Background(), f.config(strings.Replace(twoWatches, `watch "b" {`, `watch "c" {`, 1)+report)); err != nil {
		t.Fatal(err)
	}
	deleteBucket()
	f.put("a", "files.x", "3")
	waitFor(t, "the records in another new report bucket", func() bool { return f.reportKeys() == "h1.a h1.c" })
	if !a.Ready() {
		t.Error("the watches are not ready")
	}
}

// reportKeys lists the keys of the report bucket, sorted ("" without one).
func (f *fixture) reportKeys() string {
	s, err := f.conn.Open(context.Background(), "fleet")
	if err != nil {
		return ""
	}
	k, _ := s.Keys(context.Background(), "")
	slices.Sort(k) // the bucket lists them in the order last written
	return strings.Join(k, " ")
}

// A watch a reload removes takes its record out of the report bucket: the
// fleet would otherwise count it, never applying anything, until it aged
// out.
func TestFleetReportForgetsARemovedWatch(t *testing.T) {
	f := newFixture(t)
	f.put("a", "files.x", "1")
	f.put("b", "files.x", "1")
	report := strings.Replace(reportBlock, `max_age  = "5s"`, `max_age  = "1h"`, 1) // not aged out meanwhile
	a, _ := f.start(f.config(twoWatches + report))
	waitLong(t, "both watches' records", func() bool { return f.reportKeys() == "h1.a h1.b" })
	src := strings.Replace(twoWatches, `watch "b" {`, `watch "c" {`, 1)
	if err := a.Reload(context.Background(), f.config(src+report)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b's record to go and c's to come", func() bool { return f.reportKeys() == "h1.a h1.c" })
}

// A watch dropped from the configuration while the agent was stopped takes
// its record out of the report bucket at the next start, as a reload
// does: the agent keeps the names it reported in data_dir. A record of
// another report bucket is not touched (audit finding: it stayed, lagging,
// until it aged out).
func TestFleetReportForgetsAWatchDroppedAcrossARestart(t *testing.T) {
	f := newFixture(t)
	f.put("a", "files.x", "1")
	f.put("b", "files.x", "1")
	report := strings.Replace(reportBlock, `max_age  = "5s"`, `max_age  = "1h"`, 1) // not aged out meanwhile
	_, stop := f.start(f.config(twoWatches + report))
	waitLong(t, "both watches' records", func() bool { return f.reportKeys() == "h1.a h1.b" })
	stop()

	src := strings.Replace(twoWatches, `watch "b" {`, `watch "c" {`, 1)
	_, stop = f.start(f.config(src + report))
	waitLong(t, "b's record to go and c's to come", func() bool { return f.reportKeys() == "h1.a h1.c" })
	stop()
	b, err := os.ReadFile(filepath.Join(f.dir, "data", reportedFile))
	if err != nil || string(b) != `{"bucket":"fleet","host":"h1","watches":["a","c"]}` {
		t.Errorf("%s = %s (%v), want watches a and c", reportedFile, b, err)
	}

	// A record written since the next run started is another agent's,
	// reporting under the same host name: it stays.
	other, err := json.Marshal(fleet.Record{Host: "h1", Watch: "a", State: fleet.StateReady, Time: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store("fleet").Put(context.Background(), "h1.a", other); err != nil {
		t.Fatal(err)
	}
	src = strings.Replace(twoWatches, `watch "a" {`, `watch "d" {`, 1)
	src = strings.Replace(src, `watch "b" {`, `watch "c" {`, 1)
	_, stop = f.start(f.config(src + report))
	defer stop()
	waitLong(t, "d's record", func() bool { return f.reportKeys() == "h1.a h1.c h1.d" })
	time.Sleep(time.Second) // a few ticks, in which a delete would have come
	if got := f.fleetRecordAt("h1.a"); !got.Time.After(time.Now()) {
		t.Errorf("h1.a = %+v, want the other agent's record kept", got)
	}
}

// report { domain } sends the reports to the bucket of another JetStream
// domain: an agent on a leaf node reading the leaf's own buckets (a mirror)
// reports to the hub's report bucket, where the rest of the fleet is, and
// none is made in the leaf's JetStream (audit finding: the hub's fleet
// view did not see it, and fleet wait took the fleet as converged).
func TestFleetReportInAnotherDomain(t *testing.T) {
	hub := natstest.RunHub(t, "hub")
	f := newFixtureOn(t, natstest.RunLeaf(t, hub, "leaf"))
	rev := f.put("cfg", "files.a.conf", "1") // in the leaf's JetStream
	report := strings.Replace(reportBlock, `host     = "h1"`, `host     = "h1"
  domain   = "hub"`, 1)
	a, _ := f.start(f.config(filesConfig + report))
	waitLong(t, "the watch to apply", func() bool { return a.Ready() && a.Status()[0].Revision == rev })

	onHub := natskv.New(natskv.Options{Servers: []string{hub.URL()}, Timeout: 5 * time.Second})
	if err := onHub.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer onHub.Close()
	var rec fleet.Record
	waitFor(t, "the record in the hub's report bucket", func() bool {
		s, err := onHub.Open(context.Background(), "fleet")
		if err != nil {
			return false
		}
		e, err := s.Get(context.Background(), fleet.Key("h1", "cfg"))
		if err != nil {
			return false
		}
		rec, err = fleet.Decode(e.Key, e.Value)
		return err == nil && rec.State == fleet.StateReady && rec.Revision == rev
	})
	if _, err := f.conn.Open(context.Background(), "fleet"); !errors.Is(err, kvcore.ErrBucketNotFound) {
		t.Errorf("the leaf's JetStream has a report bucket (%v), want none", err)
	}
}

func TestReportConfig(t *testing.T) {
	cfg, err := Parse("agent.hcl", []byte(`report {}`))
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	r := cfg.Report
	if r.Bucket != "slipagent-fleet" || r.Interval != 30*time.Second || r.MaxAge != 5*time.Minute || r.Host != fleet.HostID(host) || r.Replicas != 1 {
		t.Errorf("defaults: %+v", r)
	}
	if cfg, _ := Parse("agent.hcl", nil); cfg.Report != nil {
		t.Error("reporting is on without a report block")
	}
	// The example's (commented) report block parses as documented.
	example, err := os.ReadFile("../agent.hcl.example")
	if err != nil {
		t.Fatal(err)
	}
	_, block, _ := strings.Cut(string(example), "\n# report {")
	block, _, _ = strings.Cut(block, "\n# }")
	block = "report {" + strings.ReplaceAll(block, "\n#", "\n") + "\n}"
	if cfg, err := Parse("agent.hcl", []byte(block)); err != nil || cfg.Report.Host != "web1" || cfg.Report.MaxAge != 5*time.Minute || cfg.Report.Replicas != 3 {
		t.Errorf("the example's report block:\n%s\n%v", block, err)
	}
	for _, bad := range []string{
		`report { host = "web1.example.com" }`,
		`report { interval = "10s"  max_age = "10s" }`,
		`report { interval = "1ms" }`,
		`report { bucket = "a.b" }`,
		`report { replicas = 7 }`,
		`report { replicas = -1 }`,
	} {
		if _, err := Parse("agent.hcl", []byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// waitLong is waitFor with room for a plugin's first compile.
func waitLong(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The fleet package names the states the agent reports.
func TestFleetStatesAreTheAgents(t *testing.T) {
	want := []string{fleet.StateStarting, fleet.StateSyncing, fleet.StateReady, fleet.StateFailing, fleet.StateDetached, fleet.StateStale, fleet.StateHeld}
	if strings.Join(watchStates, " ") != strings.Join(want, " ") {
		t.Errorf("agent states %v, fleet states %v", watchStates, want)
	}
}

// A record reports a watch behind while it applies a batch only once that
// lasted a report interval: a short drift repair would otherwise leave a
// ready host shown behind until the next heartbeat.
func TestReportedBehind(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const interval = 30 * time.Second
	for _, tc := range []struct {
		name         string
		busy, behind time.Time
		now          time.Time
		want         time.Time
	}{
		{"caught up", time.Time{}, time.Time{}, t0, time.Time{}},
		{"trailing, not busy", time.Time{}, t0, t0.Add(time.Minute), t0},
		{"a batch under an interval", t0, t0, t0.Add(interval - time.Second), time.Time{}},
		{"a batch past an interval (a hook's min_interval)", t0, t0, t0.Add(interval), t0},
		{"behind before the batch started", t0.Add(time.Minute), t0, t0.Add(time.Minute + time.Second), t0},
	} {
		if got := reportedBehind(WatchStatus{BusySince: tc.busy, BehindSince: tc.behind}, tc.now, interval); !got.Equal(tc.want) {
			t.Errorf("%s: reported behind since %v, want %v", tc.name, got, tc.want)
		}
	}
}
