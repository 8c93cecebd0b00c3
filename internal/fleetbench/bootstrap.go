package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstreamkv/slipstream/internal/benchproc"
)

// artifactStore is the object store, and KV bucket, of the bootstrap run.
const artifactStore = "fleet-artifacts"

// bootstrapBlock is a watch's bootstrap block exporting every interval
// ("0": never).
func bootstrapBlock(interval string) string {
	return fmt.Sprintf("  bootstrap {\n    object_store    = %q\n    export_interval = %q\n  }\n", artifactStore, interval)
}

// join is what one way of joining the bucket measured.
type join struct {
	name     string
	complete time.Duration // fleet start → every agent applied the last revision
	wire     int64         // bytes the server sent to the agents (TCP, through a meter)
	payloads int64         // of which message payloads (/connz out_bytes)
	fromArt  int           // agents whose log says they started from an artifact
	err      error
}

// joinResults is the bootstrap run: N new agents joining a K-key bucket by
// a plain sync, then from an artifact one seeding agent exported.
type joinResults struct {
	n, k                int
	loadStart           string
	loadEnd             string
	seed                time.Duration // seeding agent start → artifact published
	artifactBytes       int64
	plain, fromArtifact *join
}

// runBootstrap measures the two ways of joining on one server.
func runBootstrap(ctx context.Context, cfg config) (res *joinResults, err error) {
	res = &joinResults{n: cfg.N, k: cfg.K, loadStart: benchproc.Loadavg()}
	defer func() { res.loadEnd = benchproc.Loadavg() }()
	work, cleanup, err := prepare(&cfg)
	if err != nil {
		return res, err
	}
	defer cleanup()
	srvs, err := newServers(cfg.NATSServer, work, 1)
	if err != nil {
		return res, err
	}
	s := srvs[0]
	if err := s.start(); err != nil {
		return res, err
	}
	defer s.stop()
	if _, err := s.waitClients(ctx); err != nil {
		return res, err
	}
	w, err := dial(ctx, []string{s.url}, 1)
	if err != nil {
		return res, err
	}
	defer w.close()
	slog.Info("filling the bucket", "keys", cfg.K)
	rev, err := w.fill(ctx, cfg.K)
	if err != nil {
		return res, err
	}
	urls := []string{s.url}

	res.plain = joinFleet(ctx, cfg, s, filepath.Join(work, "plain"), rev, "join by a plain sync", "")

	slog.Info("seeding an artifact")
	t0 := time.Now()
	seeder, err := startAgent(cfg.SlipAgent, cfg.Plugin, filepath.Join(work, "seed"), 0, urls, bootstrapBlock("1s"))
	if err != nil {
		return res, err
	}
	defer fleet{seeder}.stop()
	if res.artifactBytes, err = w.awaitArtifact(ctx); err != nil {
		return res, fmt.Errorf("%w (seeder log: %s)", err, seeder.proc.Log)
	}
	res.seed = time.Since(t0)
	fleet{seeder}.stop()

	res.fromArtifact = joinFleet(ctx, cfg, s, filepath.Join(work, "artifact"), rev, "join from an artifact", bootstrapBlock("0"))
	return res, nil
}

// joinFleet starts N agents with watchExtra, connected through a meter,
// and measures their join.
func joinFleet(ctx context.Context, cfg config, s *server, work string, rev uint64, name, watchExtra string) *join {
	j := &join{name: name}
	m, err := newMeter(s.url)
	if err != nil {
		j.err = err
		return j
	}
	defer m.close()
	slog.Info("starting the fleet", "phase", name, "agents", cfg.N)
	t0 := time.Now()
	f, err := startFleet(cfg.SlipAgent, cfg.Plugin, work, cfg.N, []string{m.url()}, watchExtra)
	defer f.stop()
	if err != nil {
		j.err = err
		return j
	}
	all, err := f.applied(ctx, rev, startDeadline)
	if err != nil {
		j.err = err
		return j
	}
	j.complete = all.Sub(t0)
	if j.payloads, err = s.clientOutBytes(ctx); err != nil {
		j.err = err
		return j
	}
	// Read after /connz: what the server had sent by then (the agents
	// keep receiving heartbeats) has passed the meter, or is about to.
	j.wire = m.caughtUp(j.payloads, time.Second)
	for _, a := range f {
		if b, err := os.ReadFile(a.proc.Log); err == nil && strings.Contains(string(b), "started from an artifact") {
			j.fromArt++
		}
	}
	return j
}

