package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// recordedRun is one run the test scheduler made: when (bubble time) and
// for which watches.
type recordedRun struct {
	argv    string
	at      time.Time
	watches []string
}

// testScheduler returns a scheduler whose runs are recorded instead of
// executed; each run takes runFor (bubble time) and returns runErr.
func testScheduler(ctx context.Context, runFor time.Duration, runErr error) (*hookScheduler, func() []recordedRun) {
	var mu sync.Mutex
	var runs []recordedRun
	s := newHookScheduler(ctx, func(ctx context.Context, rd *hookRound) error {
		mu.Lock()
		r := recordedRun{argv: strings.Join(rd.reqs[0].argv, " "), at: time.Now()}
		for _, req := range rd.reqs {
			r.watches = append(r.watches, req.watch)
		}
		runs = append(runs, r)
		mu.Unlock()
		time.Sleep(runFor)
		return runErr
	})
	return s, func() []recordedRun {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(runs)
	}
}

func hookReq(watch string, argv ...string) hookRequest {
	return hookRequest{watch: watch, log: slog.New(slog.DiscardHandler), argv: argv, timeout: time.Minute}
}

func TestHookSplayDelaysEachRunWithinItsSplay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, runs := testScheduler(t.Context(), 0, nil)
		start := time.Now()
		const splay = 10 * time.Second
		var wg sync.WaitGroup
		for i := range 8 { // eight hosts' worth of distinct commands
			wg.Go(func() {
				req := hookReq("w", "reload", fmt.Sprint(i))
				req.splay = splay
				if err := s.request(t.Context(), nil, req); err != nil {
					t.Errorf("request: %v", err)
				}
			})
		}
		wg.Wait()
		got := runs()
		if len(got) != 8 {
			t.Fatalf("%d runs, want 8", len(got))
		}
		delayed := 0
		for _, r := range got {
			d := r.at.Sub(start)
			if d < 0 || d > splay {
				t.Errorf("%s ran %v after its request, want within the splay %v", r.argv, d, splay)
			}
			if d > 0 {
				delayed++
			}
		}
		if delayed == 0 {
			t.Error("no run was delayed: splay ignored")
		}
	})
}

// TestHookMinIntervalCoalescesRequests: requests that arrive within a hook's
// min_interval of its last run are answered by one run at the end of the
// interval; none is dropped.
func TestHookMinIntervalCoalescesRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, runs := testScheduler(t.Context(), time.Second, nil)
		const interval = 30 * time.Second
		req := hookReq("w", "systemctl", "reload", "nginx")
		req.minInterval = interval
		start := time.Now()
		if err := s.request(t.Context(), nil, req); err != nil {
			t.Fatal(err)
		}
		firstEnd := time.Now() // the first run took 1s
		var wg sync.WaitGroup
		for i := range 3 {
			wg.Go(func() {
				time.Sleep(time.Duration(i+1) * time.Second)
				if err := s.request(t.Context(), nil, req); err != nil {
					t.Errorf("request %d: %v", i, err)
				}
			})
		}
		time.Sleep(interval - time.Second)
		synctest.Wait()
		if n := len(runs()); n != 1 {
			t.Fatalf("%d runs before min_interval passed, want 1", n)
		}
		wg.Wait()
		got := runs()
		if len(got) != 2 {
			t.Fatalf("%d runs, want 2 (the three requests coalesced)", len(got))
		}
		if got[0].at != start || got[1].at != firstEnd.Add(interval) {
			t.Errorf("runs at %v and %v after the start, want 0 and %v (min_interval after the first ended)",
				got[0].at.Sub(start), got[1].at.Sub(start), firstEnd.Add(interval).Sub(start))
		}
	})
}

// TestHookSameCommandRunsOnceForSeveralWatches: watches that request the same
// command in one round share one run; another command runs on its own.
func TestHookSameCommandRunsOnceForSeveralWatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, runs := testScheduler(t.Context(), 0, nil)
		var wg sync.WaitGroup
		for _, w := range []string{"a", "b", "c"} {
			wg.Go(func() {
				req := hookReq(w, "systemctl", "reload", "nginx")
				req.splay = time.Second
				if err := s.request(t.Context(), nil, req); err != nil {
					t.Errorf("watch %s: %v", w, err)
				}
			})
		}
		wg.Go(func() {
			if err := s.request(t.Context(), nil, hookReq("d", "systemctl", "reload", "haproxy")); err != nil {
				t.Errorf("watch d: %v", err)
			}
		})
		wg.Wait()
		got := runs()
		slices.SortFunc(got, func(x, y recordedRun) int { return strings.Compare(x.argv, y.argv) })
		if len(got) != 2 || got[0].argv != "systemctl reload haproxy" || got[1].argv != "systemctl reload nginx" {
			t.Fatalf("runs %+v, want one of each command", got)
		}
		slices.Sort(got[1].watches)
		if !slices.Equal(got[1].watches, []string{"a", "b", "c"}) {
			t.Errorf("the nginx run answered %q, want a, b and c", got[1].watches)
		}
	})
}

