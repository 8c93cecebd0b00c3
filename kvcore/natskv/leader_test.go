package natskv

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/kvcore"
)

func TestLeaderElectedLost(t *testing.T) {
	adv := leaderElected{Leader: "n2"}
	adv.Replicas = append(adv.Replicas,
		struct {
			Name    string `json:"name"`
			Offline bool   `json:"offline"`
		}{Name: "n1", Offline: true},
		struct {
			Name    string `json:"name"`
			Offline bool   `json:"offline"`
		}{Name: "n3"},
	)
	for _, tc := range []struct {
		host, prev string
		want       bool
	}{
		{"", "n1", false},   // not in a cluster
		{"n2", "n1", false}, // on the new leader
		{"n3", "n1", false}, // on a follower that is up
		{"n1", "n1", true},  // on the old leader
		{"n1", "", true},    // on an offline peer
		{"n4", "n1", true},  // on a server no longer among the peers
		{"n3", "n3", true},  // on the leader that was replaced, not yet seen offline
	} {
		if got := adv.lost(tc.host, tc.prev); got != tc.want {
			t.Errorf("consumer on %q, previous leader %q: lost = %v, want %v", tc.host, tc.prev, got, tc.want)
		}
	}
}

// A watch connected to a surviving node whose consumer lived on the
// stream's leader replaces it once the new leader is elected, not two
// heartbeats later: the heartbeat here is far longer than the test.
func TestWatchReplacesConsumerLostWithStreamLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test skipped in -short mode")
	}
	c := natstest.RunCluster(t, 3)
	// Its setup on a fresh cluster may be slow; its puts after the leader
	// loss have their own 1 s bound.
	writer := connect(t, Options{Servers: c.URLs(), Timeout: 10 * time.Second, ReconnectWait: 50 * time.Millisecond})
	ws := openStore(t, writer, kvcore.StoreConfig{Bucket: "r3", Replicas: 3})
	mustPut(t, ws, "k.a", "1")

	leader := c.StreamLeader("$G", streamName("r3"))
	var follower *natstest.Server
	for _, s := range c.Servers {
		if s != leader {
			follower = s
		}
	}
	o := fastOpts(follower.URL())
	o.Heartbeat = 10 * time.Minute
	o.Logger = testLogger(t)
	s := openStore(t, connect(t, o), kvcore.StoreConfig{Bucket: "r3"})

	// Consumers land on a random peer: watch until one lands on the leader.
	var w *watch
	for range 40 {
		kw, err := s.Watch(testCtx(t), kvcore.AllKeys(), kvcore.Cursor{})
		if errors.Is(err, kvcore.ErrTimeout) {
			continue // a loaded machine; the next placement is as good
		}
		if err != nil {
			t.Fatal(err)
		}
		if kw.(*watch).cur.Load().host == leader.Name() {
			w = kw.(*watch)
			break
		}
		kw.Stop()
	}
	if w == nil {
		t.Fatalf("no consumer of 40 was placed on the stream leader %s", leader.Name())
	}
	t.Cleanup(w.Stop)
	if ev := next(t, w, 10*time.Second); ev.Update.Key != "k.a" {
		t.Fatalf("first event %+v, want k.a", ev)
	}
	if ev := next(t, w, 10*time.Second); !ev.Synced {
		t.Fatalf("second event %+v, want Synced", ev)
	}

	leader.Shutdown()
	deadline := time.Now().Add(30 * time.Second)
	var last uint64
	for {
		ctx, cancel := context.WithTimeout(testCtx(t), time.Second)
		v, err := ws.Put(ctx, "k.b", []byte("2"))
		cancel()
		if err == nil {
			last = rev(v)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no put acknowledged after the leader loss: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ev := next(t, w, 20*time.Second); ev.Update.Key != "k.b" || rev(ev.Update.Version) != last {
		t.Fatalf("event after the leader loss %+v, want k.b at revision %d", ev, last)
	}
	leader.Start()
	c.WaitForMetaLeader()
}

// Attempts to re-create a consumer start with short bounds (a request sent
// during an election is dropped, so waiting longer only delays the retry)
// and grow, so a server slow to answer is still waited for.
func TestAttemptTimeoutGrows(t *testing.T) {
	w := &watch{s: &store{opts: Options{Timeout: 5 * time.Second}}}
	var got []time.Duration
	for n := range 10 {
		got = append(got, w.attemptBound(n))
	}
	s := time.Second
	want := []time.Duration{s, s, s, 2 * s, 2 * s, 2 * s, 4 * s, 4 * s, 4 * s, 5 * s}
	if !slices.Equal(got, want) {
		t.Errorf("attempt timeouts %v, want %v", got, want)
	}
}
