package kvcore_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/kvcore/natskv"
)

// failoverAgent is one WatchApplied loop on its own connection with the
// production defaults of natskv, recording when each change was applied
// ("key=value" of an incremental batch) and how many full batches it saw.
type failoverAgent struct {
	name  string
	stop  func() error
	fold  *memFold
	mu    sync.Mutex
	seen  map[string]time.Time // "key=value" → when apply returned it
	fulls int
}

func startFailoverAgent(t *testing.T, name, url string) *failoverAgent {
	t.Helper()
	conn := natskv.New(natskv.Options{Servers: []string{url}, Name: name})
	if err := conn.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	s, err := conn.Open(t.Context(), "r3")
	if err != nil {
		t.Fatal(err)
	}
	a := &failoverAgent{name: name, fold: newMemFold(), seen: map[string]time.Time{}}
	apply := func(_ context.Context, b kvcore.Batch) error {
		a.mu.Lock()
		defer a.mu.Unlock()
		if b.Full {
			a.fulls++
		}
		for _, u := range b.Updates {
			a.seen[u.Key+"="+string(u.Value)] = time.Now()
		}
		return nil
	}
	a.stop = loop(t, s, a.fold, kvcore.AppliedConfig{Window: time.Millisecond}, apply)
	waitFor(t, name+": the initial sync", func() bool { return a.fold.Cursor() != kvcore.Cursor{} })
	return a
}

func (a *failoverAgent) appliedAt(kv string) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	at, ok := a.seen[kv]
	return at, ok
}

// failoverCluster is a 3-node cluster the failover test can take a node of.
type failoverCluster struct {
	urls []string
	url  func(name string) string // the client URL of node name
	lose func(name string)        // takes node name down
}

// TestWatchAppliedFailsOverOnR3 stops (gracefully) the leader of an R3
// bucket's stream; see testFailover.
func TestWatchAppliedFailsOverOnR3(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test skipped in -short mode")
	}
	c := natstest.RunCluster(t, 3)
	node := func(name string) *natstest.Server {
		for _, s := range c.Servers {
			if s.Name() == name {
				return s
			}
		}
		t.Fatalf("no node %s", name)
		return nil
	}
	testFailover(t, failoverCluster{
		urls: c.URLs(),
		url:  func(name string) string { return node(name).URL() },
		lose: func(name string) { node(name).Shutdown() },
	})
}

// TestWatchAppliedFailsOverOnR3AfterSIGKILL kills the leader of an R3
// bucket's stream, a nats-server process, with SIGKILL: no leadership
// handover, the election waits for the survivors to miss the leader.
func TestWatchAppliedFailsOverOnR3AfterSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test skipped in -short mode")
	}
	c := natstest.RunProcCluster(t, natstest.ServerBinary(t), 3)
	testFailover(t, failoverCluster{
		urls: c.URLs(),
		url:  func(name string) string { return c.Proc(name).URL() },
		lose: func(name string) { c.Proc(name).Kill() },
	})
}

