package natstest

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestRestartKeepsPortAndData(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := Run(t)
	url := s.URL()

	kv := openKV(ctx, t, url, jetstream.KeyValueConfig{Bucket: "cfg"})
	if _, err := kv.Put(ctx, "a", []byte("1")); err != nil {
		t.Fatal(err)
	}

	s.Restart()
	if s.URL() != url {
		t.Fatalf("restart moved the server from %s to %s", url, s.URL())
	}
	kv = openKV(ctx, t, url, jetstream.KeyValueConfig{Bucket: "cfg"})
	e, err := kv.Get(ctx, "a")
	if err != nil {
		t.Fatalf("get after restart: %v", err)
	}
	if string(e.Value()) != "1" {
		t.Fatalf("value after restart = %q, want 1", e.Value())
	}
}

// TestClusterSurvivesLeaderLoss stops the node that leads both the
// JetStream meta group and the bucket's stream, the worst case: requests
// sent before the new meta leader is elected go unanswered.
func TestClusterSurvivesLeaderLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := RunCluster(t, 3)
	kv := openKV(ctx, t, c.URLs()[0], jetstream.KeyValueConfig{Bucket: "r3", Replicas: 3})
	if _, err := kv.Put(ctx, "a", []byte("1")); err != nil {
		t.Fatal(err)
	}

	leader := metaLeader(t, c)
	moveStreamLeader(ctx, t, c, "KV_r3", leader)
	leader.Shutdown()
	var survivor string
	for _, s := range c.Servers {
		if s != leader {
			survivor = s.URL()
			break
		}
	}
	// At once, as a client would: the cluster may still be electing.
	kv = openKV(ctx, t, survivor, jetstream.KeyValueConfig{Bucket: "r3", Replicas: 3})
	if next := c.StreamLeader("$G", "KV_r3"); next == leader {
		t.Fatal("stopped node still reported as leader")
	}
	if _, err := kv.Put(ctx, "b", []byte("2")); err != nil {
		t.Fatalf("put after leader loss: %v", err)
	}
	e, err := kv.Get(ctx, "a")
	if err != nil || string(e.Value()) != "1" {
		t.Fatalf("get after leader loss = %v, %v", e, err)
	}

	leader.Start()
	c.WaitForMetaLeader()
}

func metaLeader(t *testing.T, c *Cluster) *Server {
	t.Helper()
	for _, s := range c.Servers {
		if srv := s.NATS(); srv != nil && srv.JetStreamIsLeader() {
			return s
		}
	}
	t.Fatal("no meta leader")
	return nil
}

// moveStreamLeader has the stream's leader step down until to leads it.
func moveStreamLeader(ctx context.Context, t *testing.T, c *Cluster, stream string, to *Server) {
	t.Helper()
	nc, err := nats.Connect(to.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	body, err := json.Marshal(map[string]any{"placement": map[string]string{"preferred": to.Name()}})
	if err != nil {
		t.Fatal(err)
	}
	for c.StreamLeader("$G", stream) != to {
		if ctx.Err() != nil {
			t.Fatalf("%s does not take the lead of %s", to.Name(), stream)
		}
		_, _ = nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+stream, body, 2*time.Second)
		time.Sleep(200 * time.Millisecond)
	}
}

func openKV(ctx context.Context, t *testing.T, url string, cfg jetstream.KeyValueConfig) jetstream.KeyValue {
	t.Helper()
	js := JetStream(t, url)
	for {
		// A request that reaches a cluster between two meta leaders is
		// dropped, not answered later: bound each attempt, or the first
		// one after a leader loss waits for the whole ctx.
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		kv, err := js.CreateOrUpdateKeyValue(actx, cfg)
		cancel()
		if err == nil {
			return kv
		}
		// Right after a restart or leader change JetStream may briefly be unavailable.
		if ctx.Err() != nil || !(errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrTimeout)) {
			t.Fatalf("create bucket: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestProxyCutAndStall(t *testing.T) {
	s := Run(t)
	p := NewProxy(t, s.URL())
	nc, err := nats.Connect(p.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	p.Stall(true)
	if err := nc.FlushTimeout(200 * time.Millisecond); err == nil {
		t.Fatal("flush through a stalled proxy succeeded")
	}
	p.Stall(false)
	if err := nc.FlushTimeout(5 * time.Second); err != nil {
		t.Fatalf("flush after the stall: %v", err)
	}

	reconnected := make(chan struct{}, 1)
	nc.SetReconnectHandler(func(*nats.Conn) { reconnected <- struct{}{} })
	p.SetDown(true)
	for deadline := time.Now().Add(10 * time.Second); nc.IsConnected(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("still connected through a proxy that is down")
		}
	}
	p.SetDown(false)
	select {
	case <-reconnected:
	case <-time.After(10 * time.Second):
		t.Fatal("no reconnect after the proxy came back")
	}
}

func TestOperatorCredsAndTLS(t *testing.T) {
	acc := Operator(t)
	tlsFiles := TLS(t)
	s := Run(t, acc.Option, tlsFiles.Option)
	creds := filepath.Join(t.TempDir(), "user.creds")
	if err := os.WriteFile(creds, acc.Creds, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := nats.Connect(s.URL(), nats.RootCAs(tlsFiles.CAFile)); err == nil {
		t.Fatal("connected without credentials")
	}
	js := JetStream(t, s.URL(), nats.RootCAs(tlsFiles.CAFile), nats.UserCredentials(creds))
	if _, err := js.AccountInfo(context.Background()); err != nil {
		t.Fatalf("JetStream in the operator's account: %v", err)
	}
}

func TestEmbedded(t *testing.T) {
	e, err := StartEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(e.URL())
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	e.Stop()
	if _, err := nats.Connect(e.URL()); err == nil {
		t.Fatal("connected after Stop")
	}
}
