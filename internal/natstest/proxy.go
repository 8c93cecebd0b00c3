package natstest

import (
	"net"
	"sync"
	"testing"
)

// Proxy is a TCP proxy on loopback in front of a server. Clients that dial
// its URL reach the server until Cut drops their connections, which is how
// tests break a client's connection while the server stays up (its
// consumers and state survive), or until Stall freezes them like a
// half-dead TCP connection that neither delivers nor fails.
type Proxy struct {
	tb     testing.TB
	target string
	ln     net.Listener

	mu      sync.Mutex
	cond    *sync.Cond // signalled when stalled turns false or the proxy closes
	down    bool
	stalled bool
	closed  bool
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
}

// NewProxy listens on a random loopback port and forwards every connection
// to target (host:port or a nats:// URL). It is closed by tb.Cleanup.
func NewProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("natstest: proxy listen: %v", err)
	}
	p := &Proxy{tb: tb, target: hostPort(target), ln: ln, conns: map[net.Conn]struct{}{}}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.Close)
	return p
}

func hostPort(target string) string {
	const scheme = "nats://"
	if len(target) > len(scheme) && target[:len(scheme)] == scheme {
		return target[len(scheme):]
	}
	return target
}

// URL is the client URL of the proxy.
func (p *Proxy) URL() string { return "nats://" + p.ln.Addr().String() }

// Cut closes every proxied connection. New connections are still accepted
// unless the proxy is down.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

// SetDown makes the proxy drop every connection at once (down=true) or
// forward again (down=false). Going down also cuts the current connections.
func (p *Proxy) SetDown(down bool) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
	if down {
		p.Cut()
	}
}

// Stall stops (true) or resumes (false) forwarding on every connection
// without closing any: bytes wait in the proxy and the kernel buffers.
func (p *Proxy) Stall(stalled bool) {
	p.mu.Lock()
	p.stalled = stalled
	p.mu.Unlock()
	p.cond.Broadcast()
}

// Close stops the proxy and drops its connections.
func (p *Proxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.cond.Broadcast()
	p.Cut()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[u] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, u)
		go p.pipe(u, c)
	}
}

// pipe copies src to dst, holding data while stalled, and closes both ends
// when either side ends.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		p.mu.Lock()
		for p.stalled && !p.closed {
			p.cond.Wait()
		}
		p.mu.Unlock()
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}
