//go:build unix

package agent

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReloadRefusesWhatOthersCanChange: a reload runs the trust checks on
// the new configuration. A configuration file, or a new conf.d file, that
// others can write is refused like any bad reload: the running
// configuration stays, /status and the metrics show the refusal.
func TestReloadRefusesWhatOthersCanChange(t *testing.T) {
	f := newFixture(t)
	f.put("a", "files.x", "1")
	f.put("b", "files.x", "1")
	confd := filepath.Join(f.dir, "conf.d")
	if err := os.Mkdir(confd, 0o700); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(confd, "agent.hcl")
	src := strings.NewReplacer("$DIR", f.dir, "$NATS", f.srv.URL()).Replace(twoWatches)
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	load := func() *Config {
		cfg, err := Load(confd)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	a, counts := f.countingAgent(load())
	waitFor(t, "both watches to sync", func() bool { return a.Ready() && len(a.Status()) == 2 })

	extra := filepath.Join(confd, "extra.hcl")
	for i, tc := range []struct {
		name, path string
		breakIt    func()
	}{
		{"the config file writable by everyone", file, func() { chmod(t, file, 0o666) }},
		{"a new conf.d file writable by everyone", extra, func() {
			chmod(t, file, 0o600)
			if err := os.WriteFile(extra, []byte("# more\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			chmod(t, extra, 0o666)
		}},
	} {
		tc.breakIt()
		err := a.Reload(context.Background(), load())
		cause := "agent: config file " + tc.path + " is writable by every user"
		if want := "reload refused, the running configuration stays: " + cause; err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: Reload = %v, want %q", tc.name, err, want)
		}
		if rs := a.ReloadStatus(); rs.Failures != uint64(i+1) || !strings.HasPrefix(rs.LastError, cause) {
			t.Errorf("%s: reload status %+v, want the refusal", tc.name, rs)
		}
	}
	if counts.get("a") != 1 || counts.get("b") != 1 {
		t.Errorf("plugin instances a %d, b %d: a refused reload restarted watches", counts.get("a"), counts.get("b"))
	}
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if !strings.Contains(rec.Body.String(), `slipagent_reloads_total{result="error"} 2`) {
		t.Error("slipagent_reloads_total does not count the refused reloads")
	}
	f.put("a", "files.x", "2")
	waitFor(t, "the running configuration to apply a change", func() bool { return readFile(filepath.Join(f.dir, "out-a", "x")) == "2" })
}
