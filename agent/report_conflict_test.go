package agent

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/slipstreamkv/slipstream/fleet"
	"github.com/slipstreamkv/slipstream/internal/logtest"
)

// reportingAgent starts an agent on filesConfig with its data and outputs
// under $DIR/<name>, reporting as host h1 (reportBlock), with its hook
// command replaced by hook when not empty, logging into logs as well as the
// test's log.
func (f *fixture) reportingAgent(name, hook string, logs *logtest.Buffer) (*Agent, func()) {
	f.t.Helper()
	src := strings.NewReplacer(`"$DIR/data"`, `"$DIR/`+name+`/data"`, `"$DIR/out"`, `"$DIR/`+name+`/out"`).Replace(filesConfig) + reportBlock
	if hook != "" {
		src = strings.Replace(src, `"echo $SLIPAGENT_REVISION >> $DIR/hooks.log"`, hook, 1)
	}
	return f.startLogging(f.config(src), logs)
}

// fleetReport aggregates the report bucket fleet.
func (f *fixture) fleetReport() fleet.Report {
	f.t.Helper()
	records, _, err := fleet.Read(context.Background(), f.store("fleet"))
	if err != nil {
		f.t.Fatal(err)
	}
	return fleet.Aggregate(records, fleet.Query{})
}

// Two agents report under one host name, one of them failing its watch.
// Both find the other's writes in their key, say so loudly (an error log
// naming host, key, bucket and the fix; the metric; /status), and mark
// their records with the conflict: whichever the fleet reads, the host is
// failing and has not applied the revision. Once one agent stops, the
// other's conflict ends and its record is ready again.
func TestTwoAgentsUnderOneHostNameConflict(t *testing.T) {
	f := newFixture(t)
	rev := f.put("cfg", "files.a.conf", "1")
	var okLogs, failingLogs logtest.Buffer
	ok, _ := f.reportingAgent("ok", "", &okLogs)
	waitLong(t, "the healthy agent to report the revision", func() bool {
		r := f.fleetRecord()
		return r.State == fleet.StateReady && r.Revision == rev
	})
	failing, stopFailing := f.reportingAgent("failing", `"false"`, &failingLogs)

	byInstance := map[string]fleet.Record{}    // the latest conflict record of each
	written := map[string]map[time.Time]bool{} // conflict records seen, by instance
	waitFor(t, "both agents' records to carry the conflict, and the failing one its error", func() bool {
		if r := f.fleetRecord(); r.State == fleet.StateConflict {
			byInstance[r.Instance] = r
			if written[r.Instance] == nil {
				written[r.Instance] = map[time.Time]bool{}
			}
			written[r.Instance][r.Time] = true
			if n := strings.Count(r.Error, "is also reported"); n != 1 {
				t.Fatalf("the conflict is told %d times: %s", n, r.Error)
			}
		}
		// Records written while the conflict goes on, too.
		return len(byInstance) == 2 && strings.Contains(byInstance[failing.ReportStatus().Instance].Error, "this agent's watch is failing") &&
			len(written[ok.ReportStatus().Instance]) >= 3 && len(written[failing.ReportStatus().Instance]) >= 3
	})
	for _, a := range []*Agent{ok, failing} {
		r, seen := byInstance[a.ReportStatus().Instance]
		if !seen || !strings.Contains(r.Error, "host name h1 is also reported by another agent (instance ") {
			t.Errorf("agent %s: record %+v", a.ReportStatus().Instance, r)
		}
		if st := a.ReportStatus(); len(st.Conflicts) != 1 || st.Conflicts[0].Key != "h1.cfg" || st.Conflicts[0].Instance == st.Instance {
			t.Errorf("/status report part %+v", st)
		}
		if testutil.ToFloat64(a.fleet.conflictWrites) == 0 {
			t.Error("no conflict counted")
		}
	}
	// /status shows it in its report part; the watch itself is fine.
	rec := httptest.NewRecorder()
	ok.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/status", nil))
	var st struct {
		Ready  bool
		Report ReportStatus
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || !st.Ready || len(st.Report.Conflicts) != 1 || st.Report.Host != "h1" {
		t.Errorf("/status: %v\n%s", err, rec.Body)
	}
	rec = httptest.NewRecorder()
	ok.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), "slipagent_report_conflicts_total ") {
		t.Error("/metrics has no slipagent_report_conflicts_total")
	}
	for _, logs := range []*logtest.Buffer{&okLogs, &failingLogs} {
		if logs.Count(`level=ERROR msg="another agent reports under the same host name`) == 0 ||
			logs.Count(`report { host = \"…\" }`) == 0 || logs.Count("host=h1 key=h1.cfg bucket=fleet") == 0 {
			t.Errorf("no error log naming host, key, bucket and the fix")
		}
	}
	// Whichever agent wrote last, the fleet sees a failing host.
	for range 3 {
		w := f.fleetReport().Watches[0]
		if w.Applied != 0 || len(w.Failing) != 1 || w.Failing[0].Host != "h1" || w.Converged(1) {
			t.Fatalf("fleet: applied %d, failing %v, converged %v; want h1 failing, not applied", w.Applied, w.Failing, w.Converged(1))
		}
		time.Sleep(time.Second)
	}

	stopFailing()
	waitFor(t, "the conflict to end with the other agent", func() bool {
		r := f.fleetRecord()
		return r.State == fleet.StateReady && r.Instance == ok.ReportStatus().Instance && len(ok.ReportStatus().Conflicts) == 0
	})
	if w := f.fleetReport().Watches[0]; !w.Converged(1) {
		t.Errorf("fleet after the conflict: %+v", w)
	}
}

// An agent restarted (a new run, a new instance id) finds its earlier
// run's record in its key: that is no conflict, not even for a moment, and
// a watch still at the earlier run's revision keeps its Since (a host stuck
// for an hour does not look, after a restart, as if it just got there).
func TestRestartedAgentIsNoConflict(t *testing.T) {
	f := newFixture(t)
	rev := f.put("cfg", "files.a.conf", "1")
	var logs logtest.Buffer
	first, stop := f.reportingAgent("a", "", &logs)
	waitLong(t, "the first run to report", func() bool {
		r := f.fleetRecord()
		return r.State == fleet.StateReady && r.Revision == rev
	})
	stop() // leaves its record, as a crash does
	old := first.ReportStatus().Instance
	since := f.fleetRecord().Since

	again, _ := f.reportingAgent("a", "", &logs)
	var heartbeats []time.Time
	waitFor(t, "three heartbeats of the restarted agent", func() bool {
		r := f.fleetRecord()
		if r.State == fleet.StateConflict {
			t.Fatalf("the restarted agent reports a conflict: %+v", r)
		}
		if r.Instance != old && (len(heartbeats) == 0 || r.Time.After(heartbeats[len(heartbeats)-1])) {
			heartbeats = append(heartbeats, r.Time)
			if r.Revision == rev && !r.Since.Equal(since) {
				t.Errorf("the restarted agent reports revision %d since %v, want since %v as the earlier run did", rev, r.Since, since)
			}
		}
		return len(heartbeats) >= 3
	})
	if st := again.ReportStatus(); len(st.Conflicts) != 0 || testutil.ToFloat64(again.fleet.conflictWrites) != 0 {
		t.Errorf("conflicts %+v after a restart", st.Conflicts)
	}
	if n := logs.Count("another agent reports under the same host name"); n != 0 {
		t.Errorf("%d conflict errors logged after a restart", n)
	}
}
