package main

import (
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// meter is a TCP proxy in front of a server that counts the bytes the
// server sends through it: what clients connected through it receive on
// the wire, protocol lines included (the server's own counters count
// message payloads only).
type meter struct {
	ln     net.Listener
	target string
	down   atomic.Int64
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
}

// newMeter listens on a loopback port and forwards to target (a nats://
// URL).
func newMeter(target string) (*meter, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	m := &meter{ln: ln, target: strings.TrimPrefix(target, "nats://")}
	m.wg.Go(m.serve)
	return m, nil
}

func (m *meter) url() string { return "nats://" + m.ln.Addr().String() }

func (m *meter) serve() {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", m.target)
		if err != nil {
			c.Close()
			continue
		}
		m.mu.Lock()
		m.conns = append(m.conns, c, s)
		m.mu.Unlock()
		m.wg.Go(func() { m.pipe(c, s, nil) })
		m.wg.Go(func() { m.pipe(s, c, &m.down) })
	}
}

// pipe copies src to dst, adding the bytes to count if set, and closes
// both when either side ends.
func (m *meter) pipe(src, dst net.Conn, count *atomic.Int64) {
	defer src.Close()
	defer dst.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if count != nil {
				count.Add(int64(n))
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// bytes is what the server sent through the meter so far.
func (m *meter) bytes() int64 { return m.down.Load() }

// caughtUp is bytes once n of them have passed the meter (bytes the server
// counted as sent may still be on their way through the proxy), or after
// wait.
func (m *meter) caughtUp(n int64, wait time.Duration) int64 {
	for deadline := time.Now().Add(wait); m.bytes() < n && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	return m.bytes()
}

// close stops the meter and its connections.
func (m *meter) close() {
	m.ln.Close()
	m.mu.Lock()
	for _, c := range m.conns {
		c.Close()
	}
	m.mu.Unlock()
	m.wg.Wait()
}
