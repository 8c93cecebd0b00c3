package agent

import (
	"context"
	"math/rand/v2"
	"time"
)

// splay waits a random part of nats.start_splay before the agent connects
// and starts its watches, so a fleet started together (a package upgrade,
// a data-centre power-on) does not sync from the servers all at once. HTTP
// and systemd reporting run meanwhile; the watches show "starting". It
// returns false if ctx ended first.
func (a *Agent) splay(ctx context.Context) bool {
	limit := a.cfg.NATS.StartSplay
	if limit <= 0 {
		return true
	}
	d := rand.N(limit)
	a.log.Info("waiting before connecting (nats.start_splay)", "delay", d.Round(time.Millisecond), "start_splay", limit)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
