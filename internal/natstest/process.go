package natstest

import (
	"cmp"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// ServerBinary builds nats-server (the version this module depends on)
// into a directory of tb and returns its path, for tests that need real
// processes: a SIGKILL, not a graceful shutdown.
func ServerBinary(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "nats-server")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/nats-io/nats-server/v2").CombinedOutput()
	if err != nil {
		tb.Fatalf("natstest: build nats-server: %v\n%s", err, out)
	}
	return bin
}

// Proc is one nats-server process (see [StartProc], [RunProcCluster]). Its
// methods are safe for concurrent use.
type Proc struct {
	tb   testing.TB
	name string
	bin  string
	conf string
	host string   // the client address, from the test's network namespace
	port int      // the client port
	wrap []string // the command the server runs under, if any
	dial func(network, address string) (net.Conn, error)

	mu  sync.Mutex
	cmd *exec.Cmd
}

// ProcSpec describes a nats-server process for [StartProc].
type ProcSpec struct {
	Name   string // server_name
	Config string // the config file's text; it must listen on Host:Port
	// Host and Port are where clients reach it from the test (default
	// host 127.0.0.1).
	Host string
	Port int
	// Wrap is a command prefix the server runs under, such as
	// "ip netns exec NS" to run it on another network namespace's host,
	// and Dial how the test reaches it there (default: net.Dial from the
	// test's namespace).
	Wrap []string
	Dial func(network, address string) (net.Conn, error)
}

// StartProc writes spec's config into a directory of tb, starts bin (see
// [ServerBinary]) with it and waits until it accepts connections on
// Host:Port. The process is killed by tb.Cleanup.
func StartProc(tb testing.TB, bin string, spec ProcSpec) *Proc {
	tb.Helper()
	p := newProc(tb, bin, spec)
	p.Start()
	p.waitListening()
	return p
}

func newProc(tb testing.TB, bin string, spec ProcSpec) *Proc {
	tb.Helper()
	p := &Proc{tb: tb, name: spec.Name, bin: bin, conf: filepath.Join(tb.TempDir(), "nats.conf"),
		host: cmp.Or(spec.Host, "127.0.0.1"), port: spec.Port, wrap: spec.Wrap, dial: spec.Dial}
	if p.dial == nil {
		p.dial = func(network, address string) (net.Conn, error) { return net.DialTimeout(network, address, time.Second) }
	}
	if err := os.WriteFile(p.conf, []byte(spec.Config), 0o600); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(p.Kill)
	return p
}

// ProcCluster is a JetStream cluster of nats-server processes on loopback.
type ProcCluster struct {
	Procs []*Proc
}

// RunProcCluster starts an n-node JetStream cluster of bin (see
// [ServerBinary]) processes, each with its own store directory and config
// file, and waits until every node accepts clients. They are killed by
// tb.Cleanup. Like [RunCluster], a replicated bucket can be placed once the
// meta leader has seen every node; callers retry its creation.
func RunProcCluster(tb testing.TB, bin string, n int) *ProcCluster {
	tb.Helper()
	ports := freePorts(tb, 2*n)
	c := &ProcCluster{}
	for i := range n {
		var routes []string
		for j := range n {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[n+j]))
			}
		}
		name := fmt.Sprintf("n%d", i+1)
		conf := fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
jetstream { store_dir: %q, max_memory_store: 256MB, max_file_store: 1GB }
cluster { name: slipstream-test, listen: 127.0.0.1:%d, routes: [%s] }
`, name, ports[i], filepath.Join(tb.TempDir(), "js"), ports[n+i], strings.Join(routes, ", "))
		c.Procs = append(c.Procs, newProc(tb, bin, ProcSpec{Name: name, Config: conf, Port: ports[i]}))
	}
	for _, p := range c.Procs {
		p.Start()
	}
	for _, p := range c.Procs {
		p.waitListening()
	}
	return c
}

// URLs returns the client URLs of every node.
func (c *ProcCluster) URLs() []string {
	urls := make([]string, len(c.Procs))
	for i, p := range c.Procs {
		urls[i] = p.URL()
	}
	return urls
}

// Proc returns the node named name, or nil.
func (c *ProcCluster) Proc(name string) *Proc {
	for _, p := range c.Procs {
		if p.name == name {
			return p
		}
	}
	return nil
}

// Name is the server's name (n1, n2, …).
func (p *Proc) Name() string { return p.name }

// URL is the client URL.
func (p *Proc) URL() string { return "nats://" + p.addr() }

func (p *Proc) addr() string { return net.JoinHostPort(p.host, strconv.Itoa(p.port)) }

// Start starts the process if it is not running, with the same config and
// store directory as before.
func (p *Proc) Start() {
	p.tb.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return
	}
	argv := append(slices.Clone(p.wrap), p.bin, "-c", p.conf)
	cmd := exec.Command(argv[0], argv[1:]...)
	if err := cmd.Start(); err != nil {
		p.tb.Fatalf("natstest: start %s: %v", p.name, err)
	}
	p.cmd = cmd
}

// Kill kills the process with SIGKILL, as a crash or the OOM killer would,
// and waits for it to exit. It is a no-op when it is not running.
func (p *Proc) Kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
	p.cmd = nil
}

func (p *Proc) waitListening() {
	p.tb.Helper()
	deadline := time.Now().Add(readyTimeout)
	for {
		c, err := p.dial("tcp", p.addr())
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			p.tb.Fatalf("natstest: %s not listening within %v: %v", p.name, readyTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// RunProc starts a single JetStream server process of bin (see
// [ServerBinary]) on a free loopback port, with a store directory that
// [Proc.Kill] and [Proc.Start] keep: a restart, or a crash, on the same
// store.
func RunProc(tb testing.TB, bin string) *Proc {
	tb.Helper()
	port := freePorts(tb, 1)[0]
	return StartProc(tb, bin, ProcSpec{Name: "n1", Port: port, Config: fmt.Sprintf(`server_name: n1
listen: 127.0.0.1:%d
jetstream { store_dir: %q, max_memory_store: 256MB, max_file_store: 1GB }
`, port, filepath.Join(tb.TempDir(), "js"))})
}
