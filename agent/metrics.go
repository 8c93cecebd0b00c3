package agent

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/slipstreamkv/slipstream/plugins/host"
)

// metrics are the agent's Prometheus metrics, in a registry of its own.
type metrics struct {
	reg         *prometheus.Registry
	batches     *prometheus.CounterVec
	updates     *prometheus.CounterVec
	pluginCalls *prometheus.CounterVec
	pluginTime  *prometheus.HistogramVec
	commands    *prometheus.CounterVec
	quarantines *prometheus.CounterVec
	drift       *prometheus.CounterVec
	reloads     *prometheus.CounterVec
}

func newMetrics(a *Agent) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipagent_batches_applied_total", Help: "Batches applied (plugin ran, files committed, hooks ran).",
		}, []string{"watch"}),
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipagent_updates_applied_total", Help: "Updates in applied batches.",
		}, []string{"watch"}),
		pluginCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipagent_plugin_calls_total", Help: "Plugin calls by kind (apply, render) and result (ok, error, timeout, trap).",
		}, []string{"watch", "kind", "result"}),
		pluginTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "slipagent_plugin_call_seconds", Help: "Duration of plugin calls.",
			Buckets: pluginCallBuckets,
		}, []string{"watch", "kind"}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipagent_commands_total", Help: "Hook and check command runs by result (ok, error).",
		}, []string{"watch", "hook", "kind", "result"}),
		quarantines: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipagent_quarantined_total", Help: "Local state (fold, journal, state, record, placement) that did not load and was moved aside.",
		}, []string{"watch", "kind"}),
		drift: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipagent_drift_repaired_total", Help: "Output files changed or removed outside the agent that a drift check found and a render restored.",
		}, []string{"watch"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipagent_reloads_total", Help: "Configuration reloads by result: ok (applied) or error (refused: the configuration or a plugin module did not load; the running one stayed).",
		}, []string{"result"}),
	}
	m.reg.MustRegister(m.batches, m.updates, m.pluginCalls, m.pluginTime, m.commands, m.quarantines, m.drift, m.reloads,
		statusCollector{a}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, result := range outcomes {
		m.reloads.WithLabelValues(result)
	}
	return m
}

// pluginCallBuckets are the bounds of slipagent_plugin_call_seconds: fine
// below a second, where calls are, and at the durations an alert or a
// timeout names above it (the plugin's default timeout is 5s), so that a
// quantile read against 2s or 5s is not interpolated across a bucket that
// spans it.
var pluginCallBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300}

// The label values of the counters, each series of which is made at 0 when
// its watch starts (watchAdded).
var (
	pluginCallKinds   = []string{"apply", "render"}
	pluginCallResults = []string{"ok", "error", "timeout", "trap"}
	outcomes          = []string{"ok", "error"}
	stateKinds        = []string{stateKindFold, stateKindJournal, stateKindState, stateKindRecord, stateKindPlacement}
)

// watchAdded makes the series of a watch exist from its start, at 0: a
// series that first appears at 1 is no increase() to Prometheus, so the
// alerts on quarantined state, drift, failed commands and plugin errors
// would miss the first of each. A watch a reload restarted starts its
// commands afresh, without the hooks and checks it no longer has.
func (m *metrics) watchAdded(w *WatchConf) {
	m.commands.DeletePartialMatch(prometheus.Labels{"watch": w.Name})
	m.batches.WithLabelValues(w.Name)
	m.updates.WithLabelValues(w.Name)
	for _, kind := range pluginCallKinds {
		for _, result := range pluginCallResults {
			m.pluginCalls.WithLabelValues(w.Name, kind, result)
		}
		m.pluginTime.WithLabelValues(w.Name, kind)
	}
	for _, h := range w.Hooks {
		kinds := []string{"hook"}
		if len(h.Check) > 0 {
			kinds = append(kinds, "check")
		}
		for _, kind := range kinds {
			for _, result := range outcomes {
				m.commands.WithLabelValues(w.Name, h.Name, kind, result)
			}
		}
	}
	for _, kind := range stateKinds {
		m.quarantines.WithLabelValues(w.Name, kind)
	}
	m.drift.WithLabelValues(w.Name)
}

// watchRemoved drops the series of a watch a reload removed.
func (m *metrics) watchRemoved(name string) {
	watch := prometheus.Labels{"watch": name}
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{m.batches, m.updates, m.pluginCalls, m.pluginTime, m.commands, m.quarantines, m.drift} {
		v.DeletePartialMatch(watch)
	}
}

func (m *metrics) batchApplied(watch string, updates int) {
	m.batches.WithLabelValues(watch).Inc()
	m.updates.WithLabelValues(watch).Add(float64(updates))
}

func (m *metrics) pluginCall(watch string, full bool, d time.Duration, err error) {
	kind := "apply"
	if full {
		kind = "render"
	}
	result := "ok"
	switch {
	case errors.Is(err, host.ErrTimeout):
		result = "timeout"
	case errors.Is(err, host.ErrTrap):
		result = "trap"
	case err != nil:
		result = "error"
	}
	m.pluginCalls.WithLabelValues(watch, kind, result).Inc()
	m.pluginTime.WithLabelValues(watch, kind).Observe(d.Seconds())
}

