package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/slipstreamkv/slipstream/internal/benchproc"
)

// Deadlines of the waits for a whole fleet.
const (
	startDeadline = 10 * time.Minute
	faultDeadline = 5 * time.Minute
)

// run measures the phases in order. A phase that fails is noted in the
// results, which are returned even then; the error returned is one that
// stopped the run.
func run(ctx context.Context, cfg config) (res *results, err error) {
	res = &results{n: cfg.N, k: cfg.K, loadStart: benchproc.Loadavg()}
	defer func() { res.loadEnd = benchproc.Loadavg() }()
	work, cleanup, err := prepare(&cfg)
	if err != nil {
		return res, err
	}
	defer cleanup()
	b := &bench{cfg: cfg, res: res}
	if err := b.single(ctx, filepath.Join(work, "single")); err != nil {
		return res, err
	}
	return res, b.cluster(ctx, filepath.Join(work, "cluster"))
}

// prepare makes the run's work directory (cleanup removes it unless
// cfg.Keep) and checks the input binaries.
func prepare(cfg *config) (work string, cleanup func(), err error) {
	work, cleanup, err = benchproc.Workdir(cfg.Work, "fleetbench", cfg.Keep)
	if err != nil {
		return "", nil, err
	}
	if err := benchproc.Inputs(&cfg.SlipAgent, &cfg.Plugin, &cfg.NATSServer); err != nil {
		cleanup()
		return "", nil, err
	}
	return work, cleanup, nil
}

type bench struct {
	cfg config
	res *results
}

// add appends a phase to the results and returns it.
func (b *bench) add(name string) *phase {
	p := &phase{name: name, before: -1, after: -1}
	b.res.phases = append(b.res.phases, p)
	return p
}

// single measures the fleet's start on one server and that server's
// restart.
func (b *bench) single(ctx context.Context, work string) error {
	srvs, err := newServers(b.cfg.NATSServer, work, 1)
	if err != nil {
		return err
	}
	s := srvs[0]
	if err := s.start(); err != nil {
		return err
	}
	defer s.stop()
	if _, err := s.waitClients(ctx); err != nil {
		return err
	}
	w, err := dial(ctx, []string{s.url}, 1)
	if err != nil {
		return err
	}
	defer w.close()

	start := b.add("start together, one server")
	f, err := b.start(ctx, start, w, work, []string{s.url})
	defer f.stop()
	if err != nil {
		start.err = err
		return nil
	}
	start.rssKB, start.err = s.rssKB()

	restart := b.add("server restart (SIGTERM, same store)")
	restart.err = b.fault(ctx, restart, w, f, []*server{s}, func() (time.Time, error) {
		s.proc.Stop()
		if err := s.start(); err != nil {
			return time.Time{}, err
		}
		return s.waitClients(ctx)
	})
	return nil
}

// cluster measures the fleet's start on a 3-node cluster with an R3 bucket
// and the loss of the stream's leader (SIGKILL).
func (b *bench) cluster(ctx context.Context, work string) error {
	srvs, err := newServers(b.cfg.NATSServer, work, 3)
	if err != nil {
		return err
	}
	var urls []string
	for _, s := range srvs {
		defer s.stop()
		if err := s.start(); err != nil {
			return err
		}
		urls = append(urls, s.url)
	}
	for _, s := range srvs {
		if _, err := s.waitClients(ctx); err != nil {
			return err
		}
	}
	w, err := dial(ctx, urls, 3)
	if err != nil {
		return err
	}
	defer w.close()

	start := b.add("start together, 3-node cluster, R3")
	f, err := b.start(ctx, start, w, work, urls)
	defer f.stop()
	if err != nil {
		start.err = err
		return nil
	}
	start.rssKB, start.err = maxRSS(srvs)

	loss := b.add("stream leader loss (SIGKILL), R3")
	info, err := w.streamInfo(ctx)
	if err != nil {
		loss.err = err
		return nil
	}
	var victim *server
	for _, s := range srvs {
		if info.Cluster != nil && s.name == info.Cluster.Leader {
			victim = s
		}
	}
	if victim == nil {
		loss.err = fmt.Errorf("stream KV_%s: no leader among the servers (%+v)", bucket, info.Cluster)
		return nil
	}
	slog.Info("killing the stream leader", "server", victim.name)
	loss.err = b.fault(ctx, loss, w, f, srvs, func() (time.Time, error) {
		victim.proc.Kill()
		return time.Time{}, nil
	})
	return nil
}

// start fills the bucket with K keys, starts N agents together on urls and
// waits until every one has applied the bucket's last revision.
func (b *bench) start(ctx context.Context, p *phase, w *writer, work string, urls []string) (fleet, error) {
	slog.Info("filling the bucket", "keys", b.cfg.K, "servers", strings.Join(urls, ","))
	rev, err := w.fill(ctx, b.cfg.K)
	if err != nil {
		return nil, err
	}
	if p.before, err = w.consumers(ctx); err != nil {
		return nil, err
	}
	slog.Info("starting the fleet", "agents", b.cfg.N, "revision", rev)
	t0 := time.Now()
	f, err := startFleet(b.cfg.SlipAgent, b.cfg.Plugin, work, b.cfg.N, urls, "")
	if err != nil {
		return f, err
	}
	all, err := f.applied(ctx, rev, startDeadline)
	if err != nil {
		return f, err
	}
	p.complete = all.Sub(t0)
	p.after, err = w.settledConsumers(ctx, b.cfg.N)
	return f, err
}

// fault reads the consumers, runs inject (which returns when the servers
// are back, or a zero time if that is not measured), then puts a new value
// and waits for the fleet to apply it. The stall is measured from the
// servers being back or else from the put's acknowledgement.
func (b *bench) fault(ctx context.Context, p *phase, w *writer, f fleet, srvs []*server, inject func() (time.Time, error)) error {
	var err error
	if p.before, err = w.consumers(ctx); err != nil {
		return err
	}
	slog.Info("fault", "phase", p.name)
	t0 := time.Now()
	back, err := inject()
	if err != nil {
		return err
	}
	rev, acked, err := w.probe(ctx, p.name)
	if err != nil {
		return err
	}
	if back.IsZero() {
		back = acked
	}
	all, err := f.applied(ctx, rev, faultDeadline)
	if err != nil {
		return err
	}
	p.complete, p.stall = all.Sub(t0), all.Sub(back)
	if p.rssKB, err = maxRSS(srvs); err != nil {
		return err
	}
	p.after, err = w.settledConsumers(ctx, b.cfg.N)
	return err
}

// maxRSS is the largest VmRSS of the running servers.
func maxRSS(srvs []*server) (int64, error) {
	var kb int64
	for _, s := range srvs {
		if s.proc.Exited() != nil {
			continue
		}
		n, err := s.rssKB()
		if err != nil {
			return 0, err
		}
		kb = max(kb, n)
	}
	return kb, nil
}
