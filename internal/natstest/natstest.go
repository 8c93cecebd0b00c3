// Package natstest runs embedded nats-server instances with JetStream for
// tests: a single server that can be stopped and restarted on the same port
// and store directory, and a 3-node cluster on loopback.
//
// Every server listens on 127.0.0.1 with a random port, keeps its JetStream
// store in a t.TempDir(), and is shut down by t.Cleanup.
package natstest

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// readyTimeout bounds how long a server may take to accept connections.
const readyTimeout = 10 * time.Second

// Option adjusts a server's options before it starts.
type Option func(*server.Options)

// Server is one embedded nats-server. Its methods are safe for concurrent use.
type Server struct {
	tb   testing.TB
	mu   sync.Mutex
	opts server.Options
	srv  *server.Server
}

// Run starts a JetStream-enabled server on a random loopback port with a
// fresh store directory and registers its shutdown with tb.Cleanup.
func Run(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s := newServer(tb, opts...)
	s.Start()
	return s
}

func newServer(tb testing.TB, opts ...Option) *Server {
	o := server.Options{
		ServerName: "s1",
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		JetStream:  true,
		StoreDir:   tb.TempDir(),
		NoLog:      true,
		NoSigs:     true,
		// Each test gets its own server; explicit limits keep JetStream from
		// sizing itself to the machine.
		JetStreamMaxMemory: 256 << 20,
		JetStreamMaxStore:  1 << 30,
	}
	for _, opt := range opts {
		opt(&o)
	}
	s := &Server{tb: tb, opts: o}
	tb.Cleanup(s.Shutdown)
	return s
}

// Start starts the server if it is not running. After the first start the
// server keeps its port, cluster port and store directory, so Start after
// Shutdown is a restart on the same address with the same data.
func (s *Server) Start() {
	s.tb.Helper()
	if err := s.start(); err != nil {
		s.tb.Fatalf("natstest: %v", err)
	}
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil && s.srv.Running() {
		return nil
	}
	o := s.opts // server.NewServer keeps a pointer; give each run its own copy
	srv, err := server.NewServer(&o)
	if err != nil {
		return fmt.Errorf("new server %s: %w", o.ServerName, err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(readyTimeout) {
		srv.Shutdown()
		return fmt.Errorf("server %s not ready within %v", o.ServerName, readyTimeout)
	}
	s.srv = srv
	// Pin the port the first start picked so restarts reuse it.
	s.opts.Port = srv.Addr().(*net.TCPAddr).Port
	return nil
}

// Shutdown stops the server and waits until it is down. It is a no-op when
// the server is not running.
func (s *Server) Shutdown() {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv == nil {
		return
	}
	srv.Shutdown()
	srv.WaitForShutdown()
}

// Restart shuts the server down and starts it again on the same port and
// store directory.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Shutdown()
	s.Start()
}

// URL is the client URL, stable across restarts.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return "nats://" + net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.Port))
}

// StoreDir is the JetStream store directory, stable across restarts.
func (s *Server) StoreDir() string { return s.opts.StoreDir }

// Name is the server's name.
func (s *Server) Name() string { return s.opts.ServerName }

// Running reports whether the server is up.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv != nil && s.srv.Running()
}

// NATS returns the running nats-server (nil before the first Start).
func (s *Server) NATS() *server.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv
}

// Cluster is a JetStream cluster of embedded servers on loopback.
type Cluster struct {
	tb      testing.TB
	Servers []*Server
}

// RunCluster starts an n-node JetStream cluster and waits until it has a
// meta leader that every node sees. Every node lists every other node as a
// route, and keeps its ports across restarts, so any node can be stopped and
// started on its own.
func RunCluster(tb testing.TB, n int, opts ...Option) *Cluster {
	tb.Helper()
	if n < 1 {
		tb.Fatalf("natstest: cluster of %d nodes", n)
	}
	// A clustered JetStream server is not ready until it has a quorum, so
	// all nodes start together, which means their ports are chosen up front.
	ports := freePorts(tb, 2*n)
	c := &Cluster{tb: tb}
	for i := range n {
		var routes []*url.URL
		for j := range n {
			if j != i {
				routes = append(routes, &url.URL{Scheme: "nats-route", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[n+j]))})
			}
		}
		nodeOpts := append([]Option{func(o *server.Options) {
			o.ServerName = fmt.Sprintf("n%d", i+1)
			o.Port = ports[i]
			o.Cluster.Name = "slipstream-test"
			o.Cluster.Host = "127.0.0.1"
			o.Cluster.Port = ports[n+i]
			o.Routes = routes
		}}, opts...)
		c.Servers = append(c.Servers, newServer(tb, nodeOpts...))
	}
	errs := make(chan error, n)
	for _, s := range c.Servers {
		go func() { errs <- s.start() }()
	}
	for range n {
		if err := <-errs; err != nil {
			tb.Fatalf("natstest: %v", err)
		}
	}
	c.WaitForMetaLeader()
	return c
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(tb testing.TB, n int) []int {
	tb.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("natstest: reserve port: %v", err)
		}
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// URLs returns the client URLs of every node.
func (c *Cluster) URLs() []string {
	urls := make([]string, len(c.Servers))
	for i, s := range c.Servers {
		urls[i] = s.URL()
	}
	return urls
}

// WaitForMetaLeader waits until some running node is the JetStream meta
// leader, every running node is current with it, and the leader sees every
// running node as an online peer: until then, placing a replicated stream
// fails with "no suitable peers for placement, peer offline".
func (c *Cluster) WaitForMetaLeader() {
	c.tb.Helper()
	c.waitFor("JetStream meta leader", func() bool {
		running, online := 0, 0
		for _, s := range c.Servers {
			srv := s.NATS()
			if srv == nil || !srv.Running() {
				continue
			}
			if !srv.JetStreamIsCurrent() {
				return false
			}
			running++
			if srv.JetStreamIsLeader() {
				online = len(srv.JetStreamClusterPeers())
			}
		}
		return running > 0 && online >= running
	})
}

// StreamLeader waits until a running node leads the stream and returns it.
// KV bucket B is stream "KV_B" in account "$G" (the default account).
func (c *Cluster) StreamLeader(account, stream string) *Server {
	c.tb.Helper()
	var leader *Server
	c.waitFor("leader of stream "+stream, func() bool {
		for _, s := range c.Servers {
			if srv := s.NATS(); srv != nil && srv.Running() && srv.JetStreamIsStreamLeader(account, stream) {
				leader = s
				return true
			}
		}
		return false
	})
	return leader
}

func (c *Cluster) waitFor(what string, cond func() bool) {
	c.tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			c.tb.Fatalf("natstest: no %s within 30s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}
