package natskv

import (
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// denials keeps the latest permissions violation a server reported on a
// connection. The server reports a denied publish (a request to the
// JetStream API among them) asynchronously, and the request itself only
// times out: the violation is what names the permission.
type denials struct {
	mu   sync.Mutex
	text string
	at   time.Time
}

// watch makes nc's error handler note the permissions violations, before
// it handles them as it did.
func (d *denials) watch(nc *nats.Conn) {
	handle := nc.ErrorHandler() // nats.go's default, which prints, when none was set
	nc.SetErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrPermissionViolation) {
			d.mu.Lock()
			d.text, d.at = err.Error(), time.Now()
			d.mu.Unlock()
		}
		if handle != nil {
			handle(nc, sub, err)
		}
	})
}

// Denied returns the latest permissions violation the server reported on
// the connection (its text names the subject, e.g. Permissions Violation
// for Publish to "$JS.API.CONSUMER.INFO.KV_cfg.x") and when it came; zero
// when none has. A request the server denies only times out: this says why.
func (c *Conn) Denied() (string, time.Time) {
	c.denied.mu.Lock()
	defer c.denied.mu.Unlock()
	return c.denied.text, c.denied.at
}
