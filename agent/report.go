package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipstreamkv/slipstream/fleet"
	"github.com/slipstreamkv/slipstream/kvcore"
)

// reportPoll is how often the fleet reporter looks at the watches' states:
// a change reaches the report bucket within it.
const reportPoll = 250 * time.Millisecond

// maxReportRetry bounds the wait after a failed report write.
const maxReportRetry = 5 * time.Second

// fleetReporter writes one fleet.Record per watch to the report bucket (see
// ReportConf): when a watch's revision, state or error changes, and every
// interval as a heartbeat. It only reads the watches' statuses, in a
// goroutine of its own, and writes the latest of them: a slow or failing
// bucket delays reports, never a watch. Its failures are logged and counted
// (slipagent_fleet_reports_total{result="error"}), not propagated. It
// writes with compare-and-set, to find another agent reporting under the
// same host name (report_conflict.go).
// Only its own goroutine (Agent.reportFleet) uses it.
type fleetReporter struct {
	a    *Agent
	conf *ReportConf
	// conn is the agent's connection, or its report connection (own), in
	// another domain, which the reporter connects and closes.
	conn    kvcore.Conn
	own     bool
	version string
	// timeout bounds each request to the bucket: the NATS timeout, which
	// a reload cannot change (it rebuilds the agent).
	timeout time.Duration
	store   kvcore.Store
	sent    map[string]fleet.Record // last record written, by watch
	revs    map[string]fleet.Record // Revision and Since, by watch
	// earlier holds, by watch, the Revision and Since of the record an
	// earlier run of this agent left in the watch's key: a watch still at
	// that revision keeps its Since, so a restart does not make a host
	// stuck for an hour look as if it had just got there.
	earlier map[string]fleet.Record
	retryAt time.Time
	reports *prometheus.CounterVec

	// instance and started identify this agent run in its records;
	// vers holds the version of each key it wrote last (see
	// report_conflict.go).
	instance string
	started  time.Time
	vers     map[string]kvcore.Version
	// conflictsByKey (under mu: /status reads it) are the keys another
	// agent writes too; conflictLogged is when one was last logged.
	// lastWrite (under mu) is when a record was last written, failure why
	// the reports cannot be written, since failingSince (empty while they
	// are).
	mu             sync.Mutex
	lastWrite      time.Time
	failure        string
	failingSince   time.Time
	conflictsByKey map[string]*ReportConflict
	conflictLogged time.Time
	conflictWrites prometheus.Counter
	readWarned     bool // a key could not be read (a permission missing?)

	// adopted are the watches of sent whose records an earlier run left
	// (report_reported.go); saved are the names last saved to
	// reportedFile (savedOnce: once any were); saveWarned, that a failure
	// to save was logged, tried again at saveRetryAt.
	adopted               map[string]bool
	saved                 []string
	savedOnce, saveWarned bool
	saveRetryAt           time.Time
}

func newFleetReporter(a *Agent, conf *ReportConf, version string) *fleetReporter {
	r := &fleetReporter{
		a: a, conf: conf, conn: cmp.Or[kvcore.Conn](a.reportConn, a.conn), own: a.reportConn != nil, version: version, timeout: a.cfg.NATS.Timeout,
		sent: map[string]fleet.Record{}, revs: map[string]fleet.Record{}, earlier: map[string]fleet.Record{}, adopted: map[string]bool{},
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipagent_fleet_reports_total", Help: "Records written to the fleet report bucket, by result (ok, error).",
		}, []string{"result"}),
		instance: randomHex(), started: time.Now(),
		vers: map[string]kvcore.Version{}, conflictsByKey: map[string]*ReportConflict{},
		conflictWrites: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slipagent_report_conflicts_total", Help: "Fleet report writes that found their key written by another agent reporting under the same host name.",
		}),
	}
	a.metrics.reg.MustRegister(r.reports, r.conflictWrites)
	for _, result := range outcomes { // at 0 from the start, as watchAdded makes a watch's
		r.reports.WithLabelValues(result)
	}
	return r
}

