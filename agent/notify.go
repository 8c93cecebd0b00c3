package agent

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// sdNotify sends state to systemd's $NOTIFY_SOCKET; it does nothing when the
// agent does not run under systemd with Type=notify.
func sdNotify(state string) error {
	_, err := daemon.SdNotify(false, state)
	return err
}

func (a *Agent) notifyf(format string, args ...any) {
	if err := a.notify(fmt.Sprintf(format, args...)); err != nil {
		a.log.Warn("systemd notification failed", "err", err)
	}
}

// reportInterval is how often the reporter looks at the watches when no
// status change wakes it.
const reportInterval = time.Second

// While the start takes long (a first sync of a big bucket, start_splay),
// the reporter asks systemd every extendEvery for extendBy more than
// TimeoutStartSec, as long as no watch is stuck (see stuck).
const (
	extendEvery = 10 * time.Second
	extendBy    = 30 * time.Second
)

// report keeps systemd informed until ctx ends: READY=1 once every watch has
// caught up or failed (the failing ones are named in STATUS and /healthz and
// keep retrying), EXTEND_TIMEOUT_USEC= until then, STATUS= with a summary
// whenever it changes, and WATCHDOG=1 while
// no watch is stuck in a batch longer than its plugin, checks and hooks may
// take.
func (a *Agent) report(ctx context.Context) {
	watchdog, _ := daemon.SdWatchdogEnabled(false)
	interval := reportInterval
	if watchdog > 0 && watchdog/2 < interval {
		interval = watchdog / 2
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	ready, lastStatus, lastPing, lastExtend := false, "", time.Time{}, time.Time{}
	reloads := a.reloadsFinished()
	for {
		if n := a.reloadsFinished(); n != reloads {
			reloads, ready = n, false // READY=1 ends a reload too
		}
		statuses := a.Status()
		if !ready && settled(statuses) {
			ready = true
			a.notifyf("READY=1")
			// A watch that failed counts as settled, and keeps retrying: NATS
			// may not even be reachable yet.
			switch {
			case a.Ready():
				a.log.Info("every watch caught up", "watches", len(statuses))
			case a.once: // once stops a failed watch instead (see Once)
			default:
				a.log.Warn("not every watch is ready; they keep retrying", "status", summary(statuses))
			}
		}
		if !ready && time.Since(lastExtend) >= extendEvery && !a.stuck(statuses, time.Now()) {
			a.notifyf("EXTEND_TIMEOUT_USEC=%d", extendBy.Microseconds())
			lastExtend = time.Now()
		}
		if s := summary(statuses); s != lastStatus {
			a.notifyf("STATUS=%s", s)
			lastStatus = s
		}
		if watchdog > 0 && time.Since(lastPing) >= watchdog/2 && !a.stuck(statuses, time.Now()) {
			a.notifyf("WATCHDOG=1")
			lastPing = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.changed:
		}
	}
}

func settled(statuses []WatchStatus) bool {
	for _, s := range statuses {
		if !s.Settled() {
			return false
		}
	}
	return true
}

// summary is the one-line STATUS systemctl shows.
func summary(statuses []WatchStatus) string {
	synced, unhealthy := 0, map[string][]string{}
	for _, s := range statuses {
		if s.Synced {
			synced++
		}
		if !s.Healthy() {
			unhealthy[s.State] = append(unhealthy[s.State], s.Name)
		}
	}
	s := fmt.Sprintf("%d/%d watches caught up", synced, len(statuses))
	for _, state := range watchStates {
		if names := unhealthy[state]; len(names) > 0 {
			s += ", " + state + ": " + strings.Join(names, " ")
		}
	}
	return s
}

// stuckGrace is added to a batch's budget before it counts as stuck.
const stuckGrace = time.Minute

// stuck reports whether some watch has been applying one batch for longer
// than its plugin timeout plus every check and hook timeout (plus grace):
// only a hang in the agent itself gets there, and systemd's watchdog should
// then restart it.
func (a *Agent) stuck(statuses []WatchStatus, now time.Time) bool {
	runners := map[string]*watchRunner{}
	for _, w := range a.runners() {
		runners[w.conf.Name] = w
	}
	for _, s := range statuses {
		w := runners[s.Name]
		if s.BusySince.IsZero() || w == nil {
			continue
		}
		budget := w.plugin.Timeout + stuckGrace
		for _, h := range w.conf.Hooks {
			budget += 2*h.Timeout + h.Splay + h.MinInterval // check, then command after its turn
		}
		if now.Sub(s.BusySince) > budget {
			return true
		}
	}
	return false
}