func (m *metrics) command(watch, hook, kind string, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.commands.WithLabelValues(watch, hook, kind, result).Inc()
}

func (m *metrics) reloaded(err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.reloads.WithLabelValues(result).Inc()
}

func (m *metrics) quarantined(watch, kind string) {
	m.quarantines.WithLabelValues(watch, kind).Inc()
}

func (m *metrics) driftRepaired(watch string, files int) {
	m.drift.WithLabelValues(watch).Add(float64(files))
}

// statusCollector exports every watch's status as gauges at scrape time.
type statusCollector struct{ a *Agent }

var (
	descReady     = prometheus.NewDesc("slipagent_watch_ready", "1 when the watch has caught up with its bucket and is not failing, detached, stale or held.", []string{"watch", "bucket"}, nil)
	descHealthy   = prometheus.NewDesc("slipagent_watch_healthy", "0 while the watch is failing, detached, stale or held.", []string{"watch", "bucket"}, nil)
	descState     = prometheus.NewDesc("slipagent_watch_state", "1 for the watch's current state (starting, syncing, ready, failing, detached, stale, held), 0 for the others.", []string{"watch", "bucket", "state"}, nil)
	descHeld      = prometheus.NewDesc("slipagent_watch_held", "1 while the deletion guard holds a batch of the watch for confirmation.", []string{"watch", "bucket"}, nil)
	descBehind    = prometheus.NewDesc("slipagent_watch_behind_seconds", "How long the watch has not been caught up with its bucket (0 while it is).", []string{"watch", "bucket"}, nil)
	descRevision  = prometheus.NewDesc("slipagent_watch_revision", "The bucket revision the watch's fold is checkpointed at.", []string{"watch", "bucket"}, nil)
	descFailures  = prometheus.NewDesc("slipagent_watch_consecutive_failures", "Consecutive failures of the watch.", []string{"watch", "bucket"}, nil)
	descPluginLog = prometheus.NewDesc("slipagent_plugin_log_lines_total", "Lines the watch's plugin logged at warn (stderr included) and error level: an error is most often something the plugin left out of its outputs while the batch succeeded.", []string{"watch", "bucket", "level"}, nil)
	descApplied   = prometheus.NewDesc("slipagent_watch_last_applied_timestamp_seconds", "When the watch last applied a batch.", []string{"watch", "bucket"}, nil)
	descConnected = prometheus.NewDesc("slipagent_nats_connected", "1 while the agent is connected to a NATS server; 0 before its first connection and while it reconnects (its watches stay ready until stale_after).", nil, nil)
)

func (statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descReady, descHealthy, descState, descHeld, descBehind, descRevision, descFailures, descApplied, descPluginLog, descConnected} {
		ch <- d
	}
}

func (c statusCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	connected := 0.0
	if c.a.natsConnected() {
		connected = 1
	}
	ch <- prometheus.MustNewConstMetric(descConnected, prometheus.GaugeValue, connected)
	for _, s := range c.a.Status() {
		ready, healthy, held, behind := 0.0, 0.0, 0.0, 0.0
		if s.Ready {
			ready = 1
		}
		if s.Healthy() {
			healthy = 1
		}
		if s.Held != nil {
			held = 1
		}
		if !s.BehindSince.IsZero() {
			behind = now.Sub(s.BehindSince).Seconds()
		}
		for _, st := range watchStates {
			v := 0.0
			if st == s.State {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, v, s.Name, s.Bucket, st)
		}
		ch <- prometheus.MustNewConstMetric(descHeld, prometheus.GaugeValue, held, s.Name, s.Bucket)
		ch <- prometheus.MustNewConstMetric(descBehind, prometheus.GaugeValue, behind, s.Name, s.Bucket)
		applied := 0.0
		if !s.LastApplied.IsZero() {
			applied = float64(s.LastApplied.UnixNano()) / 1e9
		}
		ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, ready, s.Name, s.Bucket)
		ch <- prometheus.MustNewConstMetric(descHealthy, prometheus.GaugeValue, healthy, s.Name, s.Bucket)
		ch <- prometheus.MustNewConstMetric(descRevision, prometheus.GaugeValue, float64(s.Revision), s.Name, s.Bucket)
		ch <- prometheus.MustNewConstMetric(descFailures, prometheus.GaugeValue, float64(s.Failures), s.Name, s.Bucket)
		ch <- prometheus.MustNewConstMetric(descApplied, prometheus.GaugeValue, applied, s.Name, s.Bucket)
		var logged PluginLogStatus
		if s.PluginLog != nil {
			logged = *s.PluginLog
		}
		ch <- prometheus.MustNewConstMetric(descPluginLog, prometheus.CounterValue, float64(logged.Warnings), s.Name, s.Bucket, "warn")
		ch <- prometheus.MustNewConstMetric(descPluginLog, prometheus.CounterValue, float64(logged.Errors), s.Name, s.Bucket, "error")
	}
}