// TestHookRequestDuringARunRunsAgain: a request that arrives while its
// command runs is not answered by that run (it may have read the old files).
func TestHookRequestDuringARunRunsAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, runs := testScheduler(t.Context(), 5*time.Second, errors.New("exit status 1"))
		var wg sync.WaitGroup
		wg.Go(func() {
			if err := s.request(t.Context(), nil, hookReq("a", "reload")); err == nil {
				t.Error("the failed run answered nil")
			}
		})
		time.Sleep(time.Second)
		wg.Go(func() { _ = s.request(t.Context(), nil, hookReq("b", "reload")) })
		wg.Wait()
		if got := runs(); len(got) != 2 || got[1].watches[0] != "b" {
			t.Errorf("runs %+v, want a second run for b", got)
		}
	})
}

// TestHookWaitingForItsTurnIsAbandonedOnStop: a watch that stops, or an agent
// that shuts down, does not wait for a hook's splay or interval.
func TestHookWaitingForItsTurnIsAbandonedOnStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		s, runs := testScheduler(ctx, 0, nil)
		req := hookReq("w", "reload")
		req.minInterval = time.Hour
		if err := s.request(ctx, nil, req); err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		done := make(chan error, 2)
		go func() { done <- s.request(context.Background(), stop, req) }()
		go func() { done <- s.request(context.Background(), nil, req) }()
		time.Sleep(time.Minute)
		close(stop) // the first watch stops
		if err := <-done; !errors.Is(err, errHookAbandoned) {
			t.Errorf("stopped watch: %v, want errHookAbandoned", err)
		}
		cancel() // the agent shuts down
		if err := <-done; !errors.Is(err, errHookAbandoned) {
			t.Errorf("at shutdown: %v, want errHookAbandoned", err)
		}
		s.wait()
		if n := len(runs()); n != 1 {
			t.Errorf("%d runs, want only the first", n)
		}
	})
}

// TestHookRunningWhenItsWatchStopsIsItsOutcome: a watch that stops (or an
// agent that shuts down) while its hook runs gets the run's outcome once it
// ends, not errHookAbandoned: the hook ran, so it must not be logged as
// not run, stay journaled and run again at the next start.
func TestHookRunningWhenItsWatchStopsIsItsOutcome(t *testing.T) {
	for _, outcome := range []error{nil, errors.New("exit status 1")} {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			s, runs := testScheduler(ctx, 10*time.Second, outcome)
			stop := make(chan struct{})
			done := make(chan error, 1)
			go func() { done <- s.request(ctx, stop, hookReq("w", "reload")) }()
			time.Sleep(time.Second) // the run started
			close(stop)
			cancel()
			err := <-done
			if !errors.Is(err, outcome) || errors.Is(err, errHookAbandoned) {
				t.Errorf("the watch got %v, want the run's outcome %v", err, outcome)
			}
			if n := len(runs()); n != 1 {
				t.Errorf("%d runs, want 1", n)
			}
			s.wait()
		})
	}
}

// TestPendingHookSurvivesARestart: a hook waiting for its min_interval when
// the agent stops stays journaled, the stop does not wait for it, and the
// next start runs it.
func TestPendingHookSurvivesARestart(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "1")
	slow := strings.Replace(filesConfig, `hook "changed" {`, `hook "changed" {
    min_interval = "1h"`, 1)
	a, stop := f.start(f.config(slow))
	waitFor(t, "the first sync", func() bool { return a.Ready() })
	if hooks := lines(filepath.Join(f.dir, "hooks.log")); len(hooks) != 1 {
		t.Fatalf("hooks.log = %q, want the first run at once", hooks)
	}
	rev := f.put("cfg", "files.a.conf", "2")
	waitFor(t, "the new file", func() bool { return readFile(filepath.Join(f.dir, "out", "a.conf")) == "2" })
	journal := filepath.Join(f.dir, "data", "watches", "cfg", journalFile)
	if _, err := os.Stat(journal); err != nil {
		t.Fatalf("no hook journal while the hook waits for its interval: %v", err)
	}
	stop() // fails the test if Run waits for the hour
	if hooks := lines(filepath.Join(f.dir, "hooks.log")); len(hooks) != 1 {
		t.Fatalf("hooks.log = %q, want the second run still pending", hooks)
	}
	if s := a.Status()[0]; s.LastFailure != "" || s.Failures != 0 {
		t.Errorf("a stop with a hook waiting counted as a failure: %d, %q", s.Failures, s.LastFailure)
	}
	if _, err := os.Stat(journal); err != nil {
		t.Fatalf("the pending hook left the journal at shutdown: %v", err)
	}

	a, _ = f.start(f.config(filesConfig))
	waitFor(t, "the pending hook to run after the restart", func() bool {
		_, err := os.Stat(journal)
		return slices.Contains(lines(filepath.Join(f.dir, "hooks.log")), fmt.Sprint(rev)) && errors.Is(err, os.ErrNotExist)
	})
	waitFor(t, "the restarted agent to catch up", func() bool { return a.Ready() && a.Status()[0].Revision == rev })
}

