package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/slipstreamkv/slipstream/internal/benchproc"
)

// server is one nats-server process with JetStream, its config file and
// store kept across restarts.
type server struct {
	name string
	bin  string
	conf string
	log  string
	url  string
	// monitor is the server's monitoring address (/varz).
	monitor string
	proc    *benchproc.Proc
}

// newServers writes the config of n servers under work: one standalone
// server for n = 1, an n-node cluster otherwise (routes to each other).
func newServers(bin, work string, n int) ([]*server, error) {
	ports := make([]int, 3*n)
	for i := range ports {
		p, err := benchproc.FreePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	var srvs []*server
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		if n == 1 {
			name = "single"
		}
		dir := filepath.Join(work, "nats-"+name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		conf := fmt.Sprintf("server_name: %s\nlisten: 127.0.0.1:%d\nhttp: 127.0.0.1:%d\njetstream { store_dir: %q }\n",
			name, ports[i], ports[2*n+i], filepath.Join(dir, "js"))
		if n > 1 {
			var routes []string
			for j := range n {
				if j != i {
					routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[n+j]))
				}
			}
			conf += fmt.Sprintf("cluster { name: fleetbench, listen: 127.0.0.1:%d, routes: [%s] }\n",
				ports[n+i], strings.Join(routes, ", "))
		}
		s := &server{name: name, bin: bin, conf: filepath.Join(dir, "nats.conf"), log: filepath.Join(dir, "nats-server.log"),
			url: fmt.Sprintf("nats://127.0.0.1:%d", ports[i]), monitor: fmt.Sprintf("127.0.0.1:%d", ports[2*n+i])}
		if err := os.WriteFile(s.conf, []byte(conf), 0o644); err != nil {
			return nil, err
		}
		srvs = append(srvs, s)
	}
	return srvs, nil
}

// start starts the process on its config and store.
func (s *server) start() error {
	p, err := benchproc.Start("nats-server "+s.name, s.log, nil, s.bin, "-c", s.conf)
	s.proc = p
	return err
}

// waitClients waits until the server accepts a client and returns when it
// did.
func (s *server) waitClients(ctx context.Context) (time.Time, error) {
	var at time.Time
	err := benchproc.Poll(ctx, "nats-server "+s.name+" on "+s.url, 60*time.Second, 5*time.Millisecond, func() (bool, error) {
		if err := s.proc.Exited(); err != nil {
			return false, err
		}
		nc, err := nats.Connect(s.url, nats.NoReconnect())
		if err != nil {
			return false, nil
		}
		nc.Close()
		at = time.Now()
		return true, nil
	})
	return at, err
}

// stop ends the process, if running, with SIGTERM.
func (s *server) stop() {
	if s.proc != nil && s.proc.Exited() == nil {
		s.proc.Stop()
	}
}

// rssKB is the server's resident memory now, from /proc.
func (s *server) rssKB() (int64, error) { return s.proc.MemKB("VmRSS") }
