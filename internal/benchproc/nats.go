package benchproc

import (
	"context"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
)

// StartNATS starts the nats-server binary bin with JetStream on a free
// loopback port, its store and log under work, and waits until it takes
// clients. It returns the process and the server's URL.
func StartNATS(ctx context.Context, bin, work string) (*Proc, string, error) {
	port, err := FreePort()
	if err != nil {
		return nil, "", err
	}
	p, err := Start("nats-server", filepath.Join(work, "nats-server.log"), nil,
		bin, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", filepath.Join(work, "nats-store"))
	if err != nil {
		return nil, "", err
	}
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	err = Poll(ctx, "nats-server on "+url, 30*time.Second, 20*time.Millisecond, func() (bool, error) {
		if err := p.Exited(); err != nil {
			return false, err
		}
		nc, err := nats.Connect(url)
		if err != nil {
			return false, nil
		}
		nc.Close()
		return true, nil
	})
	if err != nil {
		p.Stop()
		return nil, "", err
	}
	return p, url, nil
}
