package agent

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// series gathers m's registry as name{label="value",...} = value lines of
// the counters and histograms metrics.go defines (a histogram by its
// count).
func series(t *testing.T, m *metrics) map[string]float64 {
	t.Helper()
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "slipagent_") {
			continue
		}
		for _, s := range f.GetMetric() {
			var labels []string
			for _, l := range s.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			v := s.GetCounter().GetValue()
			if h := s.GetHistogram(); h != nil {
				v = float64(h.GetSampleCount())
			}
			out[f.GetName()+"{"+strings.Join(labels, ",")+"}"] = v
		}
	}
	return out
}

// A watch's counters exist at 0 from its start, so that the first
// quarantine, drift repair, failed command or plugin error is an increase
// the alerts see; a reload that removes the watch drops them.
func TestWatchSeriesExistAtZeroFromItsStart(t *testing.T) {
	m := newMetrics(&Agent{})
	m.watchAdded(&WatchConf{Name: "w", Hooks: []*HookConf{{Name: "reload", Command: []string{"true"}, Check: []string{"true"}}}})
	got := series(t, m)
	for _, want := range []string{
		`slipagent_quarantined_total{kind="state",watch="w"}`,
		`slipagent_quarantined_total{kind="placement",watch="w"}`,
		`slipagent_drift_repaired_total{watch="w"}`,
		`slipagent_commands_total{hook="reload",kind="hook",result="error",watch="w"}`,
		`slipagent_commands_total{hook="reload",kind="check",result="error",watch="w"}`,
		`slipagent_plugin_calls_total{kind="apply",result="error",watch="w"}`,
		`slipagent_plugin_calls_total{kind="render",result="trap",watch="w"}`,
		`slipagent_batches_applied_total{watch="w"}`,
		`slipagent_reloads_total{result="error"}`,
	} {
		if v, ok := got[want]; !ok || v != 0 {
			t.Errorf("%s: present %v, value %v; want present at 0", want, ok, v)
		}
	}
	// A reload that restarts the watch without its check drops the
	// check's series.
	m.watchAdded(&WatchConf{Name: "w", Hooks: []*HookConf{{Name: "reload", Command: []string{"true"}}}})
	if _, ok := series(t, m)[`slipagent_commands_total{hook="reload",kind="check",result="error",watch="w"}`]; ok {
		t.Error("the check a restarted watch no longer has is still exported")
	}
	m.watchRemoved("w")
	for s := range series(t, m) {
		if strings.Contains(s, `watch="w"`) {
			t.Errorf("after the watch's removal: %s is still exported", s)
		}
	}
}

// The plugin call histogram has bounds at the durations its alert and the
// plugin's default timeout name, so that a quantile read against them is
// not interpolated across a bucket that spans them.
func TestPluginCallBucketsHaveTheAlertsBounds(t *testing.T) {
	for _, bound := range []float64{1, 2, 5} {
		if !slices.Contains(pluginCallBuckets, bound) {
			t.Errorf("pluginCallBuckets %v lack %vs", pluginCallBuckets, bound)
		}
	}
}
