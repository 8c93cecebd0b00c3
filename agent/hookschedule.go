package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// errHookAbandoned is returned to a watch that stopped (shutdown, reload)
// while its hook waited for its turn; the hook stays in its journal and runs
// when the watch starts again.
var errHookAbandoned = errors.New("not run yet: the watch is stopping; it stays journaled and runs on the next start")

// hookRequest is one watch asking for one of its hooks to run.
type hookRequest struct {
	watch   string
	log     *slog.Logger
	argv    []string
	hook    *HookConf // its environment settings and user; nil in tests
	env     []string  // the agent's SLIPAGENT_* variables for this run
	timeout time.Duration
	// splay and minInterval are the hook's settings (see HookConf).
	splay, minInterval time.Duration
}

// hookRound is one run of a command, and every request it answers: a
// request for a command that has a round not yet started joins it, and
// leaves it again when its watch stops before the round starts.
type hookRound struct {
	reqs []*hookRequest
	// dropped closes when every request left the round before it started:
	// it does not run.
	dropped chan struct{}
	done    chan struct{} // closed once the round ran or was abandoned
	err     error         // set before done closes
}

// hookCmd is the scheduling state of one command.
type hookCmd struct {
	lastEnd time.Time  // when its latest run ended (zero: none yet)
	last    *hookRound // the latest round started (or abandoned)
	pending *hookRound // the next round, still taking requests
}

// hookScheduler runs the hook commands of every watch of an agent. Requests
// for the same command (the same argv) are merged: one that arrives while a
// run of that command is pending joins it, so watches asking for the same
// reload in one round cause one run. A command runs after a random delay of
// up to its hook's splay, and never sooner than min_interval after its
// previous run ended; requests meanwhile coalesce into one run at the end
// of the interval, none is dropped. Waiting blocks only the watches that
// asked. A watch that stops (a reload, a shutdown) leaves the rounds it
// waits for, and a round every watch left is dropped: the hook stays in
// their journals, and the watch's next start asks again with its new
// settings. When ctx (the agent's) ends, rounds that did not start are
// abandoned; a run that started finishes. Safe for concurrent use.
type hookScheduler struct {
	ctx context.Context
	// run runs one round's command: runCommand, or a test's stand-in.
	run func(ctx context.Context, rd *hookRound) error
	wg  sync.WaitGroup

	mu   sync.Mutex
	cmds map[string]*hookCmd // by commandKey
}

func newHookScheduler(ctx context.Context, run func(ctx context.Context, rd *hookRound) error) *hookScheduler {
	return &hookScheduler{ctx: ctx, run: run, cmds: map[string]*hookCmd{}}
}

// runRound runs a round's command with runCommand: the first request's
// logger and environment, SLIPAGENT_WATCHES naming every watch it answers,
// and the longest timeout among them.
func runRound(ctx context.Context, rd *hookRound) error {
	first := rd.reqs[0]
	timeout := first.timeout
	watches := make([]string, 0, len(rd.reqs))
	for _, req := range rd.reqs {
		timeout = max(timeout, req.timeout)
		watches = append(watches, req.watch)
	}
	env := append(first.env[:len(first.env):len(first.env)], "SLIPAGENT_WATCHES="+strings.Join(watches, ","))
	return runCommand(ctx, first.log, first.argv, timeout, hookProcess(first.hook, env))
}

// commandKey identifies a command: requests with the same argv, the same
// environment settings and the same user run once.
func commandKey(req hookRequest) string {
	key := strings.Join(req.argv, "\x00")
	if h := req.hook; h != nil {
		key += "\x01" + strings.Join(h.Env.environ(os.Environ(), nil), "\x00")
		if h.RunAs != nil {
			key += fmt.Sprintf("\x01%d:%d:%v", h.RunAs.UID, h.RunAs.GID, h.RunAs.Groups)
		}
	}
	return key
}

// request asks for req's command to run and waits for the run that answers
// it: its error, or errHookAbandoned when ctx or stop ends first.
func (s *hookScheduler) request(ctx context.Context, stop <-chan struct{}, req hookRequest) error {
	s.mu.Lock()
	key := commandKey(req)
	c := s.cmds[key]
	if c == nil {
		c = &hookCmd{}
		s.cmds[key] = c
	}
	rd := c.pending
	if rd == nil {
		rd = &hookRound{dropped: make(chan struct{}), done: make(chan struct{})}
		c.pending = rd
		prev := c.last
		s.wg.Go(func() { s.drive(c, rd, prev, req) })
	} else {
		req.log.Info("hook joins a run already pending for the same command", "hook_watches", len(rd.reqs)+1)
	}
	own := &req
	rd.reqs = append(rd.reqs, own)
	s.mu.Unlock()
	select {
	case <-rd.done:
		return rd.err
	case <-ctx.Done():
	case <-stop:
	}
	if s.leave(c, rd, own) {
		return errHookAbandoned
	}
	// The round left the queue: it runs to its end (the agent waits for
	// it) or is abandoned as the agent stops. Its outcome is the watch's:
	// a hook that ran must not be reported as not run, and run again at
	// the next start.
	<-rd.done
	return rd.err
}

// leave takes req out of rd if rd did not start yet, and drops rd when no
// request is left: a later request opens a new round, with its own settings.
// It reports whether req left: false once rd left the queue (see drive).
func (s *hookScheduler) leave(c *hookCmd, rd *hookRound, req *hookRequest) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.pending != rd {
		return false
	}
	rd.reqs = slices.DeleteFunc(rd.reqs, func(r *hookRequest) bool { return r == req })
	if len(rd.reqs) == 0 {
		c.pending = nil
		close(rd.dropped)
	}
	return true
}

// drive runs one round: after the previous round of its command, min_interval
// after that one ended, and a random splay later. first is the request that
// opened the round: its settings apply.
func (s *hookScheduler) drive(c *hookCmd, rd, prev *hookRound, first hookRequest) {
	splay, minInterval := first.splay, first.minInterval
	finish := func(err error) {
		rd.err = err
		close(rd.done)
	}
	if prev != nil {
		select {
		case <-prev.done:
		case <-rd.dropped:
		case <-s.ctx.Done():
		}
	}
	s.mu.Lock()
	wait := time.Duration(0)
	if !c.lastEnd.IsZero() {
		wait = time.Until(c.lastEnd.Add(minInterval))
	}
	dropped := len(rd.reqs) == 0
	s.mu.Unlock()
	if dropped {
		wait, splay = 0, 0
	}
	if splay > 0 {
		wait = max(wait, 0) + rand.N(splay+1)
	}
	if wait > 0 {
		first.log.Info("hook scheduled", "in", wait.Round(time.Millisecond), "splay", splay, "min_interval", minInterval)
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-rd.dropped:
		case <-s.ctx.Done():
		}
	}
	s.mu.Lock()
	if len(rd.reqs) == 0 { // every watch that asked stopped: not run
		s.mu.Unlock()
		first.log.Info("scheduled hook dropped: every watch that asked for it stopped (they keep it journaled)")
		finish(errHookAbandoned)
		return
	}
	c.pending, c.last = nil, rd // later requests start a new round
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		finish(errHookAbandoned)
		return
	}
	s.mu.Unlock()
	// No request joins once pending is cleared, so reqs is stable.
	err := s.run(context.WithoutCancel(s.ctx), rd)
	s.mu.Lock()
	c.lastEnd = time.Now()
	s.mu.Unlock()
	finish(err)
}

// wait waits for every round's goroutine to end (after ctx ended).
func (s *hookScheduler) wait() { s.wg.Wait() }
