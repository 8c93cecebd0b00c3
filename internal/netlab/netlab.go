//go:build linux

package netlab

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// RequireEnv names the environment variable that makes [NewHost] fail,
// rather than skip, where namespaces cannot be made (CI sets it).
const RequireEnv = "SLIPSTREAM_REQUIRE_NETNS"

// Host is a network namespace with loopback up.
type Host struct {
	tb testing.TB
	ns string
}

// Link is a veth link between two hosts, with an address at each end.
type Link struct {
	tb           testing.TB
	a, b         *Host
	ends         [2]string // interface names on a and b
	AddrA, AddrB string    // the addresses of a's and b's ends
}

var serial atomic.Int32

// name is unique among the namespaces and links this process makes, and
// among those of other test processes (by pid), within 15 bytes.
func name(kind string) string {
	return fmt.Sprintf("sl%d%s%d", os.Getpid()%10000000, kind, serial.Add(1))
}

// NewHost creates a namespace with loopback up; tb.Cleanup deletes it.
// Without root or ip it skips tb, unless [RequireEnv] is set.
func NewHost(tb testing.TB) *Host {
	tb.Helper()
	if err := available(); err != nil {
		if os.Getenv(RequireEnv) != "" {
			tb.Fatalf("netlab: %v (%s is set)", err, RequireEnv)
		}
		tb.Skipf("netlab: %v; set %s to make this a failure", err, RequireEnv)
	}
	h := &Host{tb: tb, ns: name("h")}
	run(tb, "ip", "netns", "add", h.ns)
	tb.Cleanup(func() { _ = exec.Command("ip", "netns", "del", h.ns).Run() })
	h.ip("link", "set", "lo", "up")
	return h
}

func available() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("network namespaces need root (euid %d)", os.Geteuid())
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("network namespaces need iproute2: %w", err)
	}
	return nil
}

// Connect links a and b with a /30 of 10.0.0.0/8 of their own.
func Connect(tb testing.TB, a, b *Host) *Link {
	tb.Helper()
	n := serial.Add(1)
	pid := os.Getpid()
	subnet := fmt.Sprintf("10.%d.%d.", 128+pid%128, n%256)
	l := &Link{tb: tb, a: a, b: b, ends: [2]string{name("a"), name("b")}, AddrA: subnet + "1", AddrB: subnet + "2"}
	run(tb, "ip", "link", "add", l.ends[0], "netns", a.ns, "type", "veth", "peer", "name", l.ends[1], "netns", b.ns)
	a.ip("addr", "add", l.AddrA+"/30", "dev", l.ends[0])
	b.ip("addr", "add", l.AddrB+"/30", "dev", l.ends[1])
	l.Heal()
	return l
}

// Cut takes the link down at both ends: nothing crosses it, and the
// programs on either side are not told; their connections just stall, as
// when a cable or a router between two sites fails.
func (l *Link) Cut() {
	l.tb.Helper()
	l.a.ip("link", "set", l.ends[0], "down")
	l.b.ip("link", "set", l.ends[1], "down")
}

// Heal brings the link back up.
func (l *Link) Heal() {
	l.tb.Helper()
	l.a.ip("link", "set", l.ends[0], "up")
	l.b.ip("link", "set", l.ends[1], "up")
}

// Wrap is the command prefix that runs a program on the host.
func (h *Host) Wrap() []string { return []string{"ip", "netns", "exec", h.ns} }

// Command runs name with args on the host.
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	argv := append(h.Wrap(), name)
	return exec.Command(argv[0], append(argv[1:], args...)...)
}

func (h *Host) ip(args ...string) {
	h.tb.Helper()
	run(h.tb, append([]string{"ip", "-n", h.ns}, args...)...)
}

func run(tb testing.TB, argv ...string) {
	tb.Helper()
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		tb.Fatalf("netlab: %s: %v: %s", strings.Join(argv, " "), err, out)
	}
}

// Dial connects from the host to address, as a program on the host would
// (127.0.0.1 is the host's own loopback). It is a nats.CustomDialer.
func (h *Host) Dial(network, address string) (net.Conn, error) {
	var c net.Conn
	err := h.enter(func() (err error) {
		c, err = net.DialTimeout(network, address, 5*time.Second)
		return err
	})
	return c, err
}

// enter runs f on a thread moved into the host's namespace. A socket
// keeps the namespace it was made in.
func (h *Host) enter(f func() error) error {
	runtime.LockOSThread()
	own, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netlab: %w", err)
	}
	defer own.Close()
	target, err := os.Open(filepath.Join("/var/run/netns", h.ns))
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netlab: host %s: %w", h.ns, err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netlab: entering host %s: %w", h.ns, err)
	}
	ferr := f()
	if err := unix.Setns(int(own.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread stays in the host's namespace: leave it locked, so
		// it ends with this goroutine instead of serving others.
		return fmt.Errorf("netlab: leaving host %s: %w", h.ns, err)
	}
	runtime.UnlockOSThread()
	return ferr
}
