package natskv

import (
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// asyncErrorEvery is how often one asynchronous error is logged again
// while it repeats.
const asyncErrorEvery = time.Minute

// asyncErrors logs the errors a server sends outside any request (a
// permissions violation, a slow consumer) through logger, each distinct
// error at most once per asyncErrorEvery: a client retrying a denied
// publish would otherwise log it at every attempt. Without a handler,
// nats.go writes each one raw to stderr, outside the agent's log.
func asyncErrors(logger *slog.Logger) nats.ErrHandler {
	var mu sync.Mutex
	logged := map[string]time.Time{}
	return func(_ *nats.Conn, sub *nats.Subscription, err error) {
		text := err.Error()
		now := time.Now()
		mu.Lock()
		if at, ok := logged[text]; ok && now.Sub(at) < asyncErrorEvery {
			mu.Unlock()
			return
		}
		if len(logged) >= 64 { // bounded: errors name subjects
			clear(logged)
		}
		logged[text] = now
		mu.Unlock()
		attrs := []any{"err", err}
		if sub != nil {
			attrs = append(attrs, "subscription", sub.Subject)
		}
		logger.Warn("the NATS server reported an error (logged once a minute while it repeats)", attrs...)
	}
}
