package pebblefold

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstreamkv/slipstream/internal/benchproc"
	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/snapshot/internal/benchdata"
)

// BenchmarkAgentRestart measures `slipagent run` restarting over a Pebble
// fold (fold = "disk") of each size in SLIPSTREAM_BENCH_RESTART ("1M,10M"),
// with no change in the bucket since it stopped, on a real nats-server:
// the time from start to /readyz answering 200 ("ready-ms"), the RSS two
// seconds later and at its peak, the batches applied and whether the
// output file was rewritten. `make bench-fold FOLD_RESTART=1M,10M` runs it
// with the binaries it builds (SLIPSTREAM_BENCH_SLIPAGENT, _PLUGIN,
// _NATS_SERVER).
//
// The fold is built without the agent rendering millions of keys: the
// agent syncs a bucket of 10 keys with the template plugin and stops; the
// benchmark then puts the size's keys into the bucket (benchdata.Stream,
// one asynchronous publisher) and applies the same keys, values and
// revisions to the agent's fold, at the bucket's last revision, and
// records the bucket's mark in the watch's state, so that fold, cursor,
// mark and bucket agree as if the agent had applied them. The
// baseline is the same restart before the keys are added. A restart that
// walks the fold, re-reads the bucket or re-renders shows as a READY time,
// RSS or rewrite growing with the size.
func BenchmarkAgentRestart(b *testing.B) {
	sizes := os.Getenv("SLIPSTREAM_BENCH_RESTART")
	if sizes == "" {
		b.Skip("SLIPSTREAM_BENCH_RESTART is not set (make bench-fold FOLD_RESTART=1M,10M sets it)")
	}
	bins := map[string]string{}
	for _, name := range []string{"SLIPAGENT", "PLUGIN", "NATS_SERVER"} {
		p := os.Getenv("SLIPSTREAM_BENCH_" + name)
		if _, err := os.Stat(p); p == "" || err != nil {
			b.Fatalf("SLIPSTREAM_BENCH_%s=%q: the binary is needed (make bench-fold builds it)", name, p)
		}
		bins[name] = p
	}
	ctx := context.Background()
	work := b.TempDir()
	srv, url, err := benchproc.StartNATS(ctx, bins["NATS_SERVER"], work)
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Stop()
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range strings.Split(sizes, ",") {
		n, err := parseKeys(size)
		if err != nil {
			b.Fatal(err)
		}
		if err := seedBucket(ctx, js); err != nil {
			b.Fatal(err)
		}
		a := &restartAgent{bin: bins["SLIPAGENT"], plugin: bins["PLUGIN"], url: url, work: filepath.Join(work, size)}
		if err := a.sync(ctx); err != nil {
			b.Fatal(err)
		}
		b.Run(size+"/restart/baseline", func(b *testing.B) { a.measure(ctx, b) })
		base, err := lastRevision(ctx, js)
		if err != nil {
			b.Fatal(err)
		}
		s := benchdata.NewStream(n)
		if err := publish(ctx, js, s); err != nil {
			b.Fatal(err)
		}
		if err := a.grow(s, base); err != nil {
			b.Fatal(err)
		}
		if err := a.recordMark(ctx, js); err != nil {
			b.Fatal(err)
		}
		b.Run(size+"/restart/ours", func(b *testing.B) { a.measure(ctx, b) })
		os.RemoveAll(a.work)
	}
}

// restartAgent is one slipagent data directory and its configuration.
type restartAgent struct {
	bin, plugin, url, work string
	http                   string
}

func (a *restartAgent) out() string { return filepath.Join(a.work, "out", "rendered") }
func (a *restartAgent) fold() string {
	return filepath.Join(a.work, "data", "watches", "bench", "fold.pebble")
}