// TestAWatchWaitingForItsHookIsBehind: a batch whose hook waits for its
// min_interval holds the watch's next changes back, so the outputs trail
// the bucket: the watch says so (behind_since from the batch's start) and
// turns stale past stale_after, as any watch not caught up does.
func TestAWatchWaitingForItsHookIsBehind(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "1")
	slow := strings.Replace(strings.Replace(filesConfig, `hook "changed" {`, `hook "changed" {
    min_interval = "1h"`, 1), `batch { window = "20ms" }`, `batch { window = "20ms" }
  stale_after = "2s"`, 1)
	a, _ := f.start(f.config(slow))
	waitFor(t, "the first sync", func() bool { return a.Ready() })
	if s := a.Status()[0]; !s.BehindSince.IsZero() {
		t.Fatalf("caught up, yet behind since %v", s.BehindSince)
	}
	f.put("cfg", "files.a.conf", "2")
	waitFor(t, "the new file", func() bool { return readFile(filepath.Join(f.dir, "out", "a.conf")) == "2" })
	if s := a.Status()[0]; s.BehindSince.IsZero() || s.BusySince.IsZero() || s.BehindSince.After(s.BusySince) {
		t.Fatalf("a batch waiting for its hook: busy since %v, behind since %v; want behind since the batch started", s.BusySince, s.BehindSince)
	}
	f.put("cfg", "files.a.conf", "3") // held back behind the waiting hook
	waitFor(t, "the watch to turn stale", func() bool { return a.Status()[0].State == stateStale })
	if a.Ready() || readFile(filepath.Join(f.dir, "out", "a.conf")) != "2" {
		t.Fatalf("stale: ready %v, a.conf %q", a.Ready(), readFile(filepath.Join(f.dir, "out", "a.conf")))
	}
}

// TestWatchesRequestingOneCommandShareRuns runs three watches whose hooks
// are the same command. The first run is held until every watch has asked:
// the other requests wait in one pending round, so the three watches cause at
// most two runs, which name every watch in SLIPAGENT_WATCHES.
func TestWatchesRequestingOneCommandShareRuns(t *testing.T) {
	f := newFixture(t)
	var src strings.Builder
	src.WriteString(`
data_dir = "$DIR/data"
nats { servers = ["$NATS"] }
plugin "files" {
  module = "$DIR/files.wasm"
  config = { prefix = "files.", hook = "changed" }
}`)
	for _, w := range []string{"a", "b", "c"} {
		f.put(w, "files.x", "1")
		fmt.Fprintf(&src, `
watch %q {
  bucket = %q
  plugin = "files"
  output "files" { dir = "$DIR/out-%s" }
  hook "changed" { command = ["sh", "-c", "while [ ! -e $DIR/go ]; do sleep 0.05; done; echo \"$SLIPAGENT_WATCHES\" >> $DIR/hooks.log"] }
}`, w, w, w)
	}
	a, _ := f.start(f.config(src.String()))
	waitFor(t, "every watch to request the hook", func() bool {
		a.mu.Lock()
		s := a.hooks
		a.mu.Unlock()
		s.mu.Lock()
		defer s.mu.Unlock()
		n := 0
		for _, c := range s.cmds { // one command: the three hooks are alike
			for _, rd := range []*hookRound{c.last, c.pending} {
				if rd != nil {
					n += len(rd.reqs)
				}
			}
		}
		return n == 3
	})
	if err := os.WriteFile(filepath.Join(f.dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every watch to be ready", func() bool { return a.Ready() })
	runs := lines(filepath.Join(f.dir, "hooks.log"))
	var answered []string
	for _, r := range runs {
		answered = append(answered, strings.Split(r, ",")...)
	}
	slices.Sort(answered)
	if len(runs) > 2 || !slices.Equal(answered, []string{"a", "b", "c"}) {
		t.Errorf("runs %q, want at most two answering a, b and c once each", runs)
	}
}

// TestHookRoundEveryWatchLeftIsDropped: a round whose every requester
// stopped before it started (a reload restarted the watch) does not run,
// and the restarted watch's request opens a round with its own settings
// instead of joining the old one and waiting out its min_interval.
func TestHookRoundEveryWatchLeftIsDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, runs := testScheduler(t.Context(), 0, nil)
		old := hookReq("w", "reload")
		old.minInterval = time.Hour
		if err := s.request(t.Context(), nil, old); err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		done := make(chan error, 1)
		go func() { done <- s.request(t.Context(), stop, old) }()
		time.Sleep(time.Minute)
		close(stop) // a reload stops the watch
		if err := <-done; !errors.Is(err, errHookAbandoned) {
			t.Fatalf("stopped watch: %v, want errHookAbandoned", err)
		}
		start := time.Now()
		if err := s.request(t.Context(), nil, hookReq("w", "reload")); err != nil { // restarted, without min_interval
			t.Fatal(err)
		}
		if waited := time.Since(start); waited != 0 {
			t.Errorf("the restarted watch's hook waited %v for the old round, want a run at once", waited)
		}
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		if n := len(runs()); n != 2 {
			t.Errorf("%d runs, want 2: the first and the restarted watch's, not the dropped round", n)
		}
	})
}
