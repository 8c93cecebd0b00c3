package fleet

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func rec(host string, rev uint64, state string, age time.Duration) Record {
	return Record{Host: host, Watch: "routes", Bucket: "cfg", Revision: rev, State: state,
		Since: t0.Add(-time.Hour), Time: t0.Add(-age), Interval: Duration(time.Second)}
}

func TestAggregate(t *testing.T) {
	records := []Record{
		rec("a", 10, StateReady, 0),
		rec("b", 10, StateReady, 0),
		rec("c", 7, StateFailing, 0),
		rec("d", 9, StateHeld, 0),
		rec("e", 10, StateReady, 5*time.Second), // silent: 5 intervals
		{Host: "a", Watch: "certs", Bucket: "tls", Revision: 3, State: StateReady, Time: t0, Interval: Duration(time.Second)},
	}
	rep := Aggregate(records, Query{Bucket: "cfg", Now: t0})
	if len(rep.Watches) != 1 {
		t.Fatalf("watches %+v, want routes only", rep.Watches)
	}
	w := rep.Watches[0]
	// e applied 10 before it went silent; its "ready" is stale news.
	if w.Revision != 10 || w.Hosts != 5 || w.Applied != 3 || w.Ready != 2 {
		t.Errorf("revision %d hosts %d applied %d ready %d, want 10 5 3 2", w.Revision, w.Hosts, w.Applied, w.Ready)
	}
	if len(w.Laggards) != 2 || w.Laggards[0].Host != "c" || w.Laggards[0].Lag != 3 || w.Laggards[1].Host != "d" || w.Laggards[1].Lag != 1 {
		t.Errorf("laggards %+v, want c (3 behind) then d (1)", w.Laggards)
	}
	if len(w.Failing) != 1 || w.Failing[0].Host != "c" || len(w.Held) != 1 || w.Held[0].Host != "d" || len(w.Silent) != 1 || w.Silent[0].Host != "e" {
		t.Errorf("failing %v held %v silent %v", w.Failing, w.Held, w.Silent)
	}
	if w.Converged(1) || !w.Converged(0.6) || w.Converged(0.61) {
		t.Errorf("converged(1, 0.6, 0.61) = %v %v %v, want false true false", w.Converged(1), w.Converged(0.6), w.Converged(0.61))
	}
	// Lags: 0 ×3, 1 ×1, 2–3 ×1.
	want := []Bin{{"0", 0, 0, 3}, {"1", 1, 1, 1}, {"2–3", 2, 3, 1}}
	if fmt.Sprint(w.Lags) != fmt.Sprint(want) {
		t.Errorf("lags %v, want %v", w.Lags, want)
	}

	// An explicit revision judges everyone by it.
	w = Aggregate(records, Query{Watch: "routes", Revision: 9, Now: t0}).Watches[0]
	if w.Applied != 4 || len(w.Laggards) != 1 {
		t.Errorf("at revision 9: applied %d laggards %v", w.Applied, w.Laggards)
	}
	if rep := Aggregate(records, Query{Bucket: "none"}); rep.Converged(1) {
		t.Error("a report without watches converged")
	}
}

func TestDecodeRefusesAnotherHost(t *testing.T) {
	if _, err := Decode("a.routes", []byte(`{"host":"b","watch":"routes"}`)); err == nil {
		t.Error("host a's key speaks for host b")
	}
	if r, err := Decode("a.routes", []byte(`{"host":"a","watch":"routes","interval":"30s"}`)); err != nil || time.Duration(r.Interval) != 30*time.Second {
		t.Errorf("decode = %+v, %v", r, err)
	}
	if got := HostID("web1.example.com"); got != "web1_example_com" {
		t.Errorf("HostID = %q", got)
	}
}

// A host whose name two agents report under is failing and has not applied
// the revision, whatever revision the record it last wrote names: that may
// be the other agent's.
func TestAggregateConflictIsFailingNotApplied(t *testing.T) {
	conflict := rec("web1", 10, StateConflict, 0)
	conflict.Error = "host name web1 is also reported by another agent (instance 1234)"
	w := Aggregate([]Record{rec("web2", 10, StateReady, 0), conflict}, Query{Now: t0}).Watches[0]
	if w.Applied != 1 || w.Ready != 1 || len(w.Failing) != 1 || w.Failing[0].Host != "web1" || w.Converged(1) {
		t.Errorf("applied %d ready %d failing %v converged %v; want web2 applied, web1 failing, not converged",
			w.Applied, w.Ready, w.Failing, w.Converged(1))
	}
	// Records of agents that predate the instance id still decode.
	r, err := Decode("web1.routes", []byte(`{"host":"web1","watch":"routes","bucket":"cfg","revision":3,"state":"ready"}`))
	if err != nil || r.Instance != "" || r.Revision != 3 {
		t.Errorf("old record: %+v, %v", r, err)
	}
}

// Query.Key judges only the watches whose scope holds the key: a watch with
// prefixes that do not hold it never applies its change.
func TestAggregateKeepsWatchesHoldingTheKey(t *testing.T) {
	tls := rec("a", 3, StateReady, 0)
	tls.Watch, tls.Prefixes = "tls", []string{"tls."}
	upstreams := rec("a", 9, StateReady, 0)
	upstreams.Watch, upstreams.Prefixes = "upstreams", []string{"tls.x", "upstream."}
	records := []Record{rec("a", 9, StateReady, 0), tls, upstreams}
	for key, want := range map[string]string{
		"upstream.web": "routes upstreams",
		"tls.cert":     "routes tls",
		"tls.x1":       "routes tls upstreams",
		"":             "routes tls upstreams",
	} {
		var got []string
		for _, w := range Aggregate(records, Query{Key: key, Revision: 9, Now: t0}).Watches {
			got = append(got, w.Watch)
		}
		if fmt.Sprint(got) != fmt.Sprint(strings.Fields(want)) {
			t.Errorf("key %q: watches %v, want %s", key, got, want)
		}
	}
}

// Silence is judged by when the bucket stored a record, when known, not by
// the writer's clock.
func TestAggregateSilenceByStoredTime(t *testing.T) {
	late := rec("late", 10, StateReady, 0)
	late.Time = t0.Add(-time.Hour) // its clock is an hour behind
	late.Stored = t0
	dead := rec("dead", 10, StateReady, 0) // its clock runs ahead
	dead.Time = t0.Add(time.Hour)
	dead.Stored = t0.Add(-time.Minute)
	w := Aggregate([]Record{late, dead}, Query{Now: t0}).Watches[0]
	if len(w.Silent) != 1 || w.Silent[0].Host != "dead" {
		t.Errorf("silent %v, want dead only", w.Silent)
	}
}

// A host whose plugin logged an error applying its revision applied it and
// is ready, and is listed under PluginErrors.
func TestAggregateListsPluginErrors(t *testing.T) {
	complained := rec("web1", 10, StateReady, 0)
	complained.PluginError = `files: skipping key "files.bad//path": empty component`
	w := Aggregate([]Record{rec("web2", 10, StateReady, 0), complained}, Query{Now: t0}).Watches[0]
	if w.Applied != 2 || w.Ready != 2 || !w.Converged(1) || len(w.PluginErrors) != 1 || w.PluginErrors[0].Host != "web1" {
		t.Errorf("applied %d ready %d converged %v plugin errors %v; want both applied and ready, web1 listed",
			w.Applied, w.Ready, w.Converged(1), w.PluginErrors)
	}
}
