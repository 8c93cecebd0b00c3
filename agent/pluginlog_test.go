package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/fleet"
)

// TestAKeyThePluginSkipsShowsInStatusAndMetrics: the files example skips a
// key that is not a valid path, logging an error, and the batch succeeds:
// the watch stays ready, and /status and the metrics count the error line,
// with the last one, so the outputs' gap is visible.
func TestAKeyThePluginSkipsShowsInStatusAndMetrics(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "alpha")
	a, _ := f.start(f.config(filesConfig))
	waitFor(t, "ready", func() bool { return a.Ready() })
	if l := a.Status()[0].PluginLog; l != nil {
		t.Fatalf("plugin_log before any error: %+v", l)
	}

	f.put("cfg", "files.bad//path", "never written")
	f.put("cfg", "files.b.conf", "bravo")
	waitFor(t, "b.conf", func() bool {
		b, _ := os.ReadFile(filepath.Join(f.dir, "out", "b.conf"))
		return string(b) == "bravo"
	})
	s := a.Status()[0]
	if !s.Ready || s.PluginLog == nil || s.PluginLog.Errors != 1 || s.PluginLog.LastErrorAt.IsZero() ||
		!strings.Contains(s.PluginLog.LastError, `files: skipping key "files.bad//path"`) {
		t.Fatalf("status after a skipped key: ready %v, plugin_log %+v", s.Ready, s.PluginLog)
	}
	labels := map[string]string{"watch": "cfg", "bucket": "cfg", "level": "error"}
	if n := counter(a, "slipagent_plugin_log_lines_total", labels); n != 1 {
		t.Errorf("slipagent_plugin_log_lines_total{level=error} = %v, want 1", n)
	}
}

// TestTheFleetReportCarriesThePluginsError: the record of a host whose
// plugin logged an error applying its revision says so; a drift repair
// that logs it again, and a restart at that revision, keep it; the next
// revision applied without one clears it.
func TestTheFleetReportCarriesThePluginsError(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "alpha")
	cfg := strings.Replace(filesConfig, `plugin = "files"`, `plugin = "files"
  drift_check = "100ms"`, 1) + reportBlock
	_, stop := f.start(f.config(cfg))
	waitLong(t, "h1 to report", func() bool { return f.fleetRecord().State == fleet.StateReady })
	if r := f.fleetRecord(); r.PluginError != "" {
		t.Fatalf("plugin_error before any: %q", r.PluginError)
	}
	const complaint = `files: skipping key "files.bad//path"`
	bad := f.put("cfg", "files.bad//path", "never written")
	waitFor(t, "the record of the revision whose apply logged an error", func() bool {
		r := f.fleetRecord()
		return r.Revision == bad && strings.Contains(r.PluginError, complaint)
	})

	// A drift repair renders every key again, and logs the same error.
	a := f.fleetRecord()
	if err := os.WriteFile(filepath.Join(f.dir, "out", "a.conf"), []byte("edited"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the repair", func() bool {
		b, _ := os.ReadFile(filepath.Join(f.dir, "out", "a.conf"))
		return string(b) == "alpha"
	})
	waitFor(t, "a record written after the repair", func() bool { return f.fleetRecord().Time.After(a.Time.Add(time.Second)) })
	if r := f.fleetRecord(); r.Revision != bad || !strings.Contains(r.PluginError, complaint) {
		t.Errorf("after a drift repair: revision %d, plugin_error %q; want %d and the error kept", r.Revision, r.PluginError, bad)
	}

	// A restart at the same revision applies nothing, and keeps it.
	stop()
	f.start(f.config(cfg))
	waitFor(t, "the new run's record", func() bool { return f.fleetRecord().Instance != a.Instance })
	if r := f.fleetRecord(); r.Revision != bad || !strings.Contains(r.PluginError, complaint) {
		t.Errorf("after a restart: revision %d, plugin_error %q; want %d and the error kept", r.Revision, r.PluginError, bad)
	}

	good := f.put("cfg", "files.b.conf", "bravo")
	waitFor(t, "the next revision's record", func() bool {
		r := f.fleetRecord()
		return r.Revision == good && r.PluginError == ""
	})
}
