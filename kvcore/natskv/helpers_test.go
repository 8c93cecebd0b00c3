package natskv

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/kvcore"
)

// testTimeout bounds each test's context.
const testTimeout = 60 * time.Second

// fastOpts are connection options that make recovery quick in tests.
func fastOpts(urls ...string) Options {
	return Options{Servers: urls, Timeout: 5 * time.Second, ReconnectWait: 50 * time.Millisecond, ReconnectJitter: 10 * time.Millisecond, Heartbeat: 300 * time.Millisecond}
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// connect returns a connected Conn closed by t.Cleanup.
func connect(t testing.TB, o Options) *Conn {
	t.Helper()
	c := New(o)
	if err := c.Connect(testCtx(t)); err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var bucketSeq atomic.Int64

// uniqueBucket returns a fresh bucket name for t.
func uniqueBucket() string { return fmt.Sprintf("b%d", bucketSeq.Add(1)) }

// openStore opens a fresh bucket with cfg on c.
func openStore(t testing.TB, c *Conn, cfg kvcore.StoreConfig) *store {
	t.Helper()
	if cfg.Bucket == "" {
		cfg.Bucket = uniqueBucket()
	}
	// A bucket's creation that times out is tried again, as a watch's
	// start is (startWatch): a replicated stream on a loaded machine.
	var st kvcore.Store
	waitFor(t, 30*time.Second, "store "+cfg.Bucket, func() bool {
		var err error
		st, err = c.Store(testCtx(t), cfg)
		if errors.Is(err, kvcore.ErrTimeout) {
			t.Logf("store %s: %v; opening it again", cfg.Bucket, err)
			return false
		}
		if err != nil {
			t.Fatalf("store %s: %v", cfg.Bucket, err)
		}
		return true
	})
	return st.(*store)
}

// rawJS returns a plain nats.go JetStream context on url, for arranging
// and inspecting state behind the backend's back.
func rawJS(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	js := natstest.JetStream(t, url)
	return js.Conn(), js
}

// next returns the next event of w, failing after d.
func next(t testing.TB, w kvcore.Watch, d time.Duration) kvcore.Event {
	t.Helper()
	select {
	case ev, ok := <-w.Events():
		if !ok {
			t.Fatalf("watch ended: %v", w.Err())
		}
		return ev
	case <-time.After(d):
		t.Fatalf("no event within %v", d)
	}
	panic("unreachable")
}

// quiet fails if w delivers anything within d.
func quiet(t testing.TB, w kvcore.Watch, d time.Duration) {
	t.Helper()
	select {
	case ev, ok := <-w.Events():
		if ok {
			t.Fatalf("unexpected event %+v", ev)
		}
		t.Fatalf("watch ended: %v", w.Err())
	case <-time.After(d):
	}
}

// mustPut puts key=value and returns its revision.
func mustPut(t testing.TB, s kvcore.Store, key, value string) uint64 {
	t.Helper()
	v, err := s.Put(testCtx(t), key, []byte(value))
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	rev, _ := v.Revision()
	return rev
}

// consumerCount returns how many consumers the bucket's stream has.
func consumerCount(t testing.TB, js jetstream.JetStream, bucket string) int {
	t.Helper()
	st, err := js.Stream(testCtx(t), streamName(bucket))
	if err != nil {
		t.Fatal(err)
	}
	return st.CachedInfo().State.Consumers
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func rev(v kvcore.Version) uint64 {
	r, _ := v.Revision()
	return r
}

func wantErr(t testing.TB, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: err = %v, want %v", what, err, want)
	}
}

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// testLogger sends the package's logs to t.Log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
