package natskv

import (
	"log/slog"

	"github.com/nats-io/nats.go"
)

// connectionEvents returns nats.go handlers that log the loss of the
// connection (WARN) and its return (INFO, naming the server), so that an
// operator reading the log sees a partition or a server restart begin and
// end, not only the watches' retries. A close the caller asked for is not
// a loss.
func connectionEvents(logger *slog.Logger) (lost nats.ConnErrHandler, back nats.ConnHandler) {
	lost = func(nc *nats.Conn, err error) {
		if nc.IsClosed() {
			return
		}
		logger.Warn("lost the connection to NATS; reconnecting", "err", err)
	}
	back = func(nc *nats.Conn) {
		logger.Info("reconnected to NATS", "server", nc.ConnectedUrlRedacted())
	}
	return lost, back
}
