//go:build linux

package netlab

import (
	"errors"
	"net"
	"strconv"
	"syscall"
	"testing"
)

// Two linked hosts reach each other; while the link is cut they don't, and
// once it is healed they do again. The test reaches a host's loopback
// listener with Dial.
func TestCutAndHeal(t *testing.T) {
	a, b := NewHost(t), NewHost(t)
	l := Connect(t, a, b)

	// A listener on b, made inside b's namespace.
	var ln net.Listener
	if err := b.enter(func() (err error) { ln, err = net.Listen("tcp", ":0"); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	reach := func(from *Host, host string) error {
		c, err := from.Dial("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := reach(b, "127.0.0.1"); err != nil {
		t.Fatalf("b's own loopback: %v", err)
	}
	if err := reach(a, l.AddrB); err != nil {
		t.Fatalf("a to b over the link: %v", err)
	}
	if err := reach(a, "127.0.0.1"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("a's loopback has b's listener: %v", err)
	}
	l.Cut()
	if err := reach(a, l.AddrB); err == nil {
		t.Fatal("a reached b across a cut link")
	}
	l.Heal()
	if err := reach(a, l.AddrB); err != nil {
		t.Fatalf("a to b over the healed link: %v", err)
	}
}
