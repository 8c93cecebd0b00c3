package natskv

import (
	"log/slog"
	"sync/atomic"

	"github.com/nats-io/nats.go"
)

// connectionEvents returns nats.go handlers that log the loss of the
// connection (WARN) and its return (INFO), each naming the server, so that
// an operator reading the log sees a partition or a server restart begin
// and end, and where, not only the watches' retries. A close the caller
// asked for is not a loss. nats.go no longer names the server once the
// connection is lost: the handlers keep the one it connected to last
// (connected, which Connect also calls as soon as it is connected: nats.go
// calls it later, from its goroutine of callbacks).
func connectionEvents(logger *slog.Logger) (connected nats.ConnHandler, lost nats.ConnErrHandler, back nats.ConnHandler) {
	var server atomic.Pointer[string]
	connected = func(nc *nats.Conn) {
		if url := nc.ConnectedUrlRedacted(); url != "" { // "" once lost again
			server.Store(&url)
		}
	}
	lost = func(nc *nats.Conn, err error) {
		if nc.IsClosed() {
			return
		}
		var url string
		if p := server.Load(); p != nil {
			url = *p
		}
		logger.Warn("lost the connection to NATS; reconnecting", "server", url, "err", err)
	}
	back = func(nc *nats.Conn) {
		connected(nc)
		logger.Info("reconnected to NATS", "server", nc.ConnectedUrlRedacted())
	}
	return connected, lost, back
}
