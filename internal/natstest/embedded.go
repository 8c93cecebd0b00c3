package natstest

import (
	"fmt"
	"os"

	"github.com/nats-io/nats-server/v2/server"
)

// Embedded is a JetStream server started without a testing.TB, for runnable
// examples. Tests use [Run], which cleans up by itself.
type Embedded struct {
	srv *server.Server
	dir string
}

// StartEmbedded starts a JetStream server on a random loopback port with a
// temporary store directory. Stop shuts it down and removes the directory.
func StartEmbedded() (*Embedded, error) {
	dir, err := os.MkdirTemp("", "natstest-")
	if err != nil {
		return nil, err
	}
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: dir,
		NoLog: true, NoSigs: true, JetStreamMaxMemory: 64 << 20, JetStreamMaxStore: 256 << 20,
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	go srv.Start()
	if !srv.ReadyForConnections(readyTimeout) {
		srv.Shutdown()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("natstest: embedded server not ready within %v", readyTimeout)
	}
	return &Embedded{srv: srv, dir: dir}, nil
}

// URL is the client URL.
func (e *Embedded) URL() string { return e.srv.ClientURL() }

// Stop shuts the server down and removes its store.
func (e *Embedded) Stop() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
	os.RemoveAll(e.dir)
}