// reportFleet runs the fleet reporter until ctx ends (a no-op without a
// report block).
func (a *Agent) reportFleet(ctx context.Context) {
	r := a.fleet
	if r == nil {
		return
	}
	attrs := []any{"bucket", r.conf.Bucket, "host", r.conf.Host, "interval", r.conf.Interval}
	if r.conf.Domain != "" {
		attrs = append(attrs, "domain", r.conf.Domain)
	}
	a.log.Info("reporting to the fleet bucket", attrs...)
	if r.own {
		defer r.conn.Close()
	}
	t := time.NewTicker(reportPoll)
	defer t.Stop()
	for {
		r.tick(ctx, time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// tick writes the records that changed or are due for a heartbeat.
func (r *fleetReporter) tick(ctx context.Context, now time.Time) {
	if now.Before(r.retryAt) {
		return
	}
	if r.own && !r.conn.Healthy() {
		// Its own connection, which reconnects by itself once made, and
		// is first made after the agent's (start_splay spreads both).
		select {
		case <-r.a.connected:
		default:
			return
		}
		cctx, cancel := context.WithTimeout(ctx, r.timeout)
		err := r.conn.Connect(cctx)
		cancel()
		if err != nil {
			r.failed(ctx, fmt.Errorf("report bucket %s in domain %s: %w", r.conf.Bucket, r.conf.Domain, err), now)
			return
		}
	}
	if !r.conn.Healthy() {
		return // the agent connects (and logs why it cannot)
	}
	if r.store == nil {
		sctx, cancel := context.WithTimeout(ctx, r.timeout)
		// Discard old: a full bucket drops the records written longest
		// ago (dead hosts' first) rather than refuse live hosts' reports.
		store, err := r.conn.Store(sctx, kvcore.StoreConfig{Bucket: r.conf.Bucket, MaxAge: r.conf.MaxAge,
			MaxBytes: r.conf.MaxBytes, Replicas: r.conf.Replicas, Discard: kvcore.DiscardOld})
		cancel()
		if err != nil {
			r.failed(ctx, fmt.Errorf("report bucket %s: %w", r.conf.Bucket, err), now)
			return
		}
		r.store = store
		r.adoptReported()
	}
	statuses := r.a.Status()
	err := r.forget(ctx, statuses)
	r.noteReported(now)
	if err != nil {
		r.writeFailed(ctx, err, now)
		return
	}
	for _, s := range statuses {
		key := fleet.Key(r.conf.Host, s.Name)
		plain := r.record(s, now)
		if last, ok := r.sent[s.Name]; ok && sameReport(last, r.marked(key, plain, now)) && now.Sub(last.Time) < r.conf.Interval {
			continue
		}
		rec, err := r.write(ctx, key, plain, now)
		if err != nil {
			r.writeFailed(ctx, fmt.Errorf("report bucket %s, key %s: %w", r.conf.Bucket, key, err), now)
			return
		}
		r.reports.WithLabelValues("ok").Inc()
		r.sent[s.Name] = rec
		r.mu.Lock()
		r.lastWrite = now
		r.mu.Unlock()
	}
	r.mu.Lock()
	recovered := r.failure != ""
	r.failure, r.failingSince = "", time.Time{}
	r.mu.Unlock()
	if recovered {
		r.a.log.Info("fleet reports written again", "bucket", r.conf.Bucket)
	}
}

// forget deletes the records of the watches the agent no longer runs (a
// reload removed them), which the fleet would otherwise count until they
// age out.
func (r *fleetReporter) forget(ctx context.Context, running []WatchStatus) error {
	for name := range r.sent {
		if slices.ContainsFunc(running, func(s WatchStatus) bool { return s.Name == name }) {
			continue
		}
		key := fleet.Key(r.conf.Host, name)
		if !r.adopted[name] || r.mayForget(ctx, key) {
			dctx, cancel := context.WithTimeout(ctx, r.timeout)
			err := r.store.Delete(dctx, key)
			cancel()
			if err != nil {
				return fmt.Errorf("report bucket %s, deleting key %s of a removed watch: %w", r.conf.Bucket, key, err)
			}
		}
		delete(r.adopted, name)
		delete(r.sent, name)
		delete(r.revs, name)
		delete(r.vers, key)
		r.mu.Lock()
		delete(r.conflictsByKey, key)
		r.mu.Unlock()
	}
	return nil
}

// writeFailed is failed for a write to the bucket. A bucket deleted under
// the agent is created again at the next tick, empty: every record is
// written again, as if never written.
func (r *fleetReporter) writeFailed(ctx context.Context, err error, now time.Time) {
	if errors.Is(err, kvcore.ErrBucketNotFound) {
		r.store = nil
		clear(r.sent)
		clear(r.vers)
	}
	r.failed(ctx, err, now)
}

// failed counts a failure, logs the first of a run of them, and waits a
// little before the next attempt.
func (r *fleetReporter) failed(ctx context.Context, err error, now time.Time) {
	if ctx.Err() != nil {
		return
	}
	r.reports.WithLabelValues("error").Inc()
	r.mu.Lock()
	first := r.failure == ""
	if first {
		r.failingSince = now
	}
	r.failure = err.Error()
	r.mu.Unlock()
	if first {
		r.a.log.Warn("cannot write the fleet report; the watches are not affected, retrying", "err", err)
	}
	r.retryAt = now.Add(min(r.conf.Interval, maxReportRetry))
}

// record is the fleet record of a watch's status.
func (r *fleetReporter) record(s WatchStatus, now time.Time) fleet.Record {
	rev, ok := r.revs[s.Name]
	if !ok || rev.Revision != s.Revision {
		rev = fleet.Record{Revision: s.Revision, Since: now}
		if e, ok := r.earlier[s.Name]; ok && e.Revision == s.Revision && !e.Since.IsZero() && e.Since.Before(now) {
			rev.Since = e.Since
		} else if ok && s.Revision > e.Revision {
			delete(r.earlier, s.Name) // moved on: its Since is history
		}
		r.revs[s.Name] = rev
	}
	rec := fleet.Record{
		Host:        r.conf.Host,
		Agent:       r.version,
		Instance:    r.instance,
		Watch:       s.Name,
		Bucket:      s.Bucket,
		Revision:    s.Revision,
		State:       s.State,
		Since:       rev.Since,
		BehindSince: reportedBehind(s, now, r.conf.Interval),
		Time:        now,
		Interval:    fleet.Duration(r.conf.Interval),
	}
	for _, w := range r.a.runners() { // a reload replaces a.cfg under a.mu
		if w.conf.Name == s.Name {
			rec.Prefixes = w.conf.Prefixes
		}
	}
	if !s.Ready {
		rec.Error = cmp.Or(s.LastError, s.Reason)
	}
	switch {
	case s.Batches > 0 && s.PluginLog != nil:
		rec.PluginError = s.PluginLog.AppliedError
	case s.Batches == 0:
		// A watch (re)started at the same revision re-applies nothing: the
		// error its batch logged still stands, in the record last written
		// (which took it over from the run before: takeOver).
		if e, ok := r.sent[s.Name]; ok && e.Revision == s.Revision {
			rec.PluginError = e.PluginError
		}
	}
	rec.PluginError = clip(rec.PluginError, maxPluginError)
	return rec
}

// reportedBehind is the BehindSince a record carries. A watch is behind
// while it applies a batch; one applying for less than a report interval
// is reported caught up, as a record written during a drift repair (which
// moves no revision, so writes no record after it) would otherwise show a
// ready host behind until the next heartbeat. Behind for longer, or for
// another reason too, it is reported.
func reportedBehind(s WatchStatus, now time.Time, interval time.Duration) time.Time {
	if !s.BusySince.IsZero() && !s.BehindSince.Before(s.BusySince) && now.Sub(s.BusySince) < interval {
		return time.Time{}
	}
	return s.BehindSince
}

// clip keeps the first n bytes of s (never half a character) and an
// ellipsis when s is longer.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// maxPluginError bounds a record's plugin_error: a plugin's log line may
// be 4096 bytes.
const maxPluginError = 512

// sameReport reports whether two records say the same apart from when they
// were written.
func sameReport(a, b fleet.Record) bool {
	return a.Revision == b.Revision && a.State == b.State && a.Error == b.Error && a.PluginError == b.PluginError
}