// start starts the agent on a new http port.
func (a *restartAgent) start() (*benchproc.Proc, error) {
	port, err := benchproc.FreePort()
	if err != nil {
		return nil, err
	}
	a.http = "127.0.0.1:" + strconv.Itoa(port)
	cfg := benchproc.TemplateAgent{
		DataDir: filepath.Join(a.work, "data"), Servers: []string{a.url}, Plugin: a.plugin,
		Watch: "bench", Bucket: "app", Out: a.out(), HTTP: a.http, WatchSettings: "  fold   = \"disk\"\n",
	}.HCL()
	if err := os.MkdirAll(filepath.Dir(a.out()), 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(a.work, "slipagent.hcl")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	return benchproc.Start("slipagent", filepath.Join(a.work, "slipagent.log"), nil, a.bin, "run", "-config", path)
}

// sync runs the agent until it has rendered the bucket's 10 keys, then
// stops it.
func (a *restartAgent) sync(ctx context.Context) error {
	p, err := a.start()
	if err != nil {
		return err
	}
	defer p.Stop()
	return benchproc.Poll(ctx, "slipagent rendering the bucket into "+a.out(), 2*time.Minute, 20*time.Millisecond, func() (bool, error) {
		if err := p.Exited(); err != nil {
			return false, err
		}
		b, _ := os.ReadFile(a.out())
		return strings.Count(string(b), "\n") == 10, nil
	})
}

// grow applies s's keys to the stopped agent's fold at the revisions
// publish gave them, after base.
func (a *restartAgent) grow(s *benchdata.Stream, base uint64) error {
	f, err := Open(a.fold(), Options{})
	if err != nil {
		return err
	}
	err = s.Batches(func(batch []kvcore.Update, c kvcore.Cursor) error {
		for i := range batch {
			rev, _ := batch[i].Version.Revision()
			batch[i].Version = kvcore.RevisionVersion(base + rev)
		}
		rev, _ := c.Revision()
		return f.Apply(context.Background(), batch, kvcore.RevisionCursor(base+rev))
	})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// recordMark writes into the stopped agent's watch state the bucket's
// mark as it is now, as the agent records it after a sync that left its
// fold matching the bucket (natskv's BucketMark: incarnation, first and
// last sequence, messages): without it the restart would list the
// bucket's keys to reconcile a fold grown behind the agent's back.
func (a *restartAgent) recordMark(ctx context.Context, js jetstream.JetStream) error {
	path := filepath.Join(a.work, "data", "watches", "bench", "state.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var st map[string]any
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	stream, err := js.Stream(ctx, "KV_app")
	if err != nil {
		return err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return err
	}
	st["mark"] = fmt.Sprintf("%s/%d-%d/%d", st["bucket_id"], info.State.FirstSeq, info.State.LastSeq, info.State.Msgs)
	if raw, err = json.Marshal(st); err != nil {
		return err
	}
	return os.WriteFile(path, raw, 0o600)
}

// seedBucket creates bucket "app" afresh with 10 keys.
func seedBucket(ctx context.Context, js jetstream.JetStream) error {
	if err := js.DeleteKeyValue(ctx, "app"); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
		return err
	}
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "app", History: 1})
	if err != nil {
		return err
	}
	for i := range 10 {
		if _, err := kv.Put(ctx, fmt.Sprintf("seed.%d", i), []byte("v")); err != nil {
			return err
		}
	}
	return nil
}

// lastRevision is the last revision of bucket "app".
func lastRevision(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	st, err := js.Stream(ctx, "KV_app")
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.LastSeq, nil
}

// publish puts s's keys into bucket "app" in delivery order, with one
// asynchronous publisher, and waits for every acknowledgement.
func publish(ctx context.Context, js jetstream.JetStream, s *benchdata.Stream) error {
	for i := range s.N() {
		if _, err := js.PublishAsync("$KV.app."+s.Key(s.Perm(i)), s.Value(i), jetstream.WithStallWait(time.Minute)); err != nil {
			return fmt.Errorf("publish key %d: %w", i, err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// measure restarts the agent and reports its READY time, RSS, batches
// applied and whether it rewrote the output.
func (a *restartAgent) measure(ctx context.Context, b *testing.B) {
	before, err := os.Stat(a.out())
	if err != nil {
		b.Fatal(err)
	}
	p, err := a.start()
	if err != nil {
		b.Fatal(err)
	}
	defer p.Stop()
	var ready time.Duration
	err = benchproc.Poll(ctx, "slipagent /readyz", 20*time.Minute, 2*time.Millisecond, func() (bool, error) {
		if err := p.Exited(); err != nil {
			return false, err
		}
		resp, err := http.Get("http://" + a.http + "/readyz")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		ready = time.Since(p.Start)
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		log, _ := os.ReadFile(p.Log)
		b.Fatalf("%v; the end of its log:\n%s", err, log[max(0, len(log)-4096):])
	}
	time.Sleep(2 * time.Second)
	rss, err := p.MemKB("VmRSS")
	if err != nil {
		b.Fatal(err)
	}
	hwm, err := p.MemKB("VmHWM")
	if err != nil {
		b.Fatal(err)
	}
	batches, err := a.batches()
	if err != nil {
		b.Fatal(err)
	}
	after, err := os.Stat(a.out())
	if err != nil {
		b.Fatal(err)
	}
	rewritten := 0.0
	if !after.ModTime().Equal(before.ModTime()) || after.Size() != before.Size() {
		rewritten = 1
	}
	b.ReportMetric(float64(ready.Microseconds())/1000, "ready-ms")
	b.ReportMetric(float64(rss)/1024, "RSS-MB")
	b.ReportMetric(float64(hwm)/1024, "peak-RSS-MB")
	b.ReportMetric(float64(batches), "batches")
	b.ReportMetric(rewritten, "output-rewritten")
}

// batches is the number of batches the agent applied since it started.
func (a *restartAgent) batches() (uint64, error) {
	resp, err := http.Get("http://" + a.http + "/status")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var st struct {
		Watches []struct {
			Batches uint64 `json:"batches"`
		} `json:"watches"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return 0, fmt.Errorf("slipagent /status: %w", err)
	}
	var n uint64
	for _, w := range st.Watches {
		n += w.Batches
	}
	return n, nil
}
