package agent

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// A reload that rebuilds the agent shows in the new agent's /status and
// metrics, which go on counting from the old one's; a rebuild that cannot
// start (its http listen address is taken) shows, in the agent that runs
// again with the previous configuration, as a refused reload.
func TestServeRebuildShowsInStatusAndMetrics(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "1")
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	withListen := func(addr string) *Config {
		return f.config(filesConfig + `http { listen = "` + addr + `" }`)
	}
	first, second := freeAddr(t), freeAddr(t)
	s := f.serve(withListen(first))
	waitFor(t, "the first agent to serve", func() bool { _, ok := reloadOf(first); return ok })

	s.reloadTo(withListen(second))
	waitFor(t, "the rebuilt agent to show the reload", func() bool {
		rs, _ := reloadOf(second)
		return rs != nil && rs.Reloads == 1 && slices.Equal(rs.Restarted, []string{"cfg"})
	})
	if m := metricsOf(second); !strings.Contains(m, `slipagent_reloads_total{result="ok"} 1`) {
		t.Errorf("metrics after a rebuild lack slipagent_reloads_total{result=\"ok\"} 1:\n%s", m)
	}

	s.reloadTo(withListen(taken.Addr().String()))
	var rs *ReloadStatus
	waitFor(t, "the agent back on the previous configuration to show the refused reload", func() bool {
		rs, _ = reloadOf(second)
		return rs != nil && rs.Failures == 1
	})
	if rs.Reloads != 1 || !strings.Contains(rs.LastError, "cannot start") || !strings.Contains(rs.LastError, taken.Addr().String()) {
		t.Errorf("reload status %+v, want 1 applied, 1 refused naming the address taken", rs)
	}
	m := metricsOf(second)
	for _, want := range []string{`slipagent_reloads_total{result="ok"} 1`, `slipagent_reloads_total{result="error"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics after a rebuild that could not start lack %s", want)
		}
	}
	s.stop()
}

// reloadOf is the reload section of the /status at addr (nil without
// one); false while nothing answers.
func reloadOf(addr string) (*ReloadStatus, bool) {
	var body struct {
		Reload *ReloadStatus `json:"reload"`
	}
	resp, err := http.Get("http://" + addr + "/status")
	if err != nil {
		return nil, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&body) != nil {
		return nil, false
	}
	return body.Reload, true
}

// metricsOf is the /metrics text at addr ("" when nothing answers).
func metricsOf(addr string) string {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
