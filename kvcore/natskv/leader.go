package natskv

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/nats-io/nats.go"
)

// In a cluster a watch's consumer (one replica, in memory) lives on one
// server of the stream's peers, and dies with it. When that server is the
// stream's leader, the leader elected after it announces itself with an
// advisory; a watch listens for it so it can replace its consumer right
// away instead of waiting for two missed heartbeats, and so an attempt to
// re-create the consumer that is waiting out a leaderless stream retries
// the moment there is a leader again.

// advisoryLeaderElected prefixes the subject of the advisory a stream's new
// leader publishes in the stream's account.
const advisoryLeaderElected = "$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED."

// errLeaderElected cancels an attempt to create a consumer that was sent
// before the stream's new leader was elected: it is retried at once.
var errLeaderElected = errors.New("a new stream leader was elected; retrying at once")

// leaderElected is the part of the server's stream leader elected
// advisory a watch reads.
type leaderElected struct {
	Leader   string `json:"leader"`
	Replicas []struct {
		Name    string `json:"name"`
		Offline bool   `json:"offline"`
	} `json:"replicas"`
}

// lost reports whether a consumer hosted on server host is gone once the
// advisory's leader took over from prev, the leader known before: its host
// was the leader that was replaced, is offline, or is no longer among the
// stream's peers. Outside a cluster (no host) nothing is lost.
func (e leaderElected) lost(host, prev string) bool {
	if host == "" || host == e.Leader {
		return false
	}
	if host == prev {
		return true
	}
	for _, r := range e.Replicas {
		if r.Name == host {
			return r.Offline
		}
	}
	return true
}

// listenLeader subscribes the watch to its stream's leader elected
// advisories. A watch that cannot (no permission for the subject) still
// notices a lost consumer by its heartbeats.
func (w *watch) listenLeader() *nats.Subscription {
	sub, err := w.s.sess.nc.Subscribe(advisoryLeaderElected+w.s.stream, func(m *nats.Msg) {
		var e leaderElected
		if json.Unmarshal(m.Data, &e) != nil || e.Leader == "" {
			return
		}
		if a := w.attempt.Load(); a != nil {
			a.cancel(errLeaderElected)
		}
		for { // keep only the latest: this callback is the only sender
			select {
			case w.elected <- e:
				return
			default:
			}
			select {
			case <-w.elected:
			default:
			}
		}
	})
	if err != nil {
		w.log.Warn("cannot follow the stream's leader changes; a lost consumer is noticed by its heartbeats", "err", err)
		return nil
	}
	return sub
}

// attempt is one bounded attempt to create a consumer; the leader
// advisory cancels it.
type attempt struct {
	cancel context.CancelCauseFunc
}
