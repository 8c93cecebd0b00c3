package natstest

import (
	"net"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// RunHub starts a JetStream server in domain that accepts leaf node
// connections on a loopback port (see [Server.LeafURL] and [RunLeaf]).
func RunHub(tb testing.TB, domain string, opts ...Option) *Server {
	tb.Helper()
	port := freePorts(tb, 1)[0]
	return Run(tb, append([]Option{func(o *server.Options) {
		o.ServerName = "hub"
		o.JetStreamDomain = domain
		o.LeafNode.Host = "127.0.0.1"
		o.LeafNode.Port = port
	}}, opts...)...)
}

// LeafURL is the URL leaf nodes connect to, for a server started by
// [RunHub] ("" otherwise).
func (s *Server) LeafURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opts.LeafNode.Port <= 0 {
		return ""
	}
	return "nats-leaf://" + net.JoinHostPort(s.opts.LeafNode.Host, strconv.Itoa(s.opts.LeafNode.Port))
}

// RunLeaf starts a leaf node of hub with its own JetStream in domain, as an
// edge site runs one, and waits until the leaf connection is up. Clients of
// the leaf reach the hub's JetStream through the hub's domain.
func RunLeaf(tb testing.TB, hub *Server, domain string, opts ...Option) *Server {
	tb.Helper()
	u, err := url.Parse(hub.LeafURL())
	if err != nil || u.Host == "" {
		tb.Fatalf("natstest: %s accepts no leaf nodes (start it with RunHub)", hub.Name())
	}
	leaf := Run(tb, append([]Option{func(o *server.Options) {
		o.ServerName = "leaf-" + domain
		o.JetStreamDomain = domain
		o.LeafNode.ReconnectInterval = 100 * time.Millisecond
		o.LeafNode.Remotes = []*server.RemoteLeafOpts{{URLs: []*url.URL{u}}}
	}}, opts...)...)
	deadline := time.Now().Add(readyTimeout)
	for leaf.NATS().NumLeafNodes() == 0 || hub.NATS().NumLeafNodes() == 0 {
		if time.Now().After(deadline) {
			tb.Fatalf("natstest: leaf %s not connected to %s within %v", leaf.Name(), hub.Name(), readyTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return leaf
}