// clientOutBytes sums what the server sent to each open connection but the
// harness's writer (/connz out_bytes): the agents of the running fleet,
// whose connections are new.
func (s *server) clientOutBytes(ctx context.Context) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.monitor+"/connz?limit=100000", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("nats-server %s /connz: %w", s.name, err)
	}
	defer resp.Body.Close()
	var c struct {
		Conns []struct {
			Name     string `json:"name"`
			OutBytes int64  `json:"out_bytes"`
		} `json:"connections"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		return 0, fmt.Errorf("nats-server %s /connz: %w", s.name, err)
	}
	var sum int64
	for _, conn := range c.Conns {
		if conn.Name != writerName {
			sum += conn.OutBytes
		}
	}
	return sum, nil
}

// awaitArtifact waits until an artifact's pointer is published and
// returns the size of its payload.
func (w *writer) awaitArtifact(ctx context.Context) (int64, error) {
	var size int64
	err := benchproc.Poll(ctx, "an artifact in "+artifactStore, startDeadline, 100*time.Millisecond, func() (bool, error) {
		kv, err := w.js.KeyValue(ctx, artifactStore)
		if err != nil {
			return false, nil
		}
		keys, err := kv.Keys(ctx)
		if err != nil {
			return false, nil
		}
		for _, k := range keys {
			if !strings.HasSuffix(k, ".manifest.json") {
				continue
			}
			obj, err := w.js.ObjectStore(ctx, artifactStore)
			if err != nil {
				return false, err
			}
			infos, err := obj.List(ctx)
			if err != nil && !errors.Is(err, jetstream.ErrNoObjectsFound) {
				return false, err
			}
			for _, in := range infos {
				size = max(size, int64(in.Size))
			}
			return true, nil
		}
		return false, nil
	})
	return size, err
}

func (r *joinResults) print(w io.Writer) {
	fmt.Fprintf(w, "bootstrap: N=%d new agents joining a K=%d-key bucket on one server; load average at start: %s, at end: %s\n\n",
		r.n, r.k, r.loadStart, r.loadEnd)
	cells := [][]string{{"way of joining", "time to complete", "bytes sent to the agents", "per agent", "of which payloads", "agents from the artifact"}}
	for _, j := range []*join{r.plain, r.fromArtifact} {
		if j == nil {
			continue
		}
		if j.err != nil {
			cells = append(cells, []string{j.name, "FAILED", "—", "—", "—", "—"})
			continue
		}
		cells = append(cells, []string{j.name, seconds(j.complete), mebibytes(j.wire), mebibytes(j.wire / int64(r.n)), mebibytes(j.payloads),
			fmt.Sprintf("%d/%d", j.fromArt, r.n)})
	}
	benchproc.WriteTable(w, cells)
	fmt.Fprintf(w, `
time to complete: from the fleet's start to every agent having applied the bucket's last revision.
bytes sent to the agents: what the server sent on the agents' TCP connections (through a
counting proxy), protocol lines included. of which payloads: the out_bytes of their
connections in /connz, which (like /varz) counts message payloads and headers only.
The artifact (payload %s) was exported by one seeding agent %s after it started, before the fleet joined.
`, mebibytes(r.artifactBytes), seconds(r.seed))
	for _, j := range []*join{r.plain, r.fromArtifact} {
		if j != nil && j.err != nil {
			fmt.Fprintf(w, "FAILED: %s: %v\n", j.name, j.err)
		}
	}
}

// failed reports whether a way of joining failed.
func (r *joinResults) failed() bool {
	return r.plain == nil || r.plain.err != nil || r.fromArtifact == nil || r.fromArtifact.err != nil
}

// mebibytes formats a byte count, in kB below a megabyte.
func mebibytes(b int64) string {
	if b < 1<<20 {
		return fmt.Sprintf("%.1f kB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%.1f MB", float64(b)/(1<<20))
}