// testFailover takes the leader of an R3 bucket's stream down under two
// loops, one connected to the victim and one to another node whose
// consumer the victim hosted, and checks that both apply the writer's next
// change without a resync and without losing the changes made before. The
// time from the writer's first acknowledged put to the change being
// applied is logged (-v), not asserted; the budget is 2 s.
func testFailover(t *testing.T, c failoverCluster) {
	writer := natskv.New(natskv.Options{Servers: c.urls, Timeout: time.Second, ReconnectWait: 50 * time.Millisecond})
	if err := writer.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { writer.Close() })
	var ws kvcore.Store
	var err error
	// A fresh cluster places a replicated stream once its meta leader has
	// seen every node.
	for deadline := time.Now().Add(30 * time.Second); ; {
		if ws, err = writer.Store(t.Context(), kvcore.StoreConfig{Bucket: "r3", Replicas: 3, History: 5}); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A put is bounded by d: 1 s after the leader loss, to retry across
	// the election; longer for the setup, on a loaded machine.
	put := func(key, value string, d time.Duration) (uint64, error) {
		ctx, cancel := context.WithTimeout(t.Context(), d)
		defer cancel()
		v, err := ws.Put(ctx, key, []byte(value))
		if err != nil {
			return 0, err
		}
		rev, _ := v.Revision()
		return rev, nil
	}
	for i := range 20 {
		if _, err := put(fmt.Sprintf("k.%02d", i), "before", 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	wjs, err := jetstream.New(writer.NATS())
	if err != nil {
		t.Fatal(err)
	}
	st, err := wjs.Stream(t.Context(), "KV_r3")
	if err != nil {
		t.Fatal(err)
	}
	leader := st.CachedInfo().Cluster.Leader
	var follower string
	for _, r := range st.CachedInfo().Cluster.Replicas {
		follower = r.Name
	}

	// The agent on a survivor is the one whose consumer the victim hosts
	// (consumers land on a random peer); the other may have it anywhere.
	agents := []*failoverAgent{startFailoverAgent(t, "on the victim", c.url(leader))}
	js := natstest.JetStream(t, c.url(follower))
	for i := 0; ; i++ {
		before := consumerHosts(t, js)
		a := startFailoverAgent(t, "on a survivor, its consumer on the victim", c.url(follower))
		if host := newConsumerHost(t, js, before); host == leader {
			agents = append(agents, a)
			break
		}
		if err := a.stop(); err != nil {
			t.Fatal(err)
		}
		if i == 40 {
			t.Fatalf("no consumer of 40 was placed on the stream leader %s", leader)
		}
	}

	kill := time.Now()
	c.lose(leader)
	var last uint64
	for {
		if last, err = put("k.after", "1", time.Second); err == nil {
			break
		}
		if time.Since(kill) > 30*time.Second {
			t.Fatalf("no put acknowledged within 30s of the leader loss: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	acked := time.Now()
	t.Logf("leader %s lost; first put acknowledged after %v", leader, acked.Sub(kill).Round(time.Millisecond))

	for _, a := range agents {
		deadline := time.Now().Add(30 * time.Second)
		for {
			if at, ok := a.appliedAt("k.after=1"); ok {
				t.Logf("%s: applied %v after the first acknowledged put", a.name, at.Sub(acked).Round(time.Millisecond))
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the put after the leader loss was not applied within 30s", a.name)
			}
			time.Sleep(time.Millisecond)
		}
		waitFor(t, a.name+": the cursor at the last put", func() bool { return a.fold.Cursor() == kvcore.RevisionCursor(last) })
		var want []string
		for i := range 20 {
			want = append(want, fmt.Sprintf("k.%02d=before", i))
		}
		want = append(want, "k.after=1")
		slices.Sort(want)
		if got := foldState(t, a.fold, ""); !slices.Equal(got, want) {
			t.Errorf("%s: fold after the failover = %v, want %v", a.name, got, want)
		}
		a.mu.Lock()
		if a.fulls != 1 {
			t.Errorf("%s: %d full batches, want 1 (the initial sync; the failover lost nothing to resync)", a.name, a.fulls)
		}
		a.mu.Unlock()
	}
}

// consumerHosts maps the consumers of the bucket's stream to the servers
// hosting them. It asks again while the cluster does not answer (a loaded
// CI host timed out a stream info of a cluster just formed).
func consumerHosts(t *testing.T, js jetstream.JetStream) map[string]string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		hosts, err := listConsumerHosts(t.Context(), js)
		if err == nil {
			return hosts
		}
		if time.Now().After(deadline) {
			t.Fatalf("listing the consumers of KV_r3 for 30s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func listConsumerHosts(ctx context.Context, js jetstream.JetStream) (map[string]string, error) {
	st, err := js.Stream(ctx, "KV_r3")
	if err != nil {
		return nil, err
	}
	hosts := map[string]string{}
	l := st.ListConsumers(ctx)
	for ci := range l.Info() {
		if ci.Cluster != nil {
			hosts[ci.Name] = ci.Cluster.Leader
		}
	}
	return hosts, l.Err()
}

// newConsumerHost is the host of the one consumer created since before
// and still there (a loop's scans hold one for a moment).
func newConsumerHost(t *testing.T, js jetstream.JetStream, before map[string]string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var hosts []string
		for name, host := range consumerHosts(t, js) {
			if _, ok := before[name]; !ok {
				hosts = append(hosts, host)
			}
		}
		if len(hosts) == 1 {
			return hosts[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d new consumers, want the new agent's one", len(hosts))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
