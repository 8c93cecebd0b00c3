package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/slipstreamkv/slipstream/internal/benchproc"
)

// agent is one `slipagent run` process of the fleet, with its own data,
// cache and output directories, rendering the whole bucket into one file
// with the template example plugin.
type agent struct {
	id       int
	dir      string
	httpAddr string
	proc     *benchproc.Proc
}

// startAgent writes agent id's configuration under work, for the servers
// urls, with watchExtra added to its watch block, and starts it.
func startAgent(bin, plugin, work string, id int, urls []string, watchExtra string) (*agent, error) {
	a := &agent{id: id, dir: filepath.Join(work, fmt.Sprintf("agent-%03d", id))}
	if err := os.MkdirAll(a.dir, 0o755); err != nil {
		return nil, err
	}
	port, err := benchproc.FreePort()
	if err != nil {
		return nil, err
	}
	a.httpAddr = "127.0.0.1:" + strconv.Itoa(port)
	cfg := benchproc.TemplateAgent{
		DataDir: filepath.Join(a.dir, "data"), CacheDir: filepath.Join(a.dir, "cache"), Servers: urls,
		Plugin: plugin, Watch: "fleet", Bucket: bucket, Out: filepath.Join(a.dir, "out", "rendered"),
		HTTP: a.httpAddr, WatchSettings: watchExtra,
	}.HCL()
	conf := filepath.Join(a.dir, "slipagent.hcl")
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	a.proc, err = benchproc.Start(fmt.Sprintf("slipagent %d", id), filepath.Join(a.dir, "slipagent.log"), nil,
		bin, "run", "-config", conf)
	return a, err
}

// revision is the bucket revision the agent's watch has applied, from
// /status; ok is false while it does not answer yet.
func (a *agent) revision() (rev uint64, ok bool, err error) {
	if err := a.proc.Exited(); err != nil {
		return 0, false, err
	}
	resp, err := http.Get("http://" + a.httpAddr + "/status")
	if err != nil {
		return 0, false, nil
	}
	defer resp.Body.Close()
	var st struct {
		Watches []struct {
			Revision uint64 `json:"revision"`
		} `json:"watches"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return 0, false, fmt.Errorf("slipagent %d /status: %w", a.id, err)
	}
	if len(st.Watches) != 1 {
		return 0, false, fmt.Errorf("slipagent %d /status: %d watches, want 1", a.id, len(st.Watches))
	}
	return st.Watches[0].Revision, true, nil
}

// fleet is the agents of one phase.
type fleet []*agent

// startFleet starts n agents together on the servers urls, with
// watchExtra added to their watch blocks.
func startFleet(bin, plugin, work string, n int, urls []string, watchExtra string) (fleet, error) {
	var f fleet
	for i := range n {
		a, err := startAgent(bin, plugin, work, i+1, urls, watchExtra)
		if err != nil {
			f.stop()
			return nil, err
		}
		f = append(f, a)
	}
	return f, nil
}

// stop ends every agent with SIGTERM, together.
func (f fleet) stop() {
	var wg sync.WaitGroup
	for _, a := range f {
		if a.proc != nil {
			wg.Go(a.proc.Stop)
		}
	}
	wg.Wait()
}

// applied waits until every agent has applied revision rev of the bucket
// and returns when the last one had.
func (f fleet) applied(ctx context.Context, rev uint64, deadline time.Duration) (time.Time, error) {
	var last time.Time
	pending := map[*agent]bool{}
	for _, a := range f {
		pending[a] = true
	}
	err := benchproc.Poll(ctx, fmt.Sprintf("%d agents at revision %d", len(f), rev), deadline, 10*time.Millisecond, func() (bool, error) {
		for a := range pending {
			got, ok, err := a.revision()
			if err != nil {
				return false, fmt.Errorf("%w (log: %s)", err, a.proc.Log)
			}
			if ok && got >= rev {
				delete(pending, a)
				last = time.Now()
			}
		}
		return len(pending) == 0, nil
	})
	return last, err
}
