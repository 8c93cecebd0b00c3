package agent

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/internal/plugintest"
	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/kvcore/natskv"
)

func TestFleetSettings(t *testing.T) {
	cfg, err := Parse("a.hcl", []byte(`nats {
  domain           = "hub"
  start_splay      = "30s"
  reconnect_jitter = "0s"
  ping_interval    = "2s"
}`))
	if err != nil {
		t.Fatal(err)
	}
	if n := cfg.NATS; n.Domain != "hub" || n.StartSplay != 30*time.Second || n.ReconnectJitter != 0 || n.natsJitter() >= 0 || n.PingInterval != 2*time.Second {
		t.Errorf("nats = domain %q start_splay %v reconnect_jitter %v (natskv %v) ping_interval %v", n.Domain, n.StartSplay, n.ReconnectJitter, n.natsJitter(), n.PingInterval)
	}
	cfg, err = Parse("a.hcl", nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := cfg.NATS; n.Domain != "" || n.StartSplay != DefaultStartSplay || n.ReconnectJitter != DefaultReconnectJitter || n.natsJitter() != DefaultReconnectJitter || n.PingInterval != DefaultPingInterval {
		t.Errorf("defaults: domain %q start_splay %v reconnect_jitter %v ping_interval %v", n.Domain, n.StartSplay, n.ReconnectJitter, n.PingInterval)
	}
	_, err = Parse("bad.hcl", []byte(`nats { start_splay = "-1s" }`))
	var ce *ConfigError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "Invalid start_splay") || !strings.Contains(err.Error(), "bad.hcl:1") {
		t.Errorf("negative start_splay: err = %v", err)
	}
	for _, v := range []string{"0s", "0", "soon"} {
		_, err = Parse("bad.hcl", []byte(`nats { ping_interval = "`+v+`" }`))
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), "Invalid ping_interval") {
			t.Errorf("ping_interval %q: err = %v", v, err)
		}
	}
}

// notifySocket stands in for systemd: it sets $NOTIFY_SOCKET to a unixgram
// socket and delivers what the agent sends there.
func notifySocket(t *testing.T) <-chan string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	notes := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(notes)
				return
			}
			notes <- string(buf[:n])
		}
	}()
	return notes
}

// While the agent has not started (here: held by start_splay, as during a
// long first sync), it tells systemd to extend TimeoutStartSec rather than
// READY, and its watches wait: nothing connects before the splay is over.
func TestStartExtendsSystemdTimeoutUntilReady(t *testing.T) {
	notes := notifySocket(t)
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "1")
	cfg := f.config(strings.Replace(filesConfig, `nats { servers = ["$NATS"] }`, `nats {
  servers     = ["$NATS"]
  start_splay = "1h"
}`, 1))
	a, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)), PluginCacheDir: plugintest.CacheDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()

	deadline := time.After(30 * time.Second)
	for extended := false; !extended; {
		select {
		case n := <-notes:
			if strings.Contains(n, "READY=1") {
				t.Fatalf("READY while the agent waits to start: %q", n)
			}
			if v, ok := strings.CutPrefix(n, "EXTEND_TIMEOUT_USEC="); ok {
				if us, err := strconv.ParseInt(v, 10, 64); err != nil || us < int64(extendEvery/time.Microsecond) {
					t.Fatalf("EXTEND_TIMEOUT_USEC=%q: want more microseconds than the %v between two", v, extendEvery)
				}
				extended = true
			}
		case <-deadline:
			t.Fatal("no EXTEND_TIMEOUT_USEC within 30s")
		}
	}
	if s := a.Status()[0]; s.State != stateStarting {
		t.Errorf("watch during start_splay: %+v, want starting", s)
	}
	if a.conn.Healthy() {
		t.Error("connected to NATS during start_splay")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel during start_splay")
	}
}

// An agent on a leaf node renders a bucket of the hub's JetStream, named
// by nats.domain, and follows it.
func TestAgentOnLeafReadsHubDomain(t *testing.T) {
	f := newFixture(t) // its plugin and directory; the bucket lives on the hub
	hub := natstest.RunHub(t, "hub")
	leaf := natstest.RunLeaf(t, hub, "edge")
	conn := natskv.New(natskv.Options{Servers: []string{hub.URL()}, Timeout: 5 * time.Second})
	if err := conn.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	s, err := conn.Store(t.Context(), kvcore.StoreConfig{Bucket: "cfg"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(t.Context(), "files.a.conf", []byte("alpha")); err != nil {
		t.Fatal(err)
	}
	cfg := f.config(strings.Replace(filesConfig, `nats { servers = ["$NATS"] }`, `nats {
  servers = ["`+leaf.URL()+`"]
  domain  = "hub"
}`, 1))
	a, _ := f.start(cfg)
	out := filepath.Join(f.dir, "out")
	waitFor(t, "the initial render from the hub", func() bool { return a.Ready() && readFile(filepath.Join(out, "a.conf")) == "alpha" })
	v, err := s.Put(t.Context(), "files.a.conf", []byte("alpha2"))
	if err != nil {
		t.Fatal(err)
	}
	last, _ := v.Revision()
	waitFor(t, "a change made on the hub", func() bool {
		return a.Status()[0].Revision == last && readFile(filepath.Join(out, "a.conf")) == "alpha2"
	})
}
