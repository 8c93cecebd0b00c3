package agent

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
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

// A rebuild that cannot start goes back to the configuration that ran just
// before it, with what the reloads applied in place since the agent started
// (a watch restarted into another directory, a watch added), not to the
// configuration the agent started with.
func TestServeRebuildThatCannotStartGoesBackToTheLastGoodConfiguration(t *testing.T) {
	f := newFixture(t)
	for _, bucket := range []string{"a", "b", "c"} {
		f.put(bucket, "files.x", "1")
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := freeAddr(t)
	withListen := func(src, addr string) *Config {
		return f.config(src + `http { listen = "` + addr + `" }`)
	}
	s := f.serve(withListen(twoWatches, addr))
	waitFor(t, "the first render", func() bool {
		return readFile(filepath.Join(f.dir, "out-a", "x")) == "1" && readFile(filepath.Join(f.dir, "out-b", "x")) == "1"
	})

	moved := strings.Replace(twoWatches, "$DIR/out-b", "$DIR/out-b2", 1)
	s.reloadTo(withListen(moved, addr))
	waitFor(t, "b to restart into out-b2", func() bool {
		rs, _ := reloadOf(addr)
		return rs != nil && rs.Reloads == 1 && slices.Equal(rs.Restarted, []string{"b"}) &&
			readFile(filepath.Join(f.dir, "out-b2", "x")) == "1"
	})
	added := moved + `
watch "c" {
  bucket = "c"
  plugin = "files"
  output "files" { dir = "$DIR/out-c" }
  hook "changed" { command = ["true"] }
}
`
	s.reloadTo(withListen(added, addr))
	waitFor(t, "c to be added", func() bool {
		rs, _ := reloadOf(addr)
		return rs != nil && rs.Reloads == 2 && slices.Equal(rs.Added, []string{"c"}) &&
			readFile(filepath.Join(f.dir, "out-c", "x")) == "1"
	})

	s.reloadTo(withListen(added, taken.Addr().String()))
	waitFor(t, "the agent back on the last good configuration to show the refused reload", func() bool {
		rs, _ := reloadOf(addr)
		return rs != nil && rs.Failures == 1
	})
	if got := watchesOf(addr); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("watches after the rebuild that could not start: %q, want a, b and c", got)
	}
	f.put("b", "files.y", "2")
	f.put("c", "files.y", "2")
	waitFor(t, "b and c to apply into the directories of the last good configuration", func() bool {
		return readFile(filepath.Join(f.dir, "out-b2", "y")) == "2" && readFile(filepath.Join(f.dir, "out-c", "y")) == "2"
	})
	if _, err := os.Stat(filepath.Join(f.dir, "out-b", "y")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("out-b/y exists (%v): the startup configuration's watch b runs again", err)
	}
	s.stop()
}

// watchesOf names the watches in the /status at addr (nil when nothing
// answers).
func watchesOf(addr string) []string {
	var body struct {
		Watches []WatchStatus `json:"watches"`
	}
	resp, err := http.Get("http://" + addr + "/status")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if json.NewDecoder(resp.Body).Decode(&body) != nil {
		return nil
	}
	var names []string
	for _, w := range body.Watches {
		names = append(names, w.Name)
	}
	return names
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
